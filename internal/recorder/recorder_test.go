package recorder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	// The real client honours HTTP_PROXY for v1 and events.
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		os.Unsetenv(v)
	}
	goleak.VerifyTestMain(m)
}

type harness struct {
	srv  *recorder.Server
	st   *fsstore.Store
	addr netip.AddrPort
	dir  string
}

func start(t testing.TB, configure func(*recorder.Server)) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.Open(dir, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Metrics set here, not by Serve: tests read them while Serve starts.
	srv := &recorder.Server{Store: st, AckInterval: 100 * time.Millisecond, Metrics: recorder.NewMetrics(nil)}
	if configure != nil {
		configure(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return &harness{srv: srv, st: st, addr: netip.MustParseAddrPort(ln.Addr().String()), dir: dir}
}

func dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// castHeader is what Tailscale SSH sends as the first line.
func castHeader(t testing.TB) []byte {
	h := sessionrecording.CastHeader{
		Version: 2, Width: 80, Height: 24, Timestamp: 1700000000,
		SrcNode: "laptop.tail1234.ts.net", SrcNodeID: "nABCDEF1CNTRL", SrcNodeTags: []string{"tag:dev"},
		SSHUser: "alice", LocalUser: "root", ConnectionID: "conn-1", Command: "/bin/bash",
		Env: map[string]string{"TERM": "xterm-256color"},
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func eventLine(sec float64, data string) []byte {
	b, _ := json.Marshal([]any{sec, "o", data})
	return append(b, '\n')
}

// send uploads body in chunks with the real client and returns the
// client's final error.
func send(t testing.TB, recs []netip.AddrPort, chunks ...[]byte) (attempts int, err error) {
	t.Helper()
	ctx := context.Background()
	wc, att, errc, err := sessionrecording.ConnectToRecorder(ctx, recs, dial)
	if err != nil {
		return len(att), err
	}
	for _, c := range chunks {
		if _, err := wc.Write(c); err != nil {
			wc.Close()
			return len(att), fmt.Errorf("write: %w", err)
		}
	}
	if err := wc.Close(); err != nil {
		return len(att), fmt.Errorf("close: %w", err)
	}
	select {
	case err := <-errc:
		return len(att), err
	case <-time.After(30 * time.Second):
		return len(att), errors.New("no result from recorder within 30s")
	}
}

// waitReceived waits until the server has received n bytes of recordings.
func waitReceived(t testing.TB, h *harness, n int) {
	t.Helper()
	testutil.WaitForSeen(t, testutil.DefaultWait, fmt.Sprintf("the recorder to receive %d bytes", n),
		func() bool { return h.srv.Metrics.BytesReceived() >= int64(n) },
		func() string { return fmt.Sprintf("%d bytes received", h.srv.Metrics.BytesReceived()) })
}

func onlyRecording(t *testing.T, h *harness) (store.Info, []byte) {
	t.Helper()
	var infos []store.Info
	for info, err := range h.st.List(context.Background(), store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	if len(infos) != 1 {
		t.Fatalf("got %d recordings, want 1: %+v", len(infos), infos)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, filepath.FromSlash(infos[0].Key)))
	if err != nil {
		t.Fatal(err)
	}
	return infos[0], b
}

func TestRealClientStoresByteExact(t *testing.T) {
	for _, tc := range []struct {
		name      string
		disableV2 bool
	}{
		{"v2", false},
		{"v1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(s *recorder.Server) { s.DisableV2 = tc.disableV2 })
			var sent bytes.Buffer
			chunks := [][]byte{castHeader(t)}
			for i := range 200 {
				chunks = append(chunks, eventLine(float64(i)*0.01, fmt.Sprintf("line %d \x1b[1mbold\x1b[0m ünïcødé\r\n", i)))
			}
			for _, c := range chunks {
				sent.Write(c)
			}
			if _, err := send(t, []netip.AddrPort{h.addr}, chunks...); err != nil {
				t.Fatalf("upload: %v", err)
			}
			info, got := onlyRecording(t, h)
			if !bytes.Equal(got, sent.Bytes()) {
				t.Errorf("stored %d bytes, sent %d; differ", len(got), sent.Len())
			}
			if info.Status != store.StatusComplete {
				t.Errorf("status = %s (%s), want complete", info.Status, info.Reason)
			}
			if want := "127.0.0.1"; info.Node != want {
				t.Errorf("node = %q, want %q", info.Node, want)
			}
		})
	}
}

func TestHeadV2NeedsHTTP2(t *testing.T) {
	h := start(t, nil)
	req, _ := http.NewRequest("HEAD", "http://"+h.addr.String()+"/v2/record", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("HEAD /v2/record over HTTP/1.1 = 200; the client would then try v2 over HTTP/1")
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &p}}
	defer h2.CloseIdleConnections()
	resp, err = h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("HEAD /v2/record over h2c = %d %s, want 200 HTTP/2", resp.StatusCode, resp.Proto)
	}
}

func TestFailoverFromDeadRecorder(t *testing.T) {
	h := start(t, nil)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := netip.MustParseAddrPort(dead.Addr().String())
	dead.Close() // nothing listens there now
	attempts, err := send(t, []netip.AddrPort{deadAddr, h.addr}, castHeader(t), eventLine(0.5, "hi"))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if attempts != 2 {
		t.Errorf("attempts = %d, want 2 (dead, then live)", attempts)
	}
	info, got := onlyRecording(t, h)
	if info.Status != store.StatusComplete || !bytes.HasSuffix(got, eventLine(0.5, "hi")) {
		t.Errorf("status %s, stored %q", info.Status, got)
	}
}

func TestEventsRealClient(t *testing.T) {
	h := start(t, nil)
	ev := sessionrecording.Event{
		Type: sessionrecording.KubernetesAPIEventType, Timestamp: 1700000000, UserAgent: "kubectl/v1.32",
		Request:    sessionrecording.Request{Method: "GET", Path: "/api/v1/namespaces/default/pods"},
		Kubernetes: sessionrecording.KubernetesRequestInfo{IsResourceRequest: true, Verb: "list", Resource: "pods", Namespace: "default"},
		Source:     sessionrecording.Source{Node: "laptop.ts.net", NodeID: "nSRC"},
	}
	body, _ := json.Marshal(ev)
	for range 3 {
		if err := sessionrecording.SendEvent(h.addr, bytes.NewReader(body), dial); err != nil {
			t.Fatalf("SendEvent: %v", err)
		}
	}
	var got []store.Event
	for e, err := range h.st.ListEvents(context.Background(), "127.0.0.1", time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 3 {
		t.Fatalf("stored %d events, want 3", len(got))
	}
	var back sessionrecording.Event
	if err := json.Unmarshal(got[2].Data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, back); diff != "" {
		t.Errorf("event changed in storage (-sent +stored):\n%s", diff)
	}
	one, err := h.st.GetEvent(context.Background(), got[1].ID)
	if err != nil || !bytes.Equal(one, got[1].Data) {
		t.Errorf("GetEvent(%s) = %s, %v", got[1].ID, one, err)
	}
}

func TestMalformedEventRefused(t *testing.T) {
	h := start(t, nil)
	for _, tc := range []struct{ name, body string }{
		{"not json", "hello"},
		{"array", "[1,2]"},
		{"no type", `{"id":"x"}`},
		{"truncated", `{"type":"kubernetes-api-request"`},
		// Stored raw, it would make that line of events/<day>.jsonl
		// invalid JSON for every strict reader.
		{"invalid utf8", "{\"type\":\"kubernetes-api-request\",\"userAgent\":\"kubectl \xff\xfe\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post("http://"+h.addr.String()+"/v2/event", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "malformed event") || (tc.name == "invalid utf8" && !strings.Contains(string(msg), "not valid UTF-8")) {
				t.Errorf("got %d %q, want 400 with a message", resp.StatusCode, msg)
			}
		})
	}
	for _, err := range h.st.ListEvents(context.Background(), "127.0.0.1", time.Time{}, time.Time{}) {
		t.Errorf("a malformed event was stored (err %v)", err)
	}
}

func TestMalformedRecordingsStoredAndFlagged(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3<<20)
	for _, tc := range []struct {
		name   string
		chunks [][]byte
		want   string // in the reason
	}{
		{"not asciicast", [][]byte{[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}, "line 1"},
		{"wrong version", [][]byte{[]byte(`{"version":3,"term":{"cols":80,"rows":24}}` + "\n")}, "version"},
		{"bad event", [][]byte{[]byte(`{"version":2,"width":80,"height":24}` + "\n"), []byte("[1.0,\"o\"]\n")}, "line 2"},
		{"invalid utf8", [][]byte{[]byte(`{"version":2,"width":80,"height":24}` + "\n"), []byte("[1.0,\"o\",\"\xff\xfe\"]\n")}, "line 2"},
		{"long line", [][]byte{[]byte(`{"version":2,"width":80,"height":24}` + "\n"), big}, "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(s *recorder.Server) { s.MaxLine = 1 << 20 })
			_, err := send(t, []netip.AddrPort{h.addr}, tc.chunks...)
			if err == nil || !strings.Contains(err.Error(), "malformed") {
				t.Errorf("client error = %v, want a malformed-recording error", err)
			}
			info, got := onlyRecording(t, h)
			if want := bytes.Join(tc.chunks, nil); !bytes.Equal(got, want) {
				t.Errorf("stored %d bytes, sent %d: evidence must be kept byte for byte", len(got), len(want))
			}
			if info.Status != store.StatusMalformed || !strings.Contains(info.Reason, tc.want) {
				t.Errorf("status %s reason %q, want malformed mentioning %q", info.Status, info.Reason, tc.want)
			}
			// A healthy session right after is unaffected.
			if _, err := send(t, []netip.AddrPort{h.addr}, castHeader(t), eventLine(1, "ok")); err != nil {
				t.Errorf("next good session: %v", err)
			}
		})
	}
}

func TestConcurrentSessions(t *testing.T) {
	h := start(t, nil)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunks := [][]byte{castHeader(t)}
			for j := range 50 {
				chunks = append(chunks, eventLine(float64(j), fmt.Sprintf("session %d line %d\r\n", i, j)))
			}
			if _, err := send(t, []netip.AddrPort{h.addr}, chunks...); err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	count := 0
	for info, err := range h.st.List(context.Background(), store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		count++
		if info.Status != store.StatusComplete {
			t.Errorf("%s: status %s (%s)", info.Key, info.Status, info.Reason)
		}
		b, _ := os.ReadFile(filepath.Join(h.dir, info.Key))
		if bytes.Count(b, []byte("\n")) != 51 {
			t.Errorf("%s: %d lines, want 51", info.Key, bytes.Count(b, []byte("\n")))
		}
	}
	if count != n {
		t.Errorf("%d recordings stored, want %d", count, n)
	}
}

// TestIdleSessionKeptAlive holds a v2 upload idle for longer than the
// client's 30 s ack window: only ack frames sent while idle keep it alive.
func TestIdleSessionKeptAlive(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 36 s; runs in the full suite")
	}
	h := start(t, func(s *recorder.Server) { s.AckInterval = time.Second })
	wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{h.addr}, dial)
	if err != nil {
		t.Fatal(err)
	}
	wc.Write(castHeader(t))
	select {
	case err := <-errc:
		t.Fatalf("upload ended while idle: %v", err)
	case <-time.After(36 * time.Second):
	}
	if _, err := wc.Write(eventLine(36, "still here")); err != nil {
		t.Fatalf("write after idle: %v", err)
	}
	wc.Close()
	if err := <-errc; err != nil {
		t.Fatalf("upload: %v", err)
	}
	info, got := onlyRecording(t, h)
	if info.Status != store.StatusComplete || !bytes.Contains(got, []byte("still here")) {
		t.Errorf("status %s, stored %q", info.Status, got)
	}
}

func TestShutdownEndsLiveRecordingsCleanly(t *testing.T) {
	h := start(t, nil)
	wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{h.addr}, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	sent := 0
	for _, b := range [][]byte{castHeader(t), eventLine(0.1, "before"), []byte(`[0.2,"o","partial`)} { // the last line is cut mid-way
		wc.Write(b)
		sent += len(b)
	}
	waitReceived(t, h, sent)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "shutting down") {
			t.Errorf("client error = %v, want one saying the recorder shuts down", err)
		}
	case <-time.After(testutil.DefaultWait):
		t.Fatal("client not told about the shutdown")
	}
	info, got := onlyRecording(t, h)
	if info.Status != store.StatusInterrupted {
		t.Errorf("status %s, want interrupted", info.Status)
	}
	want := append(castHeader(t), eventLine(0.1, "before")...)
	if !bytes.Equal(got, want) {
		t.Errorf("stored %q, want %q (cut at the last complete line)", got, want)
	}
	tail, err := os.ReadFile(filepath.Join(h.dir, store.TailKey(info.Key)))
	if err != nil || string(tail) != `[0.2,"o","partial` {
		t.Errorf("cut-off bytes %q, %v: they must be kept", tail, err)
	}
}

// TestTailscaleEventDisorderIsNotMalformed: Tailscale's senders can write
// events a few microseconds out of order (clock read before the write lock,
// stdout and stderr from two goroutines). That is a genuine recording: it
// must be stored as complete, with no error frame to the sender.
func TestTailscaleEventDisorderIsNotMalformed(t *testing.T) {
	h := start(t, nil)
	_, err := send(t, []netip.AddrPort{h.addr}, castHeader(t),
		[]byte(`[1.000105,"o","stdout\r\n"]`+"\n"), []byte(`[1.000098,"o","stderr\r\n"]`+"\n"), eventLine(1.2, "more"))
	if err != nil {
		t.Fatalf("sender got an error: %v", err)
	}
	if info, _ := onlyRecording(t, h); info.Status != store.StatusComplete {
		t.Errorf("status %s (%s), want complete", info.Status, info.Reason)
	}
}

// TestHugeLineBoundedMemory streams a 100 MB line with no newline: it is
// stored whole (evidence), flagged malformed, and the process's heap stays
// far below the line's size while it passes through.
func TestHugeLineBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MB")
	}
	h := start(t, nil)
	const size = 100 << 20
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		// Live heap, after a collection: garbage waiting for the next GC
		// (plentiful under -race, where sync.Pool drops items) is not
		// what this test is about.
		var maxHeap uint64
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapAlloc)
			select {
			case <-stop:
				peak <- maxHeap
				return
			case <-tick.C:
			}
		}
	}()
	chunk := bytes.Repeat([]byte("A"), 64<<10)
	chunks := [][]byte{castHeader(t), []byte(`[1.0,"o","`)}
	for range size / len(chunk) {
		chunks = append(chunks, chunk)
	}
	_, err := send(t, []netip.AddrPort{h.addr}, chunks...)
	close(stop)
	maxHeap := <-peak
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("client error = %v, want a malformed-recording error", err)
	}
	info, _ := onlyRecording(t, h)
	if want := int64(len(castHeader(t)) + 10 + size); info.Size != want || info.Status != store.StatusMalformed {
		t.Errorf("stored %d bytes with status %s, want %d bytes, malformed", info.Size, info.Status, want)
	}
	// A buffered line would need over 100 MiB; flow-control windows and
	// the client's side of the pipe take a few MiB (tens under -race on a
	// busy machine).
	if maxHeap > 64<<20 {
		t.Errorf("live heap peaked at %d MiB while a 100 MiB line streamed through: not bounded", maxHeap>>20)
	}
	t.Logf("live heap peak %d MiB for a 100 MiB line", maxHeap>>20)
}

// TestConcurrentShutdowns: two Shutdowns at once (a signal handler and a
// deferred cleanup, say) both return once the live recording is closed.
func TestConcurrentShutdowns(t *testing.T) {
	h := start(t, nil)
	wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{h.addr}, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	wc.Write(castHeader(t))
	waitReceived(t, h, len(castHeader(t)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: end the live recording at once
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- h.srv.Shutdown(ctx) }()
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(testutil.DefaultWait):
			t.Fatal("a concurrent Shutdown never returned")
		}
	}
	<-errc
}
