// Package sender is the sender side of the recording API: it streams one
// terminal session, as asciicast v2, to the first reachable recorder of an
// ordered list. reel ssh uses it, as will the planned reel kube-proxy.
//
// It speaks the wire contract of Tailscale's tsrecorder (see
// tailscale.com/sessionrecording, whose behaviour it follows): probe
// HEAD /v2/record; if the answer is 200 over HTTP/2, POST /v2/record over
// h2c and watch the {"ack":N} frames of the response, else fall back to
// POST /record over HTTP/1.1 with Expect: 100-continue. Unlike that
// package it exposes what a sender needs to enforce a failure policy: the
// attempts made, the acks, the recorder's error frames, and a Lost channel
// for a recording that breaks mid-way.
//
// Writes never block: Output, Input and Resize copy the data into a
// bounded buffer that a background upload drains. When the buffer is full
// the recording fails with ErrOverflow; the caller decides whether the
// session goes on (fail open) or ends (fail closed). A caller that can
// slow its session down calls WaitRoom before writing, so that a recorder
// slower than the session paces it instead of losing the recording.
package sender

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
)

// Defaults for the Client's zero fields. The first three are those of
// Tailscale's client.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultAckTimeout     = 30 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultBufferSize     = 8 << 20
	// DefaultRoomWait is long enough for a recorder busy syncing, short
	// enough that a recorder that takes nothing is noticed.
	DefaultRoomWait = 10 * time.Second
)

// A Client starts recordings. The zero value is ready to use; a Client is
// safe for concurrent use and holds no connections of its own (each
// Recording has its own).
type Client struct {
	// Dial opens connections to recorders. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds one dial. Zero means DefaultDialTimeout (5 s).
	DialTimeout time.Duration
	// AttemptTimeout bounds the v2 probe and the wait for a recorder's
	// answer to the upload request (200 for v2, 100 Continue for v1).
	// Zero means DefaultAttemptTimeout (10 s).
	AttemptTimeout time.Duration
	// ConnectTimeout bounds all the attempts of one Start together. Zero
	// means DefaultConnectTimeout (30 s).
	ConnectTimeout time.Duration
	// AckTimeout is how long a v2 upload may go without an ack frame
	// before it is dropped (ErrNoAcks). Zero means DefaultAckTimeout
	// (30 s).
	AckTimeout time.Duration
	// BufferSize bounds the bytes written but not yet handed to the
	// connection. Zero means DefaultBufferSize (8 MiB).
	BufferSize int
	// RoomWait bounds how long Recording.WaitRoom waits for a recorder
	// that is behind before it lets the writer go on (and overflow).
	// Zero means DefaultRoomWait.
	RoomWait time.Duration
	// Now returns the current time; event times are measured with it.
	// Nil means time.Now.
	Now func() time.Time
	// Log receives debug lines about attempts. Nil discards.
	Log *slog.Logger
	// Report, if set, is called once when a recording starts or fails to
	// start, and once more when a started recording is lost or finishes.
	// It must not block.
	Report func(Outcome)
}

// An Attempt is one try of one recorder.
type Attempt struct {
	Recorder netip.AddrPort
	// Protocol is "v2" or "v1": the API tried; "" when the recorder could
	// not be reached at all.
	Protocol string
	// Err says why the attempt failed; nil for the attempt that started
	// the recording.
	Err error
}

func (a Attempt) String() string {
	switch {
	case a.Err == nil:
		return fmt.Sprintf("%s (%s): ok", a.Recorder, a.Protocol)
	case a.Protocol != "":
		return fmt.Sprintf("%s (%s): %v", a.Recorder, a.Protocol, a.Err)
	}
	return fmt.Sprintf("%s: %v", a.Recorder, a.Err)
}

// OutcomeKind says what happened to a recording.
type OutcomeKind int

const (
	// Started: a recorder accepted the recording.
	Started OutcomeKind = iota + 1
	// StartFailed: no recorder could be reached; Err is a *StartError.
	StartFailed
	// Lost: a started recording broke before the session ended (error
	// frame, no acks, dropped connection, full buffer), or the recorder
	// did not confirm it at the end.
	Lost
	// Finished: the recording was closed and the recorder confirmed it.
	Finished
)

func (k OutcomeKind) String() string {
	switch k {
	case Started:
		return "started"
	case StartFailed:
		return "failed to start"
	case Lost:
		return "lost"
	case Finished:
		return "finished"
	}
	return fmt.Sprintf("OutcomeKind(%d)", int(k))
}

// An Outcome is reported to Client.Report.
type Outcome struct {
	Kind     OutcomeKind
	Header   *asciicast.Header // the header of the recording (do not modify)
	Attempts []Attempt         // every attempt of the Start, in order
	Recorder netip.AddrPort    // the recorder in use; zero for StartFailed
	Protocol string            // "v2" or "v1"; "" for StartFailed
	Err      error             // for StartFailed and Lost
	Sent     int64             // bytes handed to the connection
	Acked    int64             // bytes the recorder acknowledged (v2)
}

// A StartError is returned by Start when no recorder accepted the
// recording.
type StartError struct {
	Attempts []Attempt
}

func (e *StartError) Error() string {
	if len(e.Attempts) == 0 {
		return "recording: no recorders configured"
	}
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.String()
	}
	return "recording: no recorder reachable: " + strings.Join(parts, "; ")
}

// Unwrap returns the errors of the attempts.
func (e *StartError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

// A RecorderError is an error frame ({"error":"..."}) sent by a v2
// recorder, or the message of a v1 recorder's failure status.
type RecorderError struct {
	Recorder netip.AddrPort
	Msg      string
}

func (e *RecorderError) Error() string {
	return fmt.Sprintf("recording: recorder %s reported: %s", e.Recorder, e.Msg)
}

var (
	// ErrOverflow: the session wrote faster than the recorder took the
	// data, and the buffer filled up.
	ErrOverflow = errors.New("recording: buffer full: the recorder does not keep up with the session")
	// ErrNoAcks: a v2 recorder sent no ack frame for AckTimeout.
	ErrNoAcks = errors.New("recording: no ack from the recorder in time")
	// ErrClosed: the recording was written to after Close.
	ErrClosed = errors.New("recording: closed")
)

func (c *Client) dialTimeout() time.Duration { return orDefault(c.DialTimeout, DefaultDialTimeout) }
func (c *Client) attemptTimeout() time.Duration {
	return orDefault(c.AttemptTimeout, DefaultAttemptTimeout)
}
func (c *Client) connectTimeout() time.Duration {
	return orDefault(c.ConnectTimeout, DefaultConnectTimeout)
}
func (c *Client) ackTimeout() time.Duration { return orDefault(c.AckTimeout, DefaultAckTimeout) }

func (c *Client) bufferSize() int {
	if c.BufferSize > 0 {
		return c.BufferSize
	}
	return DefaultBufferSize
}

func (c *Client) roomWait() time.Duration {
	if c.RoomWait > 0 {
		return c.RoomWait
	}
	return DefaultRoomWait
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) report(o Outcome) {
	if c.Report != nil {
		c.Report(o)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Start connects to the first recorder of recorders that accepts a
// recording, trying them in order, and sends the header h. h.Version is
// set to 2 and h.Timestamp to the start time; event times count from it.
//
// ctx bounds the attempts only (together also bounded by ConnectTimeout);
// the upload runs until Close or a failure. On failure the error is a
// *StartError holding every attempt.
func (c *Client) Start(ctx context.Context, recorders []netip.AddrPort, h asciicast.Header) (*Recording, error) {
	return c.startCast(ctx, recorders, h, false)
}

// startCast is Start, and StartHeld with hold.
func (c *Client) startCast(ctx context.Context, recorders []netip.AddrPort, h asciicast.Header, hold bool) (*Recording, error) {
	start := c.now()
	h.Version = 2
	h.Timestamp = start.Unix()
	head, err := h.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	head = append(head, '\n')
	return c.start(ctx, recorders, start, &h, "", head, hold)
}

// StartStream starts a recording that is not asciicast (a desktop
// recording): head, the start of the body, is sent as it is, and so is
// every Recording.Write after it. contentType is sent as the upload's
// Content-Type, so the recorder stores the body as that kind. Failover,
// acks, the buffer and Lost work as for Start; Outcome.Header is nil.
func (c *Client) StartStream(ctx context.Context, recorders []netip.AddrPort, contentType string, head []byte) (*Recording, error) {
	return c.start(ctx, recorders, c.now(), nil, contentType, bytes.Clone(head), false)
}

func (c *Client) start(ctx context.Context, recorders []netip.AddrPort, start time.Time, h *asciicast.Header, contentType string, head []byte, hold bool) (*Recording, error) {

	ctx, cancel := context.WithTimeout(ctx, c.connectTimeout())
	defer cancel()
	var attempts []Attempt
	for _, ap := range recorders {
		r := newRecording(c, start, head)
		r.header = h // before connect: its goroutines may report at once
		r.contentType = contentType
		if hold {
			r.pend, r.hold = nil, true
		}
		proto, err := c.connect(ctx, r, ap)
		attempts = append(attempts, Attempt{Recorder: ap, Protocol: proto, Err: err})
		if err != nil {
			c.log().Debug("recording: attempt failed", "recorder", ap, "proto", proto, "err", err)
			continue
		}
		r.mu.Lock()
		r.attempts = attempts
		r.mu.Unlock()
		c.report(Outcome{Kind: Started, Header: h, Attempts: attempts, Recorder: ap, Protocol: proto})
		r.announce()
		return r, nil
	}
	err := &StartError{Attempts: attempts}
	c.report(Outcome{Kind: StartFailed, Header: h, Attempts: attempts, Err: err})
	return nil, err
}

// connect tries one recorder: the v2 probe, then v2 or v1. It returns the
// protocol tried ("" if the recorder could not be reached) and why it
// failed.
func (c *Client) connect(ctx context.Context, r *Recording, ap netip.AddrPort) (string, error) {
	if !ap.IsValid() || ap.Port() == 0 {
		return "", fmt.Errorf("bad recorder address %q", ap)
	}
	dial := c.dialFunc(ctx)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Transport{Protocols: &p, DialContext: dial, IdleConnTimeout: 30 * time.Second}
	v2, err := c.probeV2(ctx, h2, ap)
	if err != nil {
		h2.CloseIdleConnections()
		return "", err
	}
	if v2 {
		if err := r.startV2(ctx, h2, ap); err != nil {
			h2.CloseIdleConnections()
			return "v2", err
		}
		return "v2", nil
	}
	h2.CloseIdleConnections()
	h1 := &http.Transport{
		DialContext:       dial,
		DisableKeepAlives: true,
		// Send the body only after "100 Continue": the recorder says it
		// is ready to store by sending it.
		ExpectContinueTimeout: 24 * time.Hour,
	}
	if err := r.startV1(ctx, h1, ap); err != nil {
		h1.CloseIdleConnections()
		return "v1", err
	}
	return "v1", nil
}

// dialFunc returns the dialer for one attempt: each dial is bounded by
// DialTimeout and by ctx (the attempts' overall deadline), whatever the
// context of the request that asked for it.
func (c *Client) dialFunc(ctx context.Context) func(context.Context, string, string) (net.Conn, error) {
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	timeout := c.dialTimeout()
	return func(reqCtx context.Context, network, addr string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(reqCtx, timeout)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		conn, err := dial(dctx, network, addr)
		if err != nil {
			return nil, &dialError{err}
		}
		return conn, nil
	}
}

// dialError marks a failure to reach the recorder at all.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// probeV2 asks whether the recorder speaks v2. An unreachable recorder is
// an error (there is no point trying v1 on it); any other failure means
// "not v2".
func (c *Client) probeV2(ctx context.Context, tr *http.Transport, ap netip.AddrPort) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+ap.String()+"/v2/record", nil)
	if err != nil {
		return false, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		if de, ok := errors.AsType[*dialError](err); ok {
			return false, fmt.Errorf("dial: %w", de.err)
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("no answer to HEAD /v2/record: %w", context.Cause(ctx))
		}
		return false, nil
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.ProtoMajor == 2, nil
}

// statusError describes a refusal, with the start of the recorder's
// message.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		return fmt.Errorf("recorder answered %s", resp.Status)
	}
	return fmt.Errorf("recorder answered %s: %s", resp.Status, msg)
}

// startV2 sends POST /v2/record and waits for the 200 answer; then a
// goroutine reads the ack frames until the response ends.
func (r *Recording) startV2(ctx context.Context, tr *http.Transport, ap netip.AddrPort) error {
	r.recorder, r.proto = ap, "v2"
	upCtx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	req, err := http.NewRequestWithContext(upCtx, http.MethodPost, "http://"+ap.String()+"/v2/record", &body{r})
	if err != nil {
		cancel(err)
		return err
	}
	req.Header.Set("Content-Type", cmp.Or(r.contentType, "application/x-ndjson"))
	// Until the answer comes, the attempt's deadlines apply.
	timer := time.AfterFunc(r.c.attemptTimeout(), func() { cancel(errors.New("no answer to POST /v2/record in time")) })
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	resp, err := tr.RoundTrip(req)
	timer.Stop()
	stop()
	if err != nil {
		cancel(err)
		if cause := context.Cause(upCtx); cause != nil && cause != err {
			return fmt.Errorf("POST /v2/record: %w", cause)
		}
		return fmt.Errorf("POST /v2/record: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		err := statusError(resp)
		resp.Body.Close()
		cancel(err)
		return fmt.Errorf("POST /v2/record: %w", err)
	}
	r.respBody = resp.Body
	r.ackTimer = time.AfterFunc(r.c.ackTimeout(), func() { r.fail(ErrNoAcks) })
	go r.readAcks(resp, tr)
	return nil
}

// startV1 sends POST /record and waits for 100 Continue; the request then
// runs in a goroutine until the recorder's final answer.
func (r *Recording) startV1(ctx context.Context, tr *http.Transport, ap netip.AddrPort) error {
	r.recorder, r.proto = ap, "v1"
	upCtx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	got100 := make(chan struct{})
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(got100) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(upCtx, trace), http.MethodPost, "http://"+ap.String()+"/record", &body{r})
	if err != nil {
		cancel(err)
		return err
	}
	req.Header.Set("Expect", "100-continue")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		res <- result{resp, err}
	}()
	wait := time.NewTimer(r.c.attemptTimeout())
	defer wait.Stop()
	fail := func(err error) error {
		cancel(err)
		if x := <-res; x.resp != nil {
			x.resp.Body.Close()
		}
		tr.CloseIdleConnections()
		return fmt.Errorf("POST /record: %w", err)
	}
	select {
	case <-got100:
	case x := <-res:
		tr.CloseIdleConnections()
		if x.err != nil {
			cancel(x.err)
			return fmt.Errorf("POST /record: %w", x.err)
		}
		err := statusError(x.resp)
		x.resp.Body.Close()
		cancel(err)
		return fmt.Errorf("POST /record: before 100 Continue: %w", err)
	case <-wait.C:
		return fail(errors.New("no 100 Continue in time"))
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
	go func() {
		x := <-res
		var err error
		switch {
		case x.err != nil:
			err = x.err
		case x.resp.StatusCode != http.StatusOK:
			err = &RecorderError{Recorder: r.recorder, Msg: statusError(x.resp).Error()}
		}
		if x.resp != nil {
			x.resp.Body.Close()
		}
		tr.CloseIdleConnections()
		r.finish(err)
	}()
	return nil
}
