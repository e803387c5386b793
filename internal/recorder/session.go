package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/store"
)

// session is one recording being received.
type session struct {
	w     store.Writer
	key   string
	kind  store.Kind
	proto string // "v1" or "v2"
	log   *slog.Logger

	received atomic.Int64 // bytes received from the sender: in pending or written to w
	durable  atomic.Int64 // bytes known synced

	// wmu is held by the committer while it syncs w, and by finish while
	// it closes w, so that w is never synced after (or while) it closes.
	wmu    sync.Mutex
	closed bool // guarded by wmu

	// Small body reads are coalesced into large store writes. bufMu
	// guards pending and writeErr; it is held only briefly, never across
	// a sync, so a slow fsync does not stall the reader.
	bufMu    sync.Mutex
	pending  *[]byte // nil when there is nothing to write
	writeErr error   // sticky: a store write failed

	mu      sync.Mutex
	syncErr error         // a failed sync: storage is broken for this recording
	stopErr error         // why the server ends this session early
	stopped chan struct{} // closed by stop
	body    io.Closer
}

func newSession(w store.Writer, proto string, body io.Closer, log *slog.Logger) *session {
	return &session{w: w, key: w.Key(), proto: proto, body: body, log: log, stopped: make(chan struct{})}
}

// stop ends the session from outside (shutdown): the reader is unblocked by
// closing the request body.
func (ss *session) stop(err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopErr != nil {
		return
	}
	ss.stopErr = err
	close(ss.stopped)
	ss.body.Close()
}

func (ss *session) stopReason() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.stopErr
}

// failSync records a sync failure reported by the committer.
func (ss *session) failSync(err error) {
	ss.mu.Lock()
	if ss.syncErr == nil {
		ss.syncErr = err
	}
	ss.mu.Unlock()
}

func (ss *session) syncFailure() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.syncErr
}

// Coalescing: pending bytes are written to the store once flushAt have
// gathered, and by the committer before every sync. The buffer starts
// small, grows only while a session streams, and is dropped (not pooled:
// a pool would keep idle sessions' buffers alive) when the committer finds
// the session quiet.
const flushAt = 48 << 10

// add takes bytes from the body; they reach the store by the time the
// committer's next flush returns.
func (ss *session) add(p []byte) error {
	ss.bufMu.Lock()
	defer ss.bufMu.Unlock()
	if ss.writeErr != nil {
		return ss.writeErr
	}
	if ss.pending == nil {
		if len(p) >= flushAt {
			if _, err := ss.w.Write(p); err != nil {
				ss.writeErr = err
				return err
			}
			ss.received.Add(int64(len(p)))
			return nil
		}
		b := make([]byte, 0, max(4<<10, 2*len(p)))
		ss.pending = &b
	}
	*ss.pending = append(*ss.pending, p...)
	ss.received.Add(int64(len(p)))
	if len(*ss.pending) >= flushAt {
		return ss.flushLocked(false)
	}
	return nil
}

// flush writes pending bytes to the store and returns how many bytes the
// store now holds; release drops the buffer.
func (ss *session) flush(release bool) (int64, error) {
	ss.bufMu.Lock()
	defer ss.bufMu.Unlock()
	err := ss.flushLocked(release)
	return ss.received.Load(), err
}

func (ss *session) flushLocked(release bool) error {
	if ss.writeErr != nil {
		return ss.writeErr
	}
	if ss.pending == nil {
		return nil
	}
	if len(*ss.pending) > 0 {
		if _, err := ss.w.Write(*ss.pending); err != nil {
			ss.writeErr = err
			return err
		}
		*ss.pending = (*ss.pending)[:0]
	}
	if release {
		ss.pending = nil
	}
	return nil
}

// Read buffers: a session blocked waiting for data holds only a small
// buffer; one that is streaming borrows a large one from the pool. A
// thousand idle sessions then cost kilobytes, not megabytes.
const (
	smallBuf = 2 << 10
	largeBuf = 64 << 10
)

var largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBuf); return &b }}

// ingestResult is how the read loop ended.
type ingestResult struct {
	eof       bool  // the sender finished the body
	readErr   error // the connection broke or the server stopped us
	storeErr  error // writing to the store failed
	malformed error // the checker's verdict, when the body is not valid asciicast
}

// ingest copies body into the session's writer, checking the asciicast
// stream as it goes, until EOF or an error.
func (s *Server) ingest(ss *session, body io.Reader) ingestResult {
	var chk bodyChecker = &asciicast.Checker{MaxLine: s.MaxLine}
	if ss.kind == store.KindDesktop {
		chk = new(desktop.Checker)
	}
	small := make([]byte, smallBuf)
	buf := small
	var pooled *[]byte
	defer func() {
		if pooled != nil {
			largeBufs.Put(pooled)
		}
	}()
	var res ingestResult
	for {
		n, err := body.Read(buf)
		if n > 0 {
			chk.Write(buf[:n])
			if werr := ss.add(buf[:n]); werr != nil {
				res.storeErr = werr
				s.Metrics.errors.add("store_write")
				break
			}
			s.Metrics.bytesReceived.Add(int64(n))
			// Grow while data streams, shrink when the sender goes quiet.
			switch {
			case n == len(buf) && pooled == nil:
				pooled = largeBufs.Get().(*[]byte)
				buf = *pooled
			case n < len(buf)/4 && pooled != nil:
				largeBufs.Put(pooled)
				pooled, buf = nil, small
			}
		}
		if err == io.EOF {
			res.eof = true
			break
		}
		if err != nil {
			res.readErr = err
			break
		}
	}
	if res.eof {
		res.malformed = chk.Finish()
	} else {
		res.malformed = chk.Problem()
	}
	return res
}

// finish closes the store writer with the status the result implies, logs,
// and returns the status and reason.
func (s *Server) finish(ss *session, res ingestResult, started time.Time) (store.Status, string) {
	s.commit.remove(ss)
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.closed = true
	if _, err := ss.flush(true); err != nil && res.storeErr == nil {
		res.storeErr = err
		s.Metrics.errors.add("store_write")
	}
	status, reason := store.StatusComplete, ""
	switch {
	case res.storeErr != nil:
		status, reason = store.StatusFailed, "storage failed: "+res.storeErr.Error()
	case ss.syncFailure() != nil:
		status, reason = store.StatusFailed, "storage failed: "+ss.syncFailure().Error()
	case ss.stopReason() != nil:
		status, reason = store.StatusInterrupted, ss.stopReason().Error()
	case res.readErr != nil:
		status, reason = store.StatusInterrupted, "the sender's upload broke off: "+res.readErr.Error()
	case res.malformed != nil:
		status, reason = store.StatusMalformed, res.malformed.Error()
	}
	if err := ss.w.Close(status, reason); err != nil {
		s.Metrics.errors.add("store_close")
		s.Log.Error("closing recording failed", "key", ss.key, "err", err)
		if status == store.StatusComplete || status == store.StatusMalformed {
			status, reason = store.StatusFailed, "storage failed: "+err.Error()
		}
	} else if status == store.StatusComplete || status == store.StatusMalformed {
		if n, prev := ss.received.Load(), ss.durable.Load(); n > prev {
			ss.durable.Store(n)
			s.Metrics.bytesDurable.Add(n - prev)
		}
	}
	size := ss.received.Load()
	s.Metrics.sessionsTotal.add(ss.proto + "," + string(status))
	attrs := []any{"key", ss.key, "proto", ss.proto, "status", status, "bytes", size, "duration", s.Now().Sub(started).Round(time.Millisecond)}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	switch status {
	case store.StatusComplete:
		ss.log.Info("recording finished", attrs...)
	case store.StatusInterrupted:
		ss.log.Warn("recording interrupted", attrs...)
	default:
		ss.log.Error("recording did not finish cleanly", attrs...)
	}
	return status, reason
}

// refusal is why a recording cannot start: an HTTP status and a message.
type refusal struct {
	code int
	msg  string
}

// admit decides whether r's sender may start a recording now, and names
// the sender's node. It is asked at the HEAD /v2/record probe as well as at
// the upload, because Tailscale's client hangs when POST /v2/record answers
// anything but 200: refusing at the probe sends it to v1, where a refusal
// before "100 Continue" makes it fail over to the next recorder.
func (s *Server) admit(r *http.Request) (node string, ref *refusal) {
	if s.shutting.Load() {
		return "", &refusal{http.StatusServiceUnavailable, "reel recorder: shutting down; try another recorder"}
	}
	node, err := s.Identify(r)
	if err != nil {
		s.Metrics.errors.add("identify")
		s.Log.Warn("refused recording: unknown sender", "remote", r.RemoteAddr, "err", err)
		return "", &refusal{http.StatusForbidden, "reel recorder: cannot identify sender: " + err.Error()}
	}
	if sc, ok := s.Store.(SpaceChecker); ok {
		if err := sc.CheckSpace(); err != nil {
			s.Metrics.errors.add("insufficient_space")
			s.Log.Error("refused recording: not enough storage", "node", node, "remote", r.RemoteAddr, "err", err)
			return "", &refusal{http.StatusInsufficientStorage, "reel recorder: cannot store recording: " + err.Error()}
		}
	}
	return node, nil
}

// SpaceChecker is implemented by stores with a free-space reserve: it
// fails (wrapping store.ErrInsufficientSpace) when new recordings would be
// refused.
type SpaceChecker interface {
	CheckSpace() error
}

// begin admits the sender and creates the recording, or returns why not.
func (s *Server) begin(r *http.Request, proto string) (*session, *refusal) {
	node, ref := s.admit(r)
	if ref != nil {
		return nil, ref
	}
	log := s.Log.With("node", node, "remote", r.RemoteAddr)
	kind := uploadKind(r)
	var wr store.Writer
	var err error
	if kind == store.KindTerminal {
		wr, err = s.Store.Create(r.Context(), node, s.Now())
	} else if kc, ok := s.Store.(store.KindCreator); ok {
		wr, err = kc.CreateKind(r.Context(), node, s.Now(), kind)
	} else {
		return nil, &refusal{http.StatusUnsupportedMediaType, "reel recorder: this store keeps only terminal recordings"}
	}
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, store.ErrInsufficientSpace) {
			code = http.StatusInsufficientStorage
			s.Metrics.errors.add("insufficient_space")
		} else {
			s.Metrics.errors.add("store_create")
		}
		log.Error("refused recording: cannot store it", "proto", proto, "err", err)
		return nil, &refusal{code, "reel recorder: cannot store recording: " + err.Error()}
	}
	ss := newSession(wr, proto, r.Body, log)
	if !s.track(ss) {
		wr.Close(store.StatusFailed, "refused: the recorder was shutting down")
		return nil, &refusal{http.StatusServiceUnavailable, "reel recorder: shutting down; try another recorder"}
	}
	s.Metrics.sessionsOpen.Add(1)
	ss.kind = kind
	log.Info("recording started", "key", ss.key, "proto", proto, "kind", kind)
	return ss, nil
}

func (s *Server) end(ss *session) {
	s.Metrics.sessionsOpen.Add(-1)
	s.untrack(ss)
}

func (s *Server) headV2(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.DisableV2:
		http.Error(w, "v2 disabled", http.StatusNotFound)
	case r.ProtoMajor < 2:
		http.Error(w, "POST /v2/record needs HTTP/2", http.StatusHTTPVersionNotSupported)
	default:
		if _, ref := s.admit(r); ref != nil {
			http.Error(w, ref.msg, ref.code)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// ackFrame is one line of the /v2/record response.
type ackFrame struct {
	Ack   int64  `json:"ack,omitempty"`
	Error string `json:"error,omitempty"`
}

func writeFrame(w http.ResponseWriter, f ackFrame) error {
	b, _ := json.Marshal(f)
	if f.Error == "" {
		// Always spell out the count, even zero, for readers other than
		// Tailscale's (which treats a missing ack as 0).
		b = strconv.AppendInt([]byte(`{"ack":`), f.Ack, 10)
		b = append(b, '}')
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return err
	}
	return http.NewResponseController(w).Flush()
}

func (s *Server) postV2(w http.ResponseWriter, r *http.Request) {
	if s.DisableV2 {
		http.Error(w, "v2 disabled", http.StatusNotFound)
		return
	}
	if r.ProtoMajor < 2 {
		http.Error(w, "POST /v2/record needs HTTP/2", http.StatusHTTPVersionNotSupported)
		return
	}
	started := s.Now()
	w.Header().Set("Content-Type", "application/x-ndjson")
	ss, ref := s.begin(r, "v2")
	if ref != nil {
		// Not an HTTP error status: the client would hang (see admit).
		w.WriteHeader(http.StatusOK)
		writeFrame(w, ackFrame{Error: ref.msg})
		return
	}
	defer s.end(ss)
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()

	// The acker sends frames while this goroutine reads the body.
	ackStop := make(chan struct{})
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		s.ackLoop(w, ss, ackStop)
	}()
	res := s.ingest(ss, r.Body)
	close(ackStop)
	<-ackDone

	status, reason := s.finish(ss, res, started)
	switch status {
	case store.StatusComplete:
		writeFrame(w, ackFrame{Ack: ss.durable.Load()})
	case store.StatusMalformed:
		// Everything is stored; say so, then say what is wrong.
		writeFrame(w, ackFrame{Ack: ss.durable.Load()})
		writeFrame(w, ackFrame{Error: "recording stored but malformed: " + reason})
	default:
		writeFrame(w, ackFrame{Ack: ss.durable.Load()})
		writeFrame(w, ackFrame{Error: reason})
	}
}

// ackLoop writes an ack frame after every sync round, and at least every
// livenessAck even when a round is slow, until stop closes or a write fails.
// A session the server stops (shutdown) gets its ack and error frame here,
// and its body is closed to end the read loop.
func (s *Server) ackLoop(w http.ResponseWriter, ss *session, stop <-chan struct{}) {
	liveness := time.NewTimer(livenessAck)
	defer liveness.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ss.stopped:
			return
		case <-s.commit.roundDone():
		case <-liveness.C:
		}
		if err := ss.syncFailure(); err != nil {
			// Storage is broken: tell the sender and end the upload.
			ss.stop(err)
			return
		}
		if err := writeFrame(w, ackFrame{Ack: ss.durable.Load()}); err != nil {
			return
		}
		liveness.Reset(livenessAck)
	}
}

func (s *Server) postV1(w http.ResponseWriter, r *http.Request) {
	started := s.Now()
	ss, ref := s.begin(r, "v1")
	if ref != nil {
		// Answered before the body is read: no "100 Continue" is sent, and
		// the client fails over to its next recorder.
		http.Error(w, ref.msg, ref.code)
		return
	}
	defer s.end(ss)
	// The first Read sends "100 Continue": only now, with storage ready.
	res := s.ingest(ss, r.Body)
	status, reason := s.finish(ss, res, started)
	switch status {
	case store.StatusComplete:
		w.WriteHeader(http.StatusOK)
	case store.StatusMalformed:
		http.Error(w, "reel recorder: recording stored but malformed: "+reason, http.StatusUnprocessableEntity)
	default:
		http.Error(w, "reel recorder: "+reason, http.StatusInternalServerError)
	}
}

func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) {
	if s.shutting.Load() {
		http.Error(w, "reel recorder: shutting down; try another recorder", http.StatusServiceUnavailable)
		return
	}
	node, err := s.Identify(r)
	if err != nil {
		s.Metrics.errors.add("identify")
		http.Error(w, "reel recorder: cannot identify sender: "+err.Error(), http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.MaxEventSize+1))
	if err != nil {
		http.Error(w, "reel recorder: reading event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) > s.MaxEventSize {
		s.Metrics.errors.add("event_too_large")
		http.Error(w, fmt.Sprintf("reel recorder: event larger than %d bytes", s.MaxEventSize), http.StatusRequestEntityTooLarge)
		return
	}
	if err := checkEvent(body); err != nil {
		s.Metrics.errors.add("event_malformed")
		s.Log.Warn("refused malformed event", "node", node, "remote", r.RemoteAddr, "err", err)
		http.Error(w, "reel recorder: malformed event: "+err.Error(), http.StatusBadRequest)
		return
	}
	id, err := s.Store.PutEvent(r.Context(), node, s.Now(), body)
	if err != nil {
		s.Metrics.errors.add("event_store")
		s.Log.Error("storing event failed", "node", node, "err", err)
		http.Error(w, "reel recorder: storing event: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.Metrics.events.Add(1)
	s.Log.Debug("event stored", "node", node, "id", id)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"id\":%q}\n", id)
}

// checkEvent accepts one JSON object with a non-empty string "type".
func checkEvent(body []byte) error {
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(body, &ev); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	var typ string
	if err := json.Unmarshal(ev["type"], &typ); err != nil || typ == "" {
		return errors.New(`missing "type"`)
	}
	return nil
}

// bodyChecker checks an upload as it streams by (asciicast.Checker,
// desktop.Checker).
type bodyChecker interface {
	Write(p []byte) (int, error)
	Problem() error
	Finish() error
}

// uploadKind tells the kind of recording an upload holds: desktop when
// the sender announced desktop.ContentType, terminal (asciicast) for
// everything else, which is all a Tailscale sender sends.
func uploadKind(r *http.Request) store.Kind {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) == desktop.ContentType {
		return store.KindDesktop
	}
	return store.KindTerminal
}
