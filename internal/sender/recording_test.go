package sender

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// realRecorder is reel's recorder, in process, on a loopback port.
type realRecorder struct {
	addr  netip.AddrPort
	store *memstore.Store
	srv   *recorder.Server
}

func startRecorder(t testing.TB, disableV2 bool) *realRecorder {
	t.Helper()
	st := memstore.New(memstore.Options{})
	srv := &recorder.Server{Store: st, DisableV2: disableV2, AckInterval: 50 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		st.Close()
	})
	return &realRecorder{addr: netip.MustParseAddrPort(ln.Addr().String()), store: st, srv: srv}
}

// recordings returns every stored recording, decoded.
func (rr *realRecorder) recordings(t *testing.T) []stored {
	t.Helper()
	ctx := context.Background()
	var out []stored
	for info, err := range rr.store.List(ctx, store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		rd, err := rr.store.Open(ctx, info.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeCast(t, b, info.Status))
	}
	return out
}

type stored struct {
	header asciicast.Header
	events []asciicast.Event
	status store.Status
}

func decodeCast(t *testing.T, b []byte, status store.Status) stored {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var s stored
	s.status = status
	if err := s.header.UnmarshalJSON([]byte(lines[0])); err != nil {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	for _, l := range lines[1:] {
		var e asciicast.Event
		if err := e.UnmarshalJSON([]byte(l)); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		s.events = append(s.events, e)
	}
	return s
}

// fixedClock returns times that advance by step at every call.
func fixedClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := now
		now = now.Add(step)
		return t
	}
}

// outcomes collects what a Client reports.
type outcomes struct {
	mu   sync.Mutex
	list []Outcome
}

func (o *outcomes) add(x Outcome) {
	o.mu.Lock()
	o.list = append(o.list, x)
	o.mu.Unlock()
}

func (o *outcomes) kinds() []OutcomeKind {
	o.mu.Lock()
	defer o.mu.Unlock()
	var k []OutcomeKind
	for _, x := range o.list {
		k = append(k, x.Kind)
	}
	return k
}

func TestRecordsToRealRecorder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		disableV2 bool
		wantProto string
	}{
		{"v2", false, "v2"},
		{"v1 fallback", true, "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := startRecorder(t, tc.disableV2)
			var got outcomes
			start := time.Unix(1700000000, 0)
			c := &Client{Now: fixedClock(start, 250*time.Millisecond), Report: got.add}
			h := asciicast.Header{Width: 80, Height: 24, SSHUser: "alice", LocalUser: "alice", ConnectionID: "c1",
				Env: map[string]string{"TERM": "xterm"}}
			rec, err := c.Start(context.Background(), []netip.AddrPort{rr.addr}, h)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Protocol() != tc.wantProto {
				t.Errorf("protocol %q, want %q", rec.Protocol(), tc.wantProto)
			}
			// "é" is split across two writes, "€" across three: neither
			// may turn into U+FFFD.
			for _, w := range []string{"hello \xc3", "\xa9 \xe2\x82", "\xac\r\n"} {
				if err := rec.Output([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			rec.Resize(100, 40)
			rec.Input([]byte("ls\r"))
			rec.Output([]byte("bad \xff byte"))
			if err := rec.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if tc.wantProto == "v2" && rec.Acked() != rec.Sent() {
				t.Errorf("acked %d of %d bytes", rec.Acked(), rec.Sent())
			}
			recs := rr.recordings(t)
			if len(recs) != 1 {
				t.Fatalf("%d recordings stored, want 1", len(recs))
			}
			s := recs[0]
			if s.status != store.StatusComplete {
				t.Errorf("status %q", s.status)
			}
			wantHeader := h
			wantHeader.Version = 2
			wantHeader.Timestamp = start.Unix()
			if diff := cmp.Diff(wantHeader, s.header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			// The clock advances 250 ms per call: Start takes t=0, every
			// write the next tick; the cut "é" takes the time of the write
			// that completes it.
			want := []asciicast.Event{
				{Time: 0.25, Code: "o", Data: "hello "},
				{Time: 0.5, Code: "o", Data: "é "},
				{Time: 0.75, Code: "o", Data: "€\r\n"},
				{Time: 1, Code: "r", Data: "100x40"},
				{Time: 1.25, Code: "i", Data: "ls\r"},
				{Time: 1.5, Code: "o", Data: "bad \ufffd byte"},
			}
			if diff := cmp.Diff(want, s.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]OutcomeKind{Started, Finished}, got.kinds()); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailover(t *testing.T) {
	rr := startRecorder(t, false)
	dead1, dead2 := testutil.DeadAddr(t), testutil.DeadAddr(t)
	c := &Client{}
	rec, err := c.Start(context.Background(), []netip.AddrPort{dead1, dead2, rr.addr}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	type att struct {
		Recorder string
		Protocol string
		Failed   bool
	}
	var got []att
	for _, a := range rec.Attempts() {
		got = append(got, att{a.Recorder.String(), a.Protocol, a.Err != nil})
	}
	want := []att{{dead1.String(), "", true}, {dead2.String(), "", true}, {rr.addr.String(), "v2", false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	if rec.Recorder() != rr.addr {
		t.Errorf("recorder %v, want %v", rec.Recorder(), rr.addr)
	}
}

func TestStartFails(t *testing.T) {
	// A recorder that refuses: v1 only, answering 503 before 100 Continue.
	refusing := testutil.ServeHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "reel recorder: shutting down; try another recorder", http.StatusServiceUnavailable)
	}))
	// A recorder that accepts connections and never answers.
	silent := listenSilently(t)
	dead := testutil.DeadAddr(t)

	for _, tc := range []struct {
		name      string
		recorders []netip.AddrPort
		want      []string // one substring per attempt
	}{
		{"none configured", nil, nil},
		{"dead", []netip.AddrPort{dead}, []string{"dial: "}},
		{"refusing", []netip.AddrPort{refusing}, []string{"503 Service Unavailable: reel recorder: shutting down"}},
		{"silent", []netip.AddrPort{silent}, []string{"no answer to HEAD /v2/record"}},
		{"all three", []netip.AddrPort{dead, refusing, silent}, []string{"dial: ", "503", "no answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got outcomes
			c := &Client{AttemptTimeout: 300 * time.Millisecond, Report: got.add}
			rec, err := c.Start(context.Background(), tc.recorders, asciicast.Header{})
			if err == nil {
				rec.Close(context.Background())
				t.Fatal("Start succeeded")
			}
			se, ok := errors.AsType[*StartError](err)
			if !ok {
				t.Fatalf("error %T %v, want *StartError", err, err)
			}
			if len(se.Attempts) != len(tc.want) {
				t.Fatalf("%d attempts, want %d: %v", len(se.Attempts), len(tc.want), err)
			}
			for i, a := range se.Attempts {
				if a.Recorder != tc.recorders[i] || a.Err == nil || !strings.Contains(a.Err.Error(), tc.want[i]) {
					t.Errorf("attempt %d: %v, want recorder %v and an error with %q", i, a, tc.recorders[i], tc.want[i])
				}
			}
			if diff := cmp.Diff([]OutcomeKind{StartFailed}, got.kinds()); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConnectTimeoutBoundsAllAttempts(t *testing.T) {
	silent := []netip.AddrPort{listenSilently(t), listenSilently(t), listenSilently(t)}
	c := &Client{AttemptTimeout: 10 * time.Second, ConnectTimeout: 300 * time.Millisecond}
	t0 := time.Now()
	_, err := c.Start(context.Background(), silent, asciicast.Header{})
	if err == nil {
		t.Fatal("Start succeeded")
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("Start took %v with a 300ms ConnectTimeout", d)
	}
}

// listenSilently accepts connections and never answers.
func listenSilently(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// fakeV2 is a v2 recorder whose behaviour a test scripts: it answers the
// probe, then runs the script in the upload's handler. When the script
// returns true the response ends; otherwise the handler waits for the
// client to go away. A script panics with http.ErrAbortHandler to reset
// the stream.
type fakeV2 struct {
	addr   netip.AddrPort
	script func(u *upload) (end bool)
	got    chan struct{} // one value per upload received
}

type upload struct {
	w http.ResponseWriter
	r *http.Request
}

func (u *upload) frame(s string) {
	io.WriteString(u.w, s+"\n")
	http.NewResponseController(u.w).Flush()
}

func startFakeV2(t *testing.T, script func(u *upload) bool) *fakeV2 {
	t.Helper()
	f := &fakeV2{script: script, got: make(chan struct{}, 4)}
	f.addr = testutil.ServeHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodHead && r.URL.Path == "/v2/record":
			w.WriteHeader(http.StatusOK)
		case r.Method == http.MethodPost && r.URL.Path == "/v2/record":
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			f.got <- struct{}{}
			if f.script(&upload{w: w, r: r}) {
				return
			}
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	return f
}

func (f *fakeV2) start(t *testing.T, c *Client) *Recording {
	t.Helper()
	rec, err := c.Start(context.Background(), []netip.AddrPort{f.addr}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.got:
		return rec
	case <-time.After(5 * time.Second):
		t.Fatal("the upload did not reach the fake recorder")
	}
	return nil
}

func waitLost(t *testing.T, rec *Recording) error {
	t.Helper()
	select {
	case <-rec.Lost():
		return rec.Err()
	case <-time.After(10 * time.Second):
		t.Fatal("the recording was not lost")
	}
	return nil
}

func TestLostMidway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(u *upload) bool
		wantIs error  // errors.Is target, or nil
		want   string // substring of the error
	}{
		{"error frame", func(u *upload) bool {
			u.frame(`{"ack":10}`)
			u.frame(`{"error":"storage failed: disk full"}`)
			return true
		}, nil, "reported: storage failed: disk full"},
		{"no acks", func(u *upload) bool { return false }, ErrNoAcks, ""},
		{"acks stop", func(u *upload) bool {
			u.frame(`{"ack":1}`)
			u.frame(`{"ack":2}`)
			return false
		}, ErrNoAcks, ""},
		{"response ends", func(u *upload) bool {
			u.frame(`{"ack":1}`)
			return true
		}, nil, "ended the upload before the session ended"},
		{"garbage frame", func(u *upload) bool {
			u.frame(`<html>`)
			return false
		}, nil, "bad response frame"},
		{"stream reset", func(u *upload) bool {
			u.frame(`{"ack":1}`)
			panic(http.ErrAbortHandler)
		}, nil, "connection to recorder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeV2(t, tc.script)
			var got outcomes
			c := &Client{AckTimeout: 300 * time.Millisecond, Report: got.add}
			rec := f.start(t, c)
			rec.Output([]byte("some output\r\n"))
			err := waitLost(t, rec)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			if err := rec.Output([]byte("more")); err == nil {
				t.Error("Output after the loss returned nil")
			}
			if cerr := rec.Close(context.Background()); cerr == nil {
				t.Error("Close after the loss returned nil")
			}
			if diff := cmp.Diff([]OutcomeKind{Started, Lost}, got.kinds()); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorFrameFromRealRecorder(t *testing.T) {
	// The real recorder, shut down with a live upload and no grace,
	// sends its last ack and an error frame.
	rr := startRecorder(t, false)
	c := &Client{}
	rec, err := c.Start(context.Background(), []netip.AddrPort{rr.addr}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	rec.Output([]byte("before shutdown\r\n"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	go rr.srv.Shutdown(ctx)
	err = waitLost(t, rec)
	if _, ok := errors.AsType[*RecorderError](err); !ok {
		t.Errorf("err = %v (%T), want a *RecorderError", err, err)
	}
	if !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("err = %v, want the recorder's reason", err)
	}
	rec.Close(context.Background())
}

func TestOverflowNeverBlocks(t *testing.T) {
	// The fake recorder acks but never reads the body: the transport's
	// window fills, then the buffer. With a large buffer the transport
	// is left waiting for flow control when the buffer overflows; the
	// loss must still end the upload at once.
	for _, size := range []int{256 << 10, 4 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			rec, err := (&Client{BufferSize: size}).Start(context.Background(),
				[]netip.AddrPort{testutil.StartStalledRecorder(t)}, asciicast.Header{Width: 80, Height: 24})
			if err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			// Once the transport has started taking data, it goes on
			// until the recorder's flow-control window is full, and then
			// waits there while the writes below fill the buffer.
			if err := rec.Output(chunk); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, "the transport to take data", func() bool { return rec.Sent() > 0 })
			t0 := time.Now()
			for i := 0; i < 10000 && err == nil; i++ {
				err = rec.Output(chunk)
			}
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("Output: %v, want ErrOverflow", err)
			}
			if d := time.Since(t0); d > 3*time.Second {
				t.Errorf("writing until overflow took %v: writes must not wait for the recorder", d)
			}
			if lerr := waitLost(t, rec); !errors.Is(lerr, ErrOverflow) {
				t.Errorf("Err() = %v, want ErrOverflow", lerr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			t0 = time.Now()
			rec.Close(ctx)
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("Close after the overflow took %v", d)
			}
		})
	}
}

func TestCloseWaitsForFinalAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(u *upload, sent int)
		wantErr string
	}{
		{"all acked", func(u *upload, sent int) {
			u.frame(fmt.Sprintf(`{"ack":%d}`, sent))
		}, ""},
		{"short ack", func(u *upload, sent int) {
			u.frame(fmt.Sprintf(`{"ack":%d}`, sent-1))
		}, "acked"},
		{"final error", func(u *upload, sent int) {
			u.frame(fmt.Sprintf(`{"ack":%d}`, sent))
			u.frame(`{"error":"recording stored but malformed: x"}`)
		}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The fake reads the whole body, then answers.
			f := startFakeV2(t, func(u *upload) bool {
				b, _ := io.ReadAll(u.r.Body)
				tc.respond(u, len(b))
				return true
			})
			rec := f.start(t, &Client{})
			rec.Output([]byte("hi\r\n"))
			err := rec.Close(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Close: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

func TestCloseTimesOut(t *testing.T) {
	f := startFakeV2(t, func(u *upload) bool { return false })
	rec := f.start(t, &Client{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := rec.Close(ctx); err == nil || !strings.Contains(err.Error(), "did not confirm") {
		t.Fatalf("Close: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	rr := startRecorder(t, false)
	rec, err := (&Client{}).Start(context.Background(), []netip.AddrPort{rr.addr}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				rec.Output(fmt.Appendf(nil, "g%d line %d\r\n", g, i))
			}
		}()
	}
	wg.Wait()
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := rr.recordings(t)
	var all strings.Builder
	last := -1.0
	for _, e := range recs[0].events {
		all.WriteString(e.Data)
		if e.Time < last {
			t.Errorf("time went back: %v after %v", e.Time, last)
		}
		last = e.Time
	}
	for g := range 4 {
		for i := range 200 {
			if !strings.Contains(all.String(), fmt.Sprintf("g%d line %d\r\n", g, i)) {
				t.Fatalf("line g%d %d missing", g, i)
			}
		}
	}
}

func TestReadLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader(`{"ack":1}`+"\n"+strings.Repeat("x", 100)+"\n"), 16)
	line, err := readLine(br, 50)
	if err != nil || string(line) != `{"ack":1}` {
		t.Fatalf("readLine = %q, %v", line, err)
	}
	if _, err := readLine(br, 50); err == nil {
		t.Fatal("a 100-byte line passed a 50-byte limit")
	}
}

func TestConnectionDropWhileIdle(t *testing.T) {
	// The recorder's connection goes away while the session is quiet:
	// the loss must show at once, not after AckTimeout.
	rr := startRecorder(t, false)
	p := testutil.StartProxy(t, rr.addr.String())
	rec, err := (&Client{}).Start(context.Background(), []netip.AddrPort{p.Addr}, asciicast.Header{})
	if err != nil {
		t.Fatal(err)
	}
	rec.Output([]byte("x"))
	// Quiet: everything written is sent and acked.
	testutil.WaitFor(t, "the output to be sent and acked", func() bool {
		return rec.Sent() > 0 && rec.Acked() == rec.Sent()
	})
	p.Cut()
	select {
	case <-rec.Lost():
		if !strings.Contains(rec.Err().Error(), "connection to recorder") {
			t.Errorf("Err() = %v", rec.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dropped connection was not noticed")
	}
	rec.Close(context.Background())
}

// TestWaitRoomSlowsTheWriter: a writer that waits for room before each
// write never overflows a small buffer, however much it writes, and the
// recorder stores every byte.
func TestWaitRoomSlowsTheWriter(t *testing.T) {
	rr := startRecorder(t, false)
	rec, err := (&Client{BufferSize: 64 << 10, RoomWait: time.Minute}).Start(context.Background(), []netip.AddrPort{rr.addr}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("0123456789abcde\n"), 2<<10) // 32 KiB
	const chunks = 640                                        // 20 MiB: 320 times the buffer
	for i := range chunks {
		if !rec.WaitRoom() {
			t.Fatalf("write %d: WaitRoom gave up on a working recorder", i)
		}
		if err := rec.Output(chunk); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	for _, e := range rr.recordings(t)[0].events {
		n += len(e.Data)
	}
	if want := chunks * len(chunk); n != want {
		t.Fatalf("stored %d bytes of output, want %d", n, want)
	}
}

// TestWaitRoomGivesUp: with a recorder that takes nothing, WaitRoom
// returns false after its bound instead of blocking the session forever,
// and returns at once when the recording is lost.
func TestWaitRoomGivesUp(t *testing.T) {
	c := &Client{BufferSize: 256 << 10, RoomWait: 20 * time.Millisecond}
	rec, err := c.Start(context.Background(),
		[]netip.AddrPort{testutil.StartStalledRecorder(t)}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	gaveUp := false
	for i := 0; i < 10000 && !gaveUp; i++ {
		if err := rec.Output(chunk); err != nil {
			t.Fatalf("write %d overflowed before WaitRoom gave up: %v", i, err)
		}
		gaveUp = !rec.WaitRoom()
	}
	if !gaveUp {
		t.Fatal("WaitRoom never gave up on a stalled recorder")
	}
	for err == nil {
		err = rec.Output(chunk)
	}
	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("Output: %v, want ErrOverflow", err)
	}
	waitLost(t, rec)
	// Lost: at once, not after RoomWait with a false.
	done := make(chan bool)
	go func() { done <- rec.WaitRoom() }()
	if !<-done {
		t.Fatal("WaitRoom on a lost recording returned false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec.Close(ctx)
}
