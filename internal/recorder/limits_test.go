package recorder_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// castFiles lists every recording file under dir (.cast and .desk),
// whatever its state.
func castFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && store.IsRecordingName(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// waitClosed waits until the server closes c (a read returns an error
// other than a timeout), failing after testutil.DefaultWait.
func waitClosed(t testing.TB, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testutil.DefaultWait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after %v", what, testutil.DefaultWait)
	}
}

// idleSettle waits until the server holds no sessions and no connections.
func idleSettle(t testing.TB, h *harness) {
	t.Helper()
	testutil.WaitForSeen(t, testutil.DefaultWait, "every session and connection to end", func() bool {
		return h.srv.Metrics.SessionsOpen() == 0 && h.srv.Metrics.ConnsOpen() == 0
	}, func() string {
		return fmt.Sprintf("%d sessions, %d connections open", h.srv.Metrics.SessionsOpen(), h.srv.Metrics.ConnsOpen())
	})
}

// TestRapidResetLeavesNoRecording: HTTP/2 streams opened and reset at once
// (rapid reset), some after part of a header line, create no recording;
// they are counted; a normal upload works afterwards.
func TestRapidResetLeavesNoRecording(t *testing.T) {
	h := start(t, nil)
	const streams = 2000
	sent := 0
	for conns := 0; sent < streams; conns++ {
		if conns > streams {
			t.Fatalf("%d connections for %d streams: the server refuses them all", conns, sent)
		}
		sent += resetStreams(t, h.addr.String(), streams-sent)
	}
	idleSettle(t, h)
	if files := castFiles(t, h.dir); len(files) != 0 {
		t.Fatalf("%d reset streams left %d recordings, want none: %v", streams, len(files), files[:min(len(files), 5)])
	}
	abandoned := h.srv.Metrics.Abandoned("v2")
	if abandoned == 0 {
		t.Error("no abandoned upload counted: the handlers never ran, and the test proves nothing")
	}
	t.Logf("%d streams opened and reset, %d reached the handler, no recording", streams, abandoned)
	if _, err := send(t, []netip.AddrPort{h.addr}, castHeader(t), eventLine(1, "after the storm")); err != nil {
		t.Fatalf("normal upload after the resets: %v", err)
	}
	if files := castFiles(t, h.dir); len(files) != 1 {
		t.Errorf("%d recordings after one normal upload, want 1", len(files))
	}
}

// resetStreams opens up to n POST /v2/record streams on one HTTP/2
// connection and resets each at once (every other one after the start of a
// header line), until n are sent or the server closes the connection. It
// returns how many were sent.
func resetStreams(t testing.TB, addr string, n int) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bw := bufio.NewWriter(c)
	fr := http2.NewFramer(bw, c)
	go io.Copy(io.Discard, c) // the server's frames; ends when c closes
	if _, err := bw.WriteString(http2.ClientPreface); err != nil {
		return 0
	}
	if fr.WriteSettings() != nil {
		return 0
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	sent := 0
	for ; sent < n; sent++ {
		id := uint32(2*sent + 1)
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", addr}, {":path", "/v2/record"}, {"content-type", "application/x-asciicast"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}) != nil {
			break
		}
		if sent%2 == 1 && fr.WriteData(id, false, []byte(`{"version":2,"width":80`)) != nil {
			break
		}
		if fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil || bw.Flush() != nil {
			break
		}
	}
	return sent
}

// TestIdleConnectionsClosed: a connection that sent only the HTTP/2
// preface, and an HTTP/1 keep-alive connection between requests, are
// closed after IdleTimeout.
func TestIdleConnectionsClosed(t *testing.T) {
	h := start(t, func(s *recorder.Server) { s.IdleTimeout = 200 * time.Millisecond })

	t.Run("h2 preface only", func(t *testing.T) {
		c, err := net.Dial("tcp", h.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, http2.ClientPreface)
		http2.NewFramer(c, c).WriteSettings()
		waitClosed(t, c, "a connection that sent only the HTTP/2 preface")
	})
	t.Run("http1 keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", h.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, _ := http.NewRequest("HEAD", "http://"+h.addr.String()+"/v2/event", nil)
		req.Write(c)
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("HEAD /v2/event: %v %v (close %v)", resp, err, resp != nil && resp.Close)
		}
		waitClosed(t, c, "an idle HTTP/1 keep-alive connection")
	})
	idleSettle(t, h)
}

// TestConnLimitPerSender: past MaxConnsPerSender a connection is closed as
// soon as it is accepted, and counted; others go on.
func TestConnLimitPerSender(t *testing.T) {
	h := start(t, func(s *recorder.Server) { s.MaxConnsPerSender = 3 })
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", h.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	testutil.WaitFor(t, "3 connections held", func() bool { return h.srv.Metrics.ConnsOpen() == 3 })
	c, err := net.Dial("tcp", h.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitClosed(t, c, "a fourth connection from the same sender")
	if got := h.srv.Metrics.Refused("conns_per_sender"); got != 1 {
		t.Errorf("refused conns_per_sender = %d, want 1", got)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	idleSettle(t, h)
	if _, err := send(t, []netip.AddrPort{h.addr}, castHeader(t), eventLine(1, "ok")); err != nil {
		t.Errorf("upload once the connections closed: %v", err)
	}
}

// TestSessionLimitPerSender: past MaxSessionsPerSender a new recording is
// refused at the HEAD /v2/record probe and again at v1's POST /record, so
// Tailscale's client fails over to its next recorder; once one ends, the
// next is accepted.
func TestSessionLimitPerSender(t *testing.T) {
	h := start(t, func(s *recorder.Server) { s.MaxSessionsPerSender = 2 })
	other := start(t, nil)
	var open []io.WriteCloser
	var errcs []<-chan error
	for range 2 {
		wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{h.addr}, dial)
		if err != nil {
			t.Fatal(err)
		}
		wc.Write(castHeader(t))
		open, errcs = append(open, wc), append(errcs, errc)
	}
	testutil.WaitFor(t, "2 live sessions", func() bool { return h.srv.Metrics.SessionsOpen() == 2 })
	attempts, err := send(t, []netip.AddrPort{h.addr, other.addr}, castHeader(t), eventLine(1, "failed over"))
	if err != nil || attempts != 2 {
		t.Fatalf("third upload: %d attempts, %v; want it refused and sent to the next recorder", attempts, err)
	}
	if got := h.srv.Metrics.Refused("sessions_per_sender"); got != 2 {
		t.Errorf("refused sessions_per_sender = %d, want 2 (the v2 probe, then v1)", got)
	}
	open[0].Close()
	if err := testutil.Recv(t, "the first upload's result", errcs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, []netip.AddrPort{h.addr}, castHeader(t), eventLine(1, "room again")); err != nil {
		t.Errorf("upload once a session ended: %v", err)
	}
	open[1].Close()
	testutil.Recv(t, "the second upload's result", errcs[1])
}

// TestEventLimits: an event announced larger than MaxEventSize is refused
// before it is read; one whose body trickles in is cut at EventTimeout.
func TestEventLimits(t *testing.T) {
	h := start(t, func(s *recorder.Server) { s.MaxEventSize = 1 << 10; s.EventTimeout = 300 * time.Millisecond })
	url := "http://" + h.addr.String() + "/v2/event"

	big := `{"type":"x","pad":"` + strings.Repeat("a", 2<<10) + `"}`
	resp, err := http.Post(url, "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized event: %s, want 413", resp.Status)
	}

	// No Content-Length, and a body that never ends.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"type":`))
	req, _ := http.NewRequest("POST", url, pr)
	req.ContentLength = -1
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "reading event") {
		t.Errorf("trickled event: %s %q, want 400 after EventTimeout", resp.Status, msg)
	}
	for _, err := range h.st.ListEvents(context.Background(), "127.0.0.1", time.Time{}, time.Time{}) {
		t.Errorf("a refused event was stored (err %v)", err)
	}
}

// TestShutdownEndsIdleUploads: Shutdown ends an idle v1 upload (whose body
// Read holds the request body) and an idle v2 upload once its grace is
// over, and returns.
func TestShutdownEndsIdleUploads(t *testing.T) {
	for _, v1 := range []bool{true, false} {
		name := map[bool]string{true: "v1", false: "v2"}[v1]
		t.Run(name, func(t *testing.T) {
			h := start(t, func(s *recorder.Server) { s.DisableV2 = v1 })
			wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{h.addr}, dial)
			if err != nil {
				t.Fatal(err)
			}
			defer wc.Close()
			body := append(castHeader(t), eventLine(0.5, "idle now")...)
			wc.Write(body)
			waitReceived(t, h, len(body))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- h.srv.Shutdown(ctx) }()
			if err := testutil.Recv(t, "Shutdown to return", done); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := testutil.Recv(t, "the client to hear of it", errc); err == nil {
				t.Error("the client was told its upload succeeded")
			}
			info, got := onlyRecording(t, h)
			if info.Status != store.StatusInterrupted || !bytes.Equal(got, body) {
				t.Errorf("status %s, stored %q; want interrupted, %q", info.Status, got, body)
			}
		})
	}
}

// TestHeaderTooLarge: a request header past MaxHeaderBytes is refused
// (431) and the connection freed.
func TestHeaderTooLarge(t *testing.T) {
	h := start(t, func(s *recorder.Server) { s.MaxHeaderBytes = 4 << 10 })
	req, _ := http.NewRequest("HEAD", "http://"+h.addr.String()+"/v2/event", nil)
	req.Header.Set("X-Pad", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %s, want 431", resp.Status)
	}
	http.DefaultClient.CloseIdleConnections()
	idleSettle(t, h)
}

// TestV1EndsBeforeHeader: a v1 upload whose body ends empty, or breaks off
// before its header line, stores nothing; it is answered, counted and
// logged.
func TestV1EndsBeforeHeader(t *testing.T) {
	var logs testutil.Buffer
	h := start(t, func(s *recorder.Server) { s.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	resp, err := http.Post("http://"+h.addr.String()+"/record", "application/x-asciicast", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "no asciicast header line") {
		t.Errorf("empty v1 upload: %s %q, want 400 saying why", resp.Status, msg)
	}

	// Half a header line, then the connection drops.
	c, err := net.Dial("tcp", h.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /record HTTP/1.1\r\nHost: r\r\nContent-Length: 1000\r\n\r\n{\"version\":2,")
	testutil.WaitFor(t, "the half header to arrive", func() bool { return h.srv.Metrics.BytesReceived() >= 13 })
	c.Close()
	idleSettle(t, h)
	if files := castFiles(t, h.dir); len(files) != 0 {
		t.Errorf("uploads that ended before their header line left %v", files)
	}
	if got := h.srv.Metrics.Abandoned("v1"); got != 2 {
		t.Errorf("abandoned v1 uploads = %d, want 2", got)
	}
	logs.WaitFor(t, "upload ended before its header line: nothing stored")
}
