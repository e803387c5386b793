package sender

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/reel-rec/reel/internal/asciicast"
)

// A Recording is one session being uploaded. Its write methods are safe
// for concurrent use and never block.
type Recording struct {
	c      *Client
	start  time.Time
	header *asciicast.Header
	// contentType is the upload's Content-Type for StartStream; "" for
	// asciicast.
	contentType string
	attempts    []Attempt
	recorder    netip.AddrPort
	proto       string
	limit       int

	cancel   context.CancelCauseFunc // ends the upload request
	ackTimer *time.Timer             // v2: fires after AckTimeout without a frame
	respBody io.Closer               // v2: the response; closing it resets the stream

	mu       sync.Mutex
	queue    []event       // written, not yet taken by the connection
	queued   int           // bytes of data in queue
	last     time.Duration // time of the last event queued
	closing  bool          // Close was called: drain the queue, then end the body
	hold     bool          // StartHeld: the header waits for ReleaseHeader
	heldHead []byte        // the released header line, for the body to send first
	bodyGone bool          // the transport closed the request body
	err      error         // why the recording was lost
	ended    bool          // the request is over (finish ran)
	started  bool          // Start has reported Started: a loss may be reported
	lostOut  *Outcome      // a loss before that, reported right after Started
	wake     chan struct{}
	room     chan struct{} // WaitRoom's: closed when the queue drains to half the limit
	lost     chan struct{} // closed when err is set
	done     chan struct{} // closed when the request is over

	// The upload body's state, touched only by the transport's reader.
	pend        []byte    // encoded bytes not yet read
	off         int       // read position in pend
	carry       [2]string // incomplete UTF-8 at the end of the last o / i event
	gatherTimer *time.Timer

	sent  atomic.Int64 // body bytes handed to the transport
	acked atomic.Int64 // largest ack received
}

// event is one queued event. Time is measured at the write.
type event struct {
	t      time.Duration
	code   byte // 'o', 'i' or 'r'
	data   []byte
	pooled *[]byte // data's buffer, to return to chunkPool once encoded
}

// chunkPool holds buffers for writes of up to chunkSize bytes (what a pty
// or pipe read returns), so that a busy session does not allocate for
// every write.
const chunkSize = 32 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

func newEvent(t time.Duration, code byte, p []byte) event {
	if len(p) > chunkSize {
		return event{t: t, code: code, data: bytes.Clone(p)}
	}
	bp := chunkPool.Get().(*[]byte)
	return event{t: t, code: code, data: append((*bp)[:0], p...), pooled: bp}
}

func (ev *event) release() {
	if ev.pooled != nil {
		*ev.pooled = ev.data[:0]
		chunkPool.Put(ev.pooled)
		ev.pooled, ev.data = nil, nil
	}
}

func newRecording(c *Client, start time.Time, head []byte) *Recording {
	return &Recording{
		c:     c,
		start: start,
		limit: c.bufferSize(),
		pend:  head,
		wake:  make(chan struct{}, 1),
		lost:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Attempts returns the attempts Start made, the last one being the
// recorder in use.
func (r *Recording) Attempts() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// Recorder returns the address of the recorder in use.
func (r *Recording) Recorder() netip.AddrPort { return r.recorder }

// Protocol returns "v2" or "v1".
func (r *Recording) Protocol() string { return r.proto }

// Lost is closed when the recording breaks: Err then says why.
func (r *Recording) Lost() <-chan struct{} { return r.lost }

// Err returns why the recording was lost, or nil.
func (r *Recording) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Sent returns the number of bytes handed to the connection so far.
func (r *Recording) Sent() int64 { return r.sent.Load() }

// Acked returns the largest ack received from a v2 recorder: the bytes it
// has stored durably.
func (r *Recording) Acked() int64 { return r.acked.Load() }

// Output records data written to the terminal. It copies p and returns at
// once; the error is not nil when the recording is lost (ErrOverflow when
// this write found the buffer full) or closed, and then p is not recorded.
func (r *Recording) Output(p []byte) error { return r.add('o', p) }

// Input records data typed by the user. Callers decide whether input may
// be recorded at all (reel records it only when the policy opts in, and
// never while the terminal's echo is off).
func (r *Recording) Input(p []byte) error { return r.add('i', p) }

// Write queues p to be sent as it is, for a recording begun with
// StartStream. Like Output it copies p, never blocks, and fails when the
// recording is lost or the buffer is full.
func (r *Recording) Write(p []byte) error { return r.add(rawCode, p) }

// rawCode marks an event whose bytes are sent as they are.
const rawCode = 0

// WaitRoom blocks while the buffer is more than half full, so that a
// session writing faster than the recorder takes is slowed to the
// recorder's pace (its relay stops reading, and flow control pushes back
// on the program) instead of overflowing the buffer and losing the
// recording. It returns false when it waited the Client's RoomWait and the
// buffer is still that full: the recorder takes nothing, and the caller's next write may
// overflow, to be handled by its failure policy. It returns true at once
// when the recording is lost or closing (the write then says so).
func (r *Recording) WaitRoom() bool {
	var timer *time.Timer
	for {
		r.mu.Lock()
		if r.err != nil || r.closing || r.queued <= r.limit/2 {
			r.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return true
		}
		if r.room == nil {
			r.room = make(chan struct{})
		}
		room := r.room
		r.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(r.c.roomWait())
		}
		select {
		case <-room:
		case <-r.lost:
		case <-timer.C:
			return false
		}
	}
}

// Resize records a new terminal size.
func (r *Recording) Resize(cols, rows int) error {
	b := strconv.AppendInt(nil, int64(cols), 10)
	b = append(b, 'x')
	b = strconv.AppendInt(b, int64(rows), 10)
	return r.add('r', b)
}

func (r *Recording) add(code byte, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	r.mu.Lock()
	switch {
	case r.err != nil:
		r.mu.Unlock()
		return r.err
	case r.closing:
		r.mu.Unlock()
		return ErrClosed
	case r.queued+len(p) > r.limit:
		r.mu.Unlock()
		r.fail(ErrOverflow)
		return ErrOverflow
	}
	// Times are taken under the lock so that they grow in queue order
	// even with concurrent writers.
	t := max(r.c.now().Sub(r.start), r.last)
	r.last = t
	r.queue = append(r.queue, newEvent(t, code, p))
	r.queued += len(p)
	// Wake the upload for the first event, and when a batch is full; in
	// between it gathers writes (see body.Read).
	wake := len(r.queue) == 1 || r.queued >= coalesceBytes && r.queued-len(p) < coalesceBytes
	r.mu.Unlock()
	if wake {
		r.signal()
	}
	return nil
}

// The upload gathers writes for up to coalesceDelay, or until
// coalesceBytes are queued, before it sends them: a busy session then
// costs one frame and one wake-up per batch rather than per write, on both
// ends. Recording lags the terminal by at most the delay; the terminal
// itself never waits.
const (
	coalesceDelay = 2 * time.Millisecond
	coalesceBytes = 128 << 10
)

func (r *Recording) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// fail marks the recording lost, ends the upload and reports it. Only the
// first failure counts; after a clean end it does nothing.
func (r *Recording) fail(err error) {
	r.mu.Lock()
	if r.err != nil || r.ended {
		r.mu.Unlock()
		return
	}
	r.err = err
	r.mu.Unlock()
	defer close(r.lost) // after the report: who waits on Lost sees it done
	r.signal()
	if r.cancel != nil {
		r.cancel(err)
	}
	if r.respBody != nil {
		// Cancelling the context does not wake an HTTP/2 upload that
		// waits for flow control (a stalled recorder); closing the
		// response resets the stream.
		r.respBody.Close()
	}
	o := r.outcome(Lost, err)
	r.mu.Lock()
	if !r.started {
		// Lost while Start is still returning (a recorder that fails the
		// upload at once): Start reports it after Started, so that a
		// Report sees them in order. A failed attempt never reports it.
		r.lostOut = &o
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.c.report(o)
}

// announce is called by Start once it has reported Started: a loss that
// came first is reported now.
func (r *Recording) announce() {
	r.mu.Lock()
	r.started = true
	o := r.lostOut
	r.lostOut = nil
	r.mu.Unlock()
	if o != nil {
		r.c.report(*o)
	}
}

// finish records the end of the request: err nil means the recorder
// confirmed everything after Close; anything else is a loss.
func (r *Recording) finish(err error) {
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if err == nil && !closing {
		err = fmt.Errorf("recording: recorder %s ended the upload before the session ended", r.recorder)
	}
	if err != nil {
		r.fail(err)
	}
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
	if r.ackTimer != nil {
		r.ackTimer.Stop()
	}
	if r.cancel != nil {
		r.cancel(errors.New("recording: upload over"))
	}
	close(r.done)
}

// outcome describes the recording; r.mu must not be held. Attempts are set
// by Start once connect returns, so a loss reported while Start is still
// returning may carry none.
func (r *Recording) outcome(kind OutcomeKind, err error) Outcome {
	r.mu.Lock()
	attempts := r.attempts
	r.mu.Unlock()
	return Outcome{
		Kind: kind, Header: r.header, Attempts: attempts,
		Recorder: r.recorder, Protocol: r.proto, Err: err,
		Sent: r.sent.Load(), Acked: r.acked.Load(),
	}
}

// Close ends the recording: what was written is sent, the upload is
// finished, and Close waits, at most until ctx is done, for the recorder
// to confirm it (v2: a last ack for every byte and no error frame; v1: a
// 200 answer). It returns nil when the recorder confirmed the whole
// recording, else why not. Close may be called more than once.
func (r *Recording) Close(ctx context.Context) error {
	r.mu.Lock()
	first := !r.closing
	r.closing = true
	r.mu.Unlock()
	r.signal()
	select {
	case <-r.done:
	case <-ctx.Done():
		r.fail(fmt.Errorf("recording: recorder %s did not confirm the end of the recording: %w", r.recorder, context.Cause(ctx)))
		<-r.done
	}
	if err := r.Err(); err != nil {
		return err
	}
	if first {
		r.c.report(r.outcome(Finished, nil))
	}
	return nil
}

// maxBatch bounds the data taken from the queue for one encoding round.
const maxBatch = 256 << 10

// body is the upload's request body: it encodes queued events as
// asciicast lines as the transport asks for data. It is a separate type so
// that the Recording is not an io.Reader.
type body struct{ r *Recording }

func (b *body) Read(p []byte) (int, error) {
	r := b.r
	for r.off == len(r.pend) {
		r.pend, r.off = r.pend[:0], 0
		r.mu.Lock()
		for (r.hold || len(r.queue) == 0) && r.err == nil && !r.closing && !r.bodyGone {
			r.mu.Unlock()
			<-r.wake
			r.mu.Lock()
			if !r.hold && r.queued < coalesceBytes && r.err == nil && !r.closing && !r.bodyGone {
				// A first write: let more come.
				r.mu.Unlock()
				r.gather()
				r.mu.Lock()
			}
		}
		if r.err != nil {
			err := r.err
			r.mu.Unlock()
			return 0, err
		}
		if r.bodyGone {
			r.mu.Unlock()
			return 0, errBodyClosed
		}
		if r.hold {
			r.releaseLocked(0, 0) // closing before the size came
		}
		if r.heldHead != nil {
			r.pend, r.heldHead = append(r.pend, r.heldHead...), nil
		}
		var batch []event
		n := 0
		for i, ev := range r.queue {
			if i > 0 && n+len(ev.data) > maxBatch {
				break
			}
			n += len(ev.data)
			batch = r.queue[:i+1]
		}
		r.queue = r.queue[len(batch):]
		if len(r.queue) == 0 {
			r.queue = nil // let the backing array go
		}
		r.queued -= n
		if r.room != nil && r.queued <= r.limit/2 {
			close(r.room)
			r.room = nil
		}
		drained := r.closing && len(r.queue) == 0
		r.mu.Unlock()
		for i := range batch {
			r.encode(batch[i])
			batch[i].release()
		}
		if drained {
			r.flushCarry()
			if r.off == len(r.pend) {
				return 0, io.EOF
			}
		}
	}
	n := copy(p, r.pend[r.off:])
	r.off += n
	r.sent.Add(int64(n))
	return n, nil
}

// gather waits coalesceDelay, or less if a batch fills up or the
// recording ends meanwhile.
func (r *Recording) gather() {
	if r.gatherTimer == nil {
		r.gatherTimer = time.NewTimer(coalesceDelay)
	} else {
		r.gatherTimer.Reset(coalesceDelay)
	}
	select {
	case <-r.wake:
		r.gatherTimer.Stop()
	case <-r.gatherTimer.C:
	}
}

var errBodyClosed = errors.New("recording: upload body closed")

// Close is called by the transport when it is done with the body: at the
// end, or when the connection breaks. A Read blocked waiting for data must
// then return, or the transport never notices the broken connection.
func (b *body) Close() error {
	r := b.r
	r.mu.Lock()
	r.bodyGone = true
	r.mu.Unlock()
	r.signal()
	return nil
}

// encode appends ev to pend as an asciicast line. Output and input are
// byte streams split anywhere; a UTF-8 sequence cut at the end of a write
// is held back and joined to the next write of the same stream, so it is
// not replaced by U+FFFD.
func (r *Recording) encode(ev event) {
	if ev.code == rawCode {
		r.pend = append(r.pend, ev.data...)
		return
	}
	// The bytes are not changed until the event is released, after this.
	data := unsafe.String(unsafe.SliceData(ev.data), len(ev.data))
	if ci := carryIndex(ev.code); ci >= 0 {
		if c := r.carry[ci]; c != "" {
			data = c + data
		}
		cut := len(data) - incompleteSuffix(data)
		r.carry[ci] = strings.Clone(data[cut:])
		data = data[:cut]
		if data == "" {
			return
		}
	}
	r.pend = asciicast.AppendEvent(r.pend, asciicast.Event{Time: ev.t.Seconds(), Code: string(ev.code), Data: data})
	r.pend = append(r.pend, '\n')
}

// flushCarry writes what is held back, at the end of the recording.
func (r *Recording) flushCarry() {
	r.mu.Lock()
	t := r.last.Seconds()
	r.mu.Unlock()
	for i, code := range []string{"o", "i"} {
		if r.carry[i] != "" {
			r.pend = asciicast.AppendEvent(r.pend, asciicast.Event{Time: t, Code: code, Data: r.carry[i]})
			r.pend = append(r.pend, '\n')
			r.carry[i] = ""
		}
	}
}

func carryIndex(code byte) int {
	switch code {
	case 'o':
		return 0
	case 'i':
		return 1
	}
	return -1
}

// incompleteSuffix returns the length of the UTF-8 sequence cut short at
// the end of s: 1 to 3 bytes that start a valid multi-byte character but
// do not finish it. It is 0 when s ends with a whole character or with
// bytes that are invalid anyway (those become U+FFFD).
func incompleteSuffix(s string) int {
	for n := 1; n <= 3 && n <= len(s); n++ {
		c := s[len(s)-n]
		if c < 0x80 {
			return 0
		}
		if c < 0xC0 {
			continue // a continuation byte: the start is further back
		}
		if want := seqLen(c); want > n && validPrefix(s[len(s)-n:]) {
			return n
		}
		return 0
	}
	return 0
}

// seqLen returns the length of the UTF-8 sequence that the byte c starts,
// or 0 if c cannot start one.
func seqLen(c byte) int {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 0
}

// validPrefix reports whether p, a start byte and continuation bytes, can
// begin the valid UTF-8 encoding of a character (no overlong forms, no
// surrogates, nothing above U+10FFFF).
func validPrefix(p string) bool {
	lo, hi := byte(0x80), byte(0xBF)
	switch p[0] {
	case 0xE0:
		lo = 0xA0
	case 0xED:
		hi = 0x9F
	case 0xF0:
		lo = 0x90
	case 0xF4:
		hi = 0x8F
	}
	for i := 1; i < len(p); i++ {
		if i == 1 && (p[i] < lo || p[i] > hi) {
			return false
		}
		if p[i] < 0x80 || p[i] > 0xBF {
			return false
		}
	}
	return true
}

// readAcks reads the v2 response: one JSON frame per line. Every frame
// restarts the ack timer; an error frame ends the recording.
func (r *Recording) readAcks(resp *http.Response, tr *http.Transport) {
	defer tr.CloseIdleConnections()
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 4<<10)
	for {
		line, err := readLine(br, maxFrame)
		if len(line) > 0 {
			f, perr := parseFrame(line)
			if perr != nil {
				r.finish(fmt.Errorf("recording: recorder %s: %w", r.recorder, perr))
				return
			}
			r.ackTimer.Reset(r.c.ackTimeout())
			if f.Error != "" {
				r.finish(&RecorderError{Recorder: r.recorder, Msg: f.Error})
				return
			}
			if f.Ack > r.acked.Load() {
				r.acked.Store(f.Ack)
			}
		}
		if err == io.EOF {
			r.finish(r.checkEnd())
			return
		}
		if err != nil {
			if cause := context.Cause(resp.Request.Context()); cause != nil {
				err = cause
			}
			r.finish(fmt.Errorf("recording: connection to recorder %s: %w", r.recorder, err))
			return
		}
	}
}

// checkEnd says whether the v2 response ended as it should: after Close,
// with every byte sent acked.
func (r *Recording) checkEnd() error {
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if !closing {
		return nil // finish reports the early end
	}
	if sent, acked := r.sent.Load(), r.acked.Load(); acked < sent {
		return fmt.Errorf("recording: recorder %s ended the upload having acked %d of %d bytes", r.recorder, acked, sent)
	}
	return nil
}

// maxFrame bounds one response line; frames are a few dozen bytes.
const maxFrame = 64 << 10

// readLine returns the next line of br without its newline. A line longer
// than max is an error.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("response line longer than %d bytes", max)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, err
	}
}

// frame is one line of a v2 response.
type frame struct {
	Ack   int64
	Error string
}

// parseFrame parses one v2 response line: a JSON object with an optional
// non-negative integer "ack" and an optional string "error". Other fields
// are ignored (a newer recorder may add some); blank lines are allowed.
func parseFrame(line []byte) (frame, error) {
	var raw struct {
		Ack   json.RawMessage `json:"ack"`
		Error *string         `json:"error"`
	}
	var f frame
	if len(trimSpace(line)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return f, fmt.Errorf("bad response frame %.40q: %w", line, err)
	}
	if raw.Ack != nil && string(raw.Ack) != "null" {
		n, err := strconv.ParseInt(string(raw.Ack), 10, 64)
		if err != nil || n < 0 {
			return f, fmt.Errorf("bad ack %.40s in response frame", raw.Ack)
		}
		f.Ack = n
	}
	if raw.Error != nil {
		f.Error = *raw.Error // "" is no error, as for Tailscale's client
	}
	return f, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
