package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// session is one upload being received. Its recording is created only
// once the header line has arrived: an upload that ends before that (a
// stream opened and reset at once) leaves nothing in the store.
type session struct {
	proto   string     // "v1" or "v2"
	kind    store.Kind // what the upload holds (its Content-Type)
	node    string
	log     *slog.Logger
	ctx     context.Context // the request's
	rc      *http.ResponseController
	started time.Time

	// w is nil until the header line has arrived. It is set by the
	// reading goroutine before the committer is told of the session.
	w   store.Writer
	key string

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
}

// finalWriteGrace bounds how long the acker may stay blocked once the
// upload has ended, and then how long the last frames may take, when the
// sender does not read them: the handler must return, or Shutdown would
// wait for it for ever.
const finalWriteGrace = 2 * time.Second

// stop ends the session from outside (shutdown, a failed sync). The
// reader is unblocked by a read deadline in the past: closing the body
// instead would wait for a Read in progress, which for HTTP/1 holds the
// body's lock until the sender sends more, for ever if it is idle.
func (ss *session) stop(err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopErr != nil {
		return
	}
	ss.stopErr = err
	close(ss.stopped)
	ss.rc.SetReadDeadline(time.Now())
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
	smallBuf = 512
	largeBuf = 64 << 10
)

var largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBuf); return &b }}

// maxHead bounds what is held while the header line is awaited: past it
// the recording is created anyway (and the checker judges the line).
const maxHead = 64 << 10

// ingestResult is how the read loop ended.
type ingestResult struct {
	eof       bool  // the sender finished the body
	readErr   error // the connection broke or the server stopped us
	createErr error // the recording could not be created
	storeErr  error // writing to the store failed
	malformed error // the checker's verdict, when the body is not valid asciicast
	head      int   // bytes received before the upload ended, if no recording was created
}

// ingest copies body into the session's recording, checking the asciicast
// stream as it goes, until EOF or an error. The recording is created when
// the header line is complete (or the body ends after some bytes without
// one, or maxHead bytes came without a newline).
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
	var head []byte // bytes before the recording exists
	// keep stores p; false when the store failed.
	keep := func(p []byte) bool {
		chk.Write(p)
		if err := ss.add(p); err != nil {
			res.storeErr = err
			s.Metrics.errors.add("store_write")
			return false
		}
		return true
	}
	for {
		n, err := body.Read(buf)
		if n > 0 {
			s.Metrics.bytesReceived.Add(int64(n))
			p := buf[:n]
			if ss.w == nil {
				head = append(head, p...)
				p = nil
				if bytes.IndexByte(buf[:n], '\n') >= 0 || len(head) >= maxHead {
					// Creating the recording and decoding its header
					// go deep (file system, encoding/json): do it on a
					// goroutine of its own, so that this one, which
					// then waits in Read for as long as the session
					// lasts, keeps a small stack.
					ok := false
					onFreshStack(func() {
						if res.createErr = s.create(ss); res.createErr == nil {
							ok = keep(head)
						}
					})
					if res.createErr != nil {
						res.head = len(head)
					}
					if !ok {
						break
					}
					head = nil
				}
			}
			if len(p) > 0 && !keep(p) {
				break
			}
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
			if ss.w == nil && len(head) > 0 {
				// A whole body without a newline: kept as sent.
				if res.createErr = s.create(ss); res.createErr != nil {
					break
				}
				keep(head)
				head = nil
			}
			break
		}
		if err != nil {
			res.readErr = err
			break
		}
	}
	if ss.w == nil {
		res.head = max(res.head, len(head))
		return res
	}
	if res.eof {
		res.malformed = chk.Finish()
	} else {
		res.malformed = chk.Problem()
	}
	return res
}

// onFreshStack runs f on a new goroutine and waits for it.
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// create makes the session's recording, of the session's kind, now that
// its header line is here. begin has checked that the store keeps that
// kind.
func (s *Server) create(ss *session) error {
	var wr store.Writer
	var err error
	if ss.kind == store.KindTerminal {
		wr, err = s.Store.Create(ss.ctx, ss.node, ss.started)
	} else {
		wr, err = s.Store.(store.KindCreator).CreateKind(ss.ctx, ss.node, ss.started, ss.kind)
	}
	if err != nil {
		if errors.Is(err, store.ErrInsufficientSpace) {
			s.Metrics.errors.add("insufficient_space")
		} else {
			s.Metrics.errors.add("store_create")
		}
		ss.log.Error("cannot store recording", "proto", ss.proto, "err", err)
		return err
	}
	ss.w, ss.key = wr, wr.Key()
	s.commit.add(ss)
	s.notify(ss.key, Change{What: Created})
	ss.log.Info("recording started", "key", ss.key, "proto", ss.proto, "kind", ss.kind)
	return nil
}

// outcome is how an upload ended, and what the sender is told.
type outcome struct {
	status store.Status // "" when no recording was created
	code   int          // the v1 response status
	msg    string       // for the sender; "" when all went well
}

// finish closes the recording (if there is one) with the status the result
// implies, logs, and says what to tell the sender.
func (s *Server) finish(ss *session, res ingestResult) outcome {
	if ss.w == nil {
		return s.abandon(ss, res)
	}
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
	s.notify(ss.key, Change{What: Closed, Size: size, Status: status, Reason: reason})
	s.Metrics.sessionsTotal.add(ss.proto + "," + string(status))
	attrs := []any{"key", ss.key, "proto", ss.proto, "status", status, "bytes", size, "duration", s.Now().Sub(ss.started).Round(time.Millisecond)}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	switch status {
	case store.StatusComplete:
		ss.log.Info("recording finished", attrs...)
		return outcome{status, http.StatusOK, ""}
	case store.StatusInterrupted:
		ss.log.Warn("recording interrupted", attrs...)
	default:
		ss.log.Error("recording did not finish cleanly", attrs...)
	}
	if status == store.StatusMalformed {
		return outcome{status, http.StatusUnprocessableEntity, "recording stored but malformed: " + reason}
	}
	return outcome{status, http.StatusInternalServerError, reason}
}

// abandon ends an upload that never got a recording: it ended before its
// header line, or the recording could not be created. Nothing is stored;
// it is counted and logged (at most one line per sender every
// refusalLogEvery, so that a flood of reset streams cannot flood the log).
func (s *Server) abandon(ss *session, res ingestResult) outcome {
	o := outcome{code: http.StatusInternalServerError}
	switch {
	case res.createErr != nil:
		o.msg = "cannot store recording: " + res.createErr.Error()
		if errors.Is(res.createErr, store.ErrInsufficientSpace) {
			o.code = http.StatusInsufficientStorage
		}
		return o // create logged it
	case ss.stopReason() != nil:
		o.msg = ss.stopReason().Error()
	case res.readErr != nil:
		o.msg = "the upload broke off before its header line: " + res.readErr.Error()
	default:
		o.code, o.msg = http.StatusBadRequest, "empty upload: no asciicast header line"
		if ss.kind == store.KindDesktop {
			o.msg = "empty upload: no desktop recording header line"
		}
	}
	s.Metrics.abandoned.add(ss.proto)
	if n, ok := s.logLimit.allow("abandoned/"+ss.node, time.Now()); ok {
		attrs := []any{"proto", ss.proto, "bytes", res.head, "reason", o.msg}
		if n > 0 {
			attrs = append(attrs, "also_abandoned_since_last_logged", n)
		}
		ss.log.Warn("upload ended before its header line: nothing stored", attrs...)
	}
	return o
}

// refusal is why a recording cannot start: an HTTP status, a message, and
// for a limit the reason it is counted under.
type refusal struct {
	code   int
	msg    string
	reason string
}

var refusalShutdown = &refusal{http.StatusServiceUnavailable, "reel recorder: shutting down; try another recorder", ""}

// admit decides whether r's sender may start a recording now, and names
// the sender's node. It is asked at the HEAD /v2/record probe as well as at
// the upload, because Tailscale's client hangs when POST /v2/record answers
// anything but 200: refusing at the probe sends it to v1, where a refusal
// before "100 Continue" makes it fail over to the next recorder.
func (s *Server) admit(r *http.Request) (node string, ref *refusal) {
	if s.shutting.Load() {
		return "", refusalShutdown
	}
	node, err := s.Identify(r)
	if err != nil {
		s.Metrics.errors.add("identify")
		s.Log.Warn("refused recording: unknown sender", "remote", r.RemoteAddr, "err", err)
		return "", &refusal{http.StatusForbidden, "reel recorder: cannot identify sender: " + err.Error(), ""}
	}
	if ref := s.overLimit(node); ref != nil {
		s.refuse(ref.reason, "refused recording: too many at once", "node", node, "remote", r.RemoteAddr)
		return "", ref
	}
	if sc, ok := s.Store.(SpaceChecker); ok {
		if err := sc.CheckSpace(); err != nil {
			s.Metrics.errors.add("insufficient_space")
			s.Log.Error("refused recording: not enough storage", "node", node, "remote", r.RemoteAddr, "err", err)
			return "", &refusal{http.StatusInsufficientStorage, "reel recorder: cannot store recording: " + err.Error(), ""}
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

// begin admits the sender and counts the upload as live, or returns why
// not. The recording itself is created by ingest, once the header line
// has arrived.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, proto string) (*session, *refusal) {
	node, ref := s.admit(r)
	if ref != nil {
		return nil, ref
	}
	kind := uploadKind(r)
	if _, ok := s.Store.(store.KindCreator); kind != store.KindTerminal && !ok {
		// Refused before the body is read, as for any refusal.
		s.Metrics.errors.add("store_kind")
		s.Log.Error("refused recording: the store keeps only terminal recordings", "node", node, "remote", r.RemoteAddr, "kind", kind)
		return nil, &refusal{http.StatusUnsupportedMediaType, "reel recorder: this store keeps only terminal recordings", ""}
	}
	ss := &session{
		proto:   proto,
		kind:    kind,
		node:    node,
		log:     s.Log.With("node", node, "remote", r.RemoteAddr),
		ctx:     r.Context(),
		rc:      http.NewResponseController(w),
		started: s.Now(),
		stopped: make(chan struct{}),
	}
	if ref := s.track(ss); ref != nil {
		if ref.reason != "" {
			s.refuse(ref.reason, "refused recording: too many at once", "node", node, "remote", r.RemoteAddr)
		}
		return nil, ref
	}
	s.Metrics.sessionsOpen.Add(1)
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
	var b []byte
	if f.Error == "" {
		// Always spell out the count, even zero, for readers other than
		// Tailscale's (which treats a missing ack as 0). No encoding/json:
		// it would grow every idle session's acker stack for good.
		var a [32]byte
		b = append(strconv.AppendInt(append(a[:0], `{"ack":`...), f.Ack, 10), '}')
	} else {
		b, _ = json.Marshal(f)
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
	w.Header().Set("Content-Type", "application/x-ndjson")
	ss, ref := s.begin(w, r, "v2")
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
	t := time.NewTimer(finalWriteGrace)
	select {
	case <-ackDone:
	case <-t.C:
		// Blocked writing to a sender that does not read: reset the
		// stream.
		ss.rc.SetWriteDeadline(time.Now())
		<-ackDone
	}
	t.Stop()

	o := s.finish(ss, res)
	ss.rc.SetWriteDeadline(time.Now().Add(finalWriteGrace))
	writeFrame(w, ackFrame{Ack: ss.durable.Load()})
	if o.msg != "" {
		// Everything acked is stored; then say what went wrong.
		writeFrame(w, ackFrame{Error: o.msg})
	}
}

// ackLoop writes an ack frame after every sync round, and at least every
// livenessAck even when a round is slow, until stop closes or a write fails.
// A session the server stops (shutdown) gets its ack and error frame from
// postV2, once the read loop has ended.
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
	ss, ref := s.begin(w, r, "v1")
	if ref != nil {
		// Answered before the body is read: no "100 Continue" is sent, and
		// the client fails over to its next recorder.
		http.Error(w, ref.msg, ref.code)
		return
	}
	defer s.end(ss)
	// The first Read sends "100 Continue": only now, with the sender
	// admitted and storage ready.
	o := s.finish(ss, s.ingest(ss, r.Body))
	if o.msg == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, "reel recorder: "+o.msg, o.code)
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
