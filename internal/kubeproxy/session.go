package kubeproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/kubeproxy/spdy"
	"github.com/reel-rec/reel/internal/kubeproxy/ws"
	"github.com/reel-rec/reel/internal/sender"
)

// Streaming protocols of a session.
const (
	protoWebSocket = "websocket"
	protoSPDY      = "spdy"
)

// isSession reports whether r starts an exec or attach session: an
// upgrade of the pods/exec or pods/attach subresource.
func isSession(r *http.Request, info *request.RequestInfo) bool {
	return info.IsResourceRequest && info.Resource == "pods" &&
		(info.Subresource == "exec" || info.Subresource == "attach") &&
		upgradeProtocol(r) != ""
}

func upgradeProtocol(r *http.Request) string {
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		return ""
	}
	switch up := strings.ToLower(r.Header.Get("Upgrade")); {
	case up == "websocket":
		return protoWebSocket
	case strings.HasPrefix(up, "spdy/"):
		return protoSPDY
	}
	return ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func queryBool(q map[string][]string, name string) bool {
	if v := q[name]; len(v) > 0 {
		return v[0] == "true" || v[0] == "1"
	}
	return false
}

// serveSession serves an exec or attach session: it starts the recording
// (or refuses the session under enforceRecorder), forwards the upgrade
// request, then relays the upgraded connection, parsing it as it passes.
func (s *Server) serveSession(w http.ResponseWriter, req *proxyRequest) {
	r, d := req.r, req.decision
	proto := upgradeProtocol(r)
	q := r.URL.Query()
	tty := queryBool(q, "tty")
	events := d.Record && d.EnableEvents
	kind := req.info.Subresource
	if events && d.EnforceRecorder {
		if err := s.events.reachable(r.Context(), d.Recorders); err != nil {
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
				"reel kube-proxy: this request must be recorded (enforceRecorder), but no recorder could be reached: "+err.Error())
			return
		}
	}

	out := r.Clone(context.WithoutCancel(r.Context()))
	upCtx, cancelUp := context.WithCancel(out.Context())
	defer cancelUp()
	out = out.WithContext(upCtx)
	out.RequestURI = ""
	s.rewrite(out, req)
	if d.Record && proto == protoWebSocket {
		// Frames must stay parseable: no compression extension, and
		// only the channel subprotocols the parser reads.
		out.Header.Del("Sec-WebSocket-Extensions")
		var offered []string
		for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); ws.Supported(p) {
					offered = append(offered, p)
				}
			}
		}
		if len(offered) == 0 {
			if s.refuseUnrecordable(w, req, "the client offers no WebSocket subprotocol reel can record (base64 channels are not supported)") {
				return
			}
		} else {
			out.Header.Set("Sec-WebSocket-Protocol", strings.Join(offered, ", "))
		}
	}

	d = req.decision // refuseUnrecordable may have turned recording off
	var rec *sender.Recording
	recStart := s.now()
	if d.Record {
		var err error
		rec, err = s.startRecording(req, proto, tty)
		if err != nil {
			var lines []string
			if se, ok := err.(*sender.StartError); ok {
				for _, a := range se.Attempts {
					lines = append(lines, a.String())
				}
			} else {
				lines = append(lines, err.Error())
			}
			if d.EnforceRecorder {
				s.log().Warn("session refused: no recorder reachable and the policy enforces recording",
					"user", req.id.User, "pod", req.pod, "namespace", req.info.Namespace, "policy_line", d.RecordLine, "err", err)
				writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf(
					"reel kube-proxy: this kubectl %s session must be recorded, but no recorder could be reached (%s); the session is refused (enforceRecorder)",
					kind, strings.Join(lines, "; ")))
				return
			}
			s.gaps.add()
			s.log().Error("RECORDING FAILED TO START: the session runs UNRECORDED (fail open)",
				"user", req.id.User, "pod", req.pod, "namespace", req.info.Namespace, "policy_line", d.RecordLine, "err", err)
			rec = nil
		}
	}

	upStart := s.now()
	resp, err := s.transport().RoundTrip(out)
	upDone := s.now()
	if err != nil {
		s.closeUnused(rec)
		if events {
			s.recordEvent(req, http.StatusBadGateway)
		}
		writeStatus(w, http.StatusBadGateway, metav1.StatusReasonServiceUnavailable, "reel kube-proxy: upstream API server: "+err.Error())
		return
	}
	if events {
		if err := s.recordEvent(req, resp.StatusCode); err != nil {
			resp.Body.Close()
			s.closeUnused(rec)
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
				"reel kube-proxy: the request could not be recorded and the policy enforces recording: "+err.Error())
			return
		}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Refused upstream (RBAC, no such pod): pass the answer on.
		defer resp.Body.Close()
		s.closeUnused(rec)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return
	}
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		s.closeUnused(rec)
		writeStatus(w, http.StatusBadGateway, metav1.StatusReasonInternalError, "reel kube-proxy: the upstream upgrade is not writable")
		return
	}
	if rec != nil && proto == protoWebSocket && !ws.Supported(resp.Header.Get("Sec-WebSocket-Protocol")) {
		up.Close()
		s.closeUnused(rec)
		rec = nil
		if s.refuseUnrecordable(w, req, "the API server chose WebSocket subprotocol "+quote(resp.Header.Get("Sec-WebSocket-Protocol"))+", which reel cannot record") {
			return
		}
		writeStatus(w, http.StatusBadGateway, metav1.StatusReasonInternalError, "reel kube-proxy: retry the session")
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		s.closeUnused(rec)
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "reel kube-proxy: cannot take over the connection: "+err.Error())
		return
	}
	conn.SetDeadline(time.Time{})
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		up.Close()
		s.closeUnused(rec)
		return
	}
	s.log().Debug("session set up", "user", req.id.User, "pod", req.pod, "namespace", req.info.Namespace, "kind", kind,
		"proto", proto, "recorded", rec != nil, "total", s.now().Sub(req.start),
		"recorder", upStart.Sub(recStart), "upstream", upDone.Sub(upStart))
	sess := &session{
		s: s, req: req, rec: rec, proto: proto, tty: tty, kind: kind,
		client: conn, clientR: brw.Reader, up: up, enforce: d.EnforceRecorder,
		streams: map[uint32]string{},
	}
	s.track(sess, true)
	defer s.track(sess, false)
	sess.run()
}

// refuseUnrecordable handles a session that cannot be recorded: under
// enforceRecorder it is refused (true); else it runs unrecorded.
func (s *Server) refuseUnrecordable(w http.ResponseWriter, req *proxyRequest, why string) bool {
	if req.decision.EnforceRecorder {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, "reel kube-proxy: "+why+"; the session is refused (enforceRecorder)")
		return true
	}
	s.gaps.add()
	s.log().Error("SESSION NOT RECORDED (fail open): "+why, "user", req.id.User, "pod", req.pod)
	req.decision.Record = false
	return false
}

// closeUnused closes a recording whose session never started.
func (s *Server) closeUnused(rec *sender.Recording) {
	if rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.finishTimeout())
	defer cancel()
	rec.Close(ctx)
}

func (s *Server) finishTimeout() time.Duration {
	if s.FinishTimeout > 0 {
		return s.FinishTimeout
	}
	return 30 * time.Second
}

// startRecording connects to the recorders with the session's header;
// with a terminal, the header waits for kubectl's first resize.
func (s *Server) startRecording(req *proxyRequest, proto string, tty bool) (*sender.Recording, error) {
	q := req.r.URL.Query()
	id := make([]byte, 8)
	rand.Read(id)
	extra := map[string]any{
		"sender":   senderName,
		"srcAddr":  req.src.String(),
		"user":     req.id,
		"protocol": proto,
		"tty":      tty,
		"hostname": s.Hostname,
		"stdin":    queryBool(q, "stdin"),
	}
	h := asciicast.Header{
		Width: 80, Height: 24,
		Command:      strings.Join(q["command"], " "),
		SrcNode:      req.src.Addr().String(),
		SrcNodeUser:  req.id.User,
		ConnectionID: hex.EncodeToString(id),
		Env:          map[string]string{},
		Kubernetes: &asciicast.Kubernetes{
			PodName:     req.pod,
			Namespace:   req.info.Namespace,
			Container:   q.Get("container"),
			SessionType: req.info.Subresource,
		},
		Extra: map[string]json.RawMessage{},
	}
	if tty {
		h.Env["TERM"] = "xterm"
	}
	for k, v := range extra {
		b, _ := json.Marshal(v)
		h.Extra[k] = b
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 30*time.Second)
	defer cancel()
	if tty {
		return s.Recording.StartHeld(ctx, req.decision.Recorders, h)
	}
	return s.Recording.Start(ctx, req.decision.Recorders, h)
}

// session is one relayed exec or attach connection.
type session struct {
	s       *Server
	req     *proxyRequest
	proto   string
	kind    string
	tty     bool
	enforce bool

	client  net.Conn
	clientR *bufio.Reader
	up      io.ReadWriteCloser

	rec    *sender.Recording // nil when not recorded
	active atomic.Pointer[sender.Recording]
	sized  atomic.Bool // the first resize has been seen

	mu       sync.Mutex
	streams  map[uint32]string // SPDY stream id → stream type
	errID    uint32            // SPDY error stream
	killMsg  string            // why the proxy ends the session
	killed   bool
	closeErr sync.Once

	out       [3]outStream // stdout, stderr carries (index by channel)
	resizeBuf []byte
	errBuf    []byte
}

// run relays the connection until one side ends, then finishes the
// recording.
func (ss *session) run() {
	if ss.rec != nil {
		ss.active.Store(ss.rec)
	}
	done := make(chan struct{})
	if ss.rec != nil {
		go func() {
			select {
			case <-ss.rec.Lost():
				ss.lost(ss.rec, ss.rec.Err())
			case <-done:
			}
		}()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ss.clientToUpstream()
		if ss.isKilled() {
			// The other direction tells kubectl why, then closes.
			ss.up.Close()
			return
		}
		ss.closeBoth()
	}()
	go func() { defer wg.Done(); ss.upstreamToClient(); ss.closeBoth() }()
	wg.Wait()
	close(done)
	ss.finish()
}

func (ss *session) closeBoth() {
	ss.closeErr.Do(func() {
		ss.up.Close()
		ss.client.Close()
	})
}

const relayBuf = 32 << 10

// clientToUpstream relays what kubectl sends: stdin (never recorded),
// resizes, stream set-up.
func (ss *session) clientToUpstream() {
	var feed func([]byte) error
	if ss.rec != nil {
		if ss.proto == protoWebSocket {
			p := &ws.Parser{Masked: true, Data: ss.wsClientData}
			feed = p.Write
		} else {
			p := &spdy.Parser{Headers: true, SynStream: ss.synStream, Data: ss.spdyClientData}
			feed = p.Write
		}
	}
	buf := make([]byte, relayBuf)
	for {
		n, err := ss.clientR.Read(buf)
		if n > 0 {
			if feed != nil {
				if perr := feed(buf[:n]); perr != nil {
					feed = nil
					ss.parseFailed(perr)
				}
			}
			if _, werr := ss.up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// maxHeld bounds the bytes of an unfinished frame the relay holds back.
const maxHeld = 1 << 20

// upstreamToClient relays what the container sends: stdout and stderr
// (recorded), the error stream (the exit status). A recorded session's
// bytes are forwarded up to the last frame (WebSocket: message) that ended
// in them, and the rest is held back until its frame is whole, so that
// kubectl is always between frames: if the recording is lost, the proxy
// can then tell it why on the error stream, and kubectl fails instead of
// reading a cut stream as a clean end. (A frame larger than maxHeld is
// forwarded as it comes; the stream then may end inside it.)
func (ss *session) upstreamToClient() {
	var feed func([]byte) error
	var lastBoundary func() int
	if ss.rec != nil {
		if ss.proto == protoWebSocket {
			p := &ws.Parser{Data: ss.wsServerData}
			feed, lastBoundary = p.Write, p.LastBoundary
		} else {
			p := &spdy.Parser{Data: ss.spdyServerData}
			feed, lastBoundary = p.Write, p.LastBoundary
		}
	}
	buf := make([]byte, relayBuf)
	var held []byte    // the start of an unfinished frame, not yet forwarded
	atBoundary := true // what kubectl got so far ends between frames
	for {
		n, err := ss.up.Read(buf)
		if n > 0 {
			out := buf[:n]
			cut := n      // forward held and out[:cut] now, hold out[cut:] back
			next := false // whether kubectl is between frames after that
			if feed != nil {
				if perr := feed(out); perr != nil {
					feed = nil
					ss.parseFailed(perr)
				} else if b := lastBoundary(); b >= 0 {
					cut, next = b, true
				} else if len(held)+n <= maxHeld {
					cut = 0 // still inside the frame: kubectl stays where it was
				} // else a huge frame: forward it as it comes
			}
			if ss.isKilled() {
				break // the recording is lost: what it missed is not shown
			}
			if cut > 0 {
				w := out[:cut]
				if len(held) > 0 {
					held = append(held, w...)
					w = held
				}
				if _, werr := ss.client.Write(w); werr != nil {
					return
				}
				held = held[:0]
				atBoundary = next
			}
			held = append(held, out[cut:]...)
		}
		if err != nil {
			break
		}
	}
	msg, killed := ss.killReason()
	if !killed {
		ss.client.Write(held) // the stream ended inside a frame: pass it on as it is
		return
	}
	if atBoundary {
		ss.client.Write(ss.endMessage(msg))
	}
}

func (ss *session) isKilled() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.killed
}

func (ss *session) killReason() (string, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.killMsg, ss.killed
}

// kill ends the session with msg for the user: the upstream side is cut,
// and the relay then tells kubectl why, on the error stream.
func (ss *session) kill(msg string) {
	ss.mu.Lock()
	if ss.killed {
		ss.mu.Unlock()
		return
	}
	ss.killed, ss.killMsg = true, msg
	ss.mu.Unlock()
	ss.up.Close()
}

// endMessage is what kubectl is sent when the proxy ends a session: a
// failure Status on the error stream, which kubectl prints as
// "error: MESSAGE", then the end of the connection.
func (ss *session) endMessage(msg string) []byte {
	st := statusJSON(http.StatusForbidden, metav1.StatusReasonForbidden, msg)
	if ss.proto == protoWebSocket {
		b := ws.AppendMessage(nil, ws.Error, st)
		return ws.AppendClose(b)
	}
	ss.mu.Lock()
	id := ss.errID
	ss.mu.Unlock()
	if id == 0 {
		return nil
	}
	return spdy.AppendData(nil, id, st, true)
}

// lost handles the loss of the recording, once.
func (ss *session) lost(rec *sender.Recording, err error) {
	if !ss.active.CompareAndSwap(rec, nil) {
		return
	}
	r := ss.req
	if ss.enforce {
		ss.s.log().Warn("recording lost: ending the session, as the policy enforces recording",
			"user", r.id.User, "pod", r.pod, "recorder", rec.Recorder(), "err", err)
		ss.kill(fmt.Sprintf("reel kube-proxy: the recording of this session was lost (%v); the policy requires recording, so the session is ended", err))
		return
	}
	ss.s.gaps.add()
	ss.s.log().Error("RECORDING LOST: the session goes on UNRECORDED (fail open)",
		"user", r.id.User, "pod", r.pod, "namespace", r.info.Namespace, "recorder", rec.Recorder(), "err", err)
}

// parseFailed handles a stream the parser cannot follow: it can no
// longer be recorded.
func (ss *session) parseFailed(err error) {
	rec := ss.active.Load()
	if rec == nil {
		return
	}
	ss.lost(rec, fmt.Errorf("cannot follow the %s stream: %w", ss.proto, err))
}

// output records container output of one stream (1 stdout, 2 stderr).
func (ss *session) output(stream int, p []byte) {
	rec := ss.active.Load()
	if rec == nil {
		return
	}
	// A recorder slower than the container paces it: the relay stops
	// reading the API server, and flow control reaches the container.
	rec.WaitRoom()
	if err := ss.out[stream].write(rec, p); err != nil {
		ss.lost(rec, err)
	}
}

func (ss *session) resize(b []byte) {
	var sz struct{ Width, Height int }
	if json.Unmarshal(b, &sz) != nil || sz.Width <= 0 || sz.Height <= 0 {
		return
	}
	rec := ss.active.Load()
	if rec == nil {
		return
	}
	if ss.tty && !ss.sized.Swap(true) {
		rec.ReleaseHeader(sz.Width, sz.Height) // the first size goes in the header
		return
	}
	if err := rec.Resize(sz.Width, sz.Height); err != nil {
		ss.lost(rec, err)
	}
}

// maxControlMessage bounds the resize and error stream bytes kept.
const maxControlMessage = 64 << 10

func (ss *session) wsClientData(ch byte, p []byte, last bool) error {
	if ch != ws.Resize {
		return nil // stdin and CLOSE signals: never recorded
	}
	if len(ss.resizeBuf)+len(p) <= maxControlMessage {
		ss.resizeBuf = append(ss.resizeBuf, p...)
	}
	if last {
		ss.resize(ss.resizeBuf)
		ss.resizeBuf = ss.resizeBuf[:0]
	}
	return nil
}

func (ss *session) wsServerData(ch byte, p []byte, last bool) error {
	switch ch {
	case ws.Stdout, ws.Stderr:
		ss.output(int(ch), p)
	case ws.Error:
		if len(ss.errBuf)+len(p) <= maxControlMessage {
			ss.errBuf = append(ss.errBuf, p...)
		}
	}
	return nil
}

func (ss *session) synStream(id uint32, h http.Header) {
	typ := h.Get("streamtype")
	ss.mu.Lock()
	ss.streams[id] = typ
	if typ == "error" {
		ss.errID = id
	}
	ss.mu.Unlock()
}

func (ss *session) streamType(id uint32) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.streams[id]
}

func (ss *session) spdyClientData(id uint32, p []byte, fin bool) error {
	if ss.streamType(id) != "resize" {
		return nil // stdin: never recorded
	}
	// client-go writes each size as a JSON line.
	ss.resizeBuf = append(ss.resizeBuf, p...)
	for {
		i := strings.IndexByte(string(ss.resizeBuf), '\n')
		if i < 0 {
			break
		}
		ss.resize(ss.resizeBuf[:i])
		ss.resizeBuf = append(ss.resizeBuf[:0], ss.resizeBuf[i+1:]...)
	}
	if len(ss.resizeBuf) > maxControlMessage {
		ss.resizeBuf = ss.resizeBuf[:0]
	}
	return nil
}

func (ss *session) spdyServerData(id uint32, p []byte, fin bool) error {
	switch ss.streamType(id) {
	case "stdout":
		ss.output(1, p)
	case "stderr":
		ss.output(2, p)
	case "error":
		if len(ss.errBuf)+len(p) <= maxControlMessage {
			ss.errBuf = append(ss.errBuf, p...)
		}
	}
	return nil
}

// finish ends the recording: what is held back, the exit status, then
// Close and the recorder's confirmation.
func (ss *session) finish() {
	if ss.rec == nil {
		return
	}
	rec := ss.active.Load()
	if rec != nil {
		for i := range ss.out {
			if err := ss.out[i].flush(rec); err != nil {
				ss.lost(rec, err)
				break
			}
		}
	}
	if rec = ss.active.Load(); rec != nil {
		if code, ok := exitStatus(ss.errBuf); ok {
			if err := rec.Exit(code); err != nil {
				ss.lost(rec, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.finishTimeout())
	defer cancel()
	err := ss.rec.Close(ctx)
	if err != nil && ss.active.CompareAndSwap(ss.rec, nil) {
		ss.s.gaps.add()
		ss.s.log().Error("RECORDING NOT CONFIRMED: its end may be missing", "user", ss.req.id.User, "pod", ss.req.pod,
			"recorder", ss.rec.Recorder(), "err", err)
	}
}

// exitStatus reads the exit status from what the error stream carried: a
// Status object (v4 and later) whose success means 0 and whose
// NonZeroExitCode cause holds the code.
func exitStatus(b []byte) (int, bool) {
	var st metav1.Status
	if len(b) == 0 || json.Unmarshal(b, &st) != nil {
		return 0, false
	}
	if st.Status == metav1.StatusSuccess {
		return 0, true
	}
	if st.Reason != "NonZeroExitCode" || st.Details == nil {
		return 0, false
	}
	for _, c := range st.Details.Causes {
		if c.Type == "ExitCode" {
			if n, err := strconv.Atoi(c.Message); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

// outStream records one output stream: a UTF-8 character cut between two
// chunks is joined before it is recorded; bytes that are not UTF-8 are
// recorded as binary ("b" events), byte for byte.
type outStream struct {
	carry []byte
}

func (o *outStream) write(rec *sender.Recording, p []byte) error {
	data := p
	if len(o.carry) > 0 {
		data = append(o.carry, p...)
		o.carry = nil
	}
	cut := len(data) - incompleteTail(data)
	if cut < len(data) {
		o.carry = append([]byte(nil), data[cut:]...)
	}
	data = data[:cut]
	if len(data) == 0 {
		return nil
	}
	if utf8.Valid(data) {
		return rec.Output(data)
	}
	return rec.Binary(data)
}

func (o *outStream) flush(rec *sender.Recording) error {
	if len(o.carry) == 0 {
		return nil
	}
	c := o.carry
	o.carry = nil
	return rec.Binary(c)
}

// incompleteTail returns the length of a UTF-8 sequence begun but not
// finished at the end of b (0 to 3 bytes).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[i:]) {
				return len(b) - i
			}
			return 0
		}
	}
	return 0
}

// gapCounter counts sessions and requests that went unrecorded.
type gapCounter struct{ n atomic.Int64 }

func (g *gapCounter) add() { g.n.Add(1) }

// Gaps returns how many sessions or parts of sessions went unrecorded
// (fail open) since the start.
func (s *Server) Gaps() int64 { return s.gaps.n.Load() }

// liveSessions tracks sessions for Shutdown.
var errSessionCut = errors.New("reel kube-proxy: shutting down")

func (s *Server) track(ss *session, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = map[*session]struct{}{}
	}
	if add {
		s.sessions.Add(1)
		s.live[ss] = struct{}{}
		return
	}
	delete(s.live, ss)
	s.sessions.Done()
}

func (s *Server) cutSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.live {
		ss.kill(errSessionCut.Error())
	}
}
