package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// exitStatus waits for p to exit and returns its exit code.
func exitStatus(t *testing.T, p *reelProc, what string) int {
	t.Helper()
	testutil.Recv(t, what, p.done)
	return p.cmd.ProcessState.ExitCode()
}

// TestLsAroundStalledRecording: a store holding a recording that ends in
// 64 MiB of empty lines lists at once, the normal recordings with their
// durations and the odd one with "?". Before, finding that recording's
// last event re-read 64 KiB per empty line, and reel ls printed nothing
// for minutes.
func TestLsAroundStalledRecording(t *testing.T) {
	dir := t.TempDir()
	st, err := fsstore.Open(dir, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	put := func(node string, start time.Time, parts ...string) string {
		w, err := st.Create(context.Background(), node, start)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if _, err := io.WriteString(w, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(store.StatusComplete, ""); err != nil {
			t.Fatal(err)
		}
		return w.Key()
	}
	hdr := `{"version":2,"width":80,"height":24,"sshUser":"alice","localUser":"alice","command":"bash"}` + "\n"
	before := put("n1", day, hdr, `[1,"o","a"]`+"\n", `[61,"o","b"]`+"\n")
	newlines := strings.Repeat("\n", 1<<20)
	parts := []string{hdr, `[5,"o","x"]` + "\n"}
	for range 64 {
		parts = append(parts, newlines)
	}
	odd := put("n1", day.Add(time.Hour), parts...)
	after := put("n2", day, hdr, `[2.5,"o","c"]`+"\n")
	st.Close()

	p := startReel(t, "ls", "--dst", dir)
	if code := exitStatus(t, p, "reel ls to list a store with 64 MiB of trailing newlines"); code != 0 {
		t.Fatalf("reel ls: exit %d\n%s", code, p.logs.String())
	}
	out := p.logs.String()
	for _, want := range []string{
		`(?m)^` + regexp.QuoteMeta(before) + ` +\S+ \S+ +1m01s +alice +bash +\S+ +complete$`,
		`(?m)^` + regexp.QuoteMeta(odd) + ` +\S+ \S+ +\? +alice +bash +64MiB +complete$`,
		`(?m)^` + regexp.QuoteMeta(after) + ` +\S+ \S+ +2\.5s +alice +bash +\S+ +complete$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("reel ls output does not match %s:\n%s", want, out)
		}
	}
}

// hangingServer accepts connections and reads requests, but never
// answers: a bucket endpoint that stalls.
type hangingServer struct {
	ln    net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startHangingServer(t *testing.T) *hangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingServer{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					h.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

// TestSignalStopsStuckLs: reel ls waiting on a bucket that does not answer
// ends at once on SIGINT (exit 130) or SIGTERM (exit 143), without a
// message. Before, it went on waiting for the bucket (30 s) and then
// failed with exit status 1.
func TestSignalStopsStuckLs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testtesttest")
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			h := startHangingServer(t)
			p := startReel(t, "ls", "--dst", "s3+http://"+h.ln.Addr().String()+"/recordings")
			testutil.WaitForSeen(t, testutil.DefaultWait, "reel ls to ask the bucket", func() bool { return h.bytes.Load() > 0 }, p.logs.String)
			if p.exited() {
				t.Fatalf("reel ls exited before the signal: %v\n%s", p.err, p.logs.String())
			}
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if code := exitStatus(t, p, "reel ls to end on "+tc.sig.String()); code != tc.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tc.code, p.logs.String())
			}
			if out := p.logs.String(); out != "" {
				t.Errorf("output %q, want none", out)
			}
		})
	}
}

// TestSignalStopsPlay: reel play waiting for an event far ahead ends on
// SIGINT with exit status 130, its output ending on a fresh line.
func TestSignalStopsPlay(t *testing.T) {
	f := writeCast(t, t.TempDir(), "long.cast", castLines(`{"version":2,"width":80,"height":24}`,
		`[0,"o","first"]`, `[1000,"o","never"]`))
	p := startReel(t, "play", f)
	p.logs.WaitFor(t, "first")
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := exitStatus(t, p, "reel play to end on SIGINT"); code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	if out := p.logs.String(); out != "first\r\n" {
		t.Errorf("output %q, want %q", out, "first\r\n")
	}
}

// TestPlayOnTerminalRestoresIt: reel play on a terminal smaller than the
// recording warns before the replay; stopped by SIGTERM in the middle of a
// full-screen program, it turns off what that program turned on (mouse
// reporting, application keypad, the alternate screen, a hidden cursor)
// and exits 143.
func TestPlayOnTerminalRestoresIt(t *testing.T) {
	f := writeCast(t, t.TempDir(), "vim.cast", castLines(`{"version":2,"width":100,"height":30}`,
		`[0,"o","$ vim\r\n"]`,
		`[0.1,"o","\u001b[?1049h\u001b[?1h\u001b=\u001b[?1000h\u001b[?1006h\u001b[?25l~\r\n~ editing"]`,
		`[1000,"o","never"]`))
	cmd := exec.Command(reelExe(t), "play", f)
	tm := testutil.StartTerminal(t, 80, 24, cmd)
	tm.Expect("~ editing")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := tm.Wait(); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
	const reset = "\x1b>\x1b[?1l\x1b[?1000l\x1b[?1006l\x1b[?1049l\x1b[?25h"
	tm.Expect("~ editing" + reset)
	out := tm.Output()
	note := strings.Index(out, "note: the recording is up to 100x30; this terminal is 80x24")
	if first := strings.Index(out, "$ vim"); note < 0 || note > first {
		t.Errorf("the size note is not before the replay:\n%q", out)
	}
}

// TestCatStopsOnStalledStdin: reel cat - reading a pipe that never ends
// stops when its context is cancelled, with the signal's exit status.
func TestCatStopsOnStalledStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close() // ends the read left behind
	if _, err := io.WriteString(w, `{"version":2,"width":80,"height":24}`+"\n"+`[0.5,"o","so far"]`+"\n"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var out, errb syncBuilder
	env := &cmdEnv{stdin: r, stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, env, []string{"cat", "-"}) }()
	cancel(signalError{syscall.SIGINT})
	if code := testutil.Recv(t, "reel cat - to stop", done); code != 130 {
		t.Errorf("exit %d, want 130; stderr %q", code, errb.String())
	}
}

// enteredReader tells when a Read has begun, then blocks in it.
type enteredReader struct {
	entered chan struct{}
	r       io.Reader
}

func (e enteredReader) Read(p []byte) (int, error) {
	close(e.entered)
	return e.r.Read(p)
}

// TestCtxReader: a Read blocked on a pipe returns when the context is
// cancelled.
func TestCtxReader(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close() // ends the read left behind
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if c := newCtxReader(ctx, r); !c.block {
		t.Fatal("a pipe is not treated as a reader that can block")
	}
	entered := make(chan struct{})
	cr := ctxReader{ctx: ctx, r: enteredReader{entered, r}, block: true}
	errc := make(chan error, 1)
	go func() {
		_, err := cr.Read(make([]byte, 10))
		errc <- err
	}()
	testutil.Recv(t, "the read to begin", entered)
	cancel()
	if err := testutil.Recv(t, "the blocked read to return", errc); err != context.Canceled {
		t.Errorf("Read = %v, want context.Canceled", err)
	}
	if c := newCtxReader(ctx, strings.NewReader("x")); c.block {
		t.Error("a strings.Reader is treated as a reader that can block")
	}
}

// TestExitCodeAfterSignal: after SIGINT or SIGTERM a command that stopped
// because of it exits 128+signal silently; an error of its own is still
// shown; one that finished cleanly exits 0.
func TestExitCodeAfterSignal(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(signalError{syscall.SIGTERM})
	tests := []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"clean shutdown", nil, 0, ""},
		{"stopped", context.Canceled, 143, ""},
		{"stopped, wrapped", fmt.Errorf("read: %w", context.Canceled), 143, ""},
		{"its own error", errors.New("shutdown: 2 uploads left"), 143, "reel serve: shutdown: 2 uploads left\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb strings.Builder
			env := &cmdEnv{stderr: &errb}
			if code := exitCode(ctx, env, "serve", tc.err); code != tc.code || errb.String() != tc.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errb.String(), tc.code, tc.stderr)
			}
		})
	}
}
