package main

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/review/player"
)

// fakeClock advances by exactly what the player waits, and records it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// playWith runs "reel play args" in process with clock c.
func playWith(t *testing.T, c player.Clock, stdin io.Reader, args ...string) reviewResult {
	t.Helper()
	var out, errb strings.Builder
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	env := &cmdEnv{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := exitCode(context.Background(), env, "play", playCmd{clock: c}.run(context.Background(), env, args))
	return reviewResult{out.String(), errb.String(), code}
}

// roundAll rounds each duration to a microsecond, for comparing float timing.
func roundAll(ds []time.Duration) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		out = append(out, d.Round(time.Microsecond))
	}
	return out
}

func TestPlayTiming(t *testing.T) {
	dir := t.TempDir()
	timed := writeCast(t, dir, "timed.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000}`,
		`[0.5,"o","a"]`, `[1.5,"o","b"]`, `[1.5,"o","c"]`, `[1.75,"r","90x30"]`, `[4.5,"o","d"]`, `[4.5,"i","typed"]`, `[104.5,"o","e"]`))
	idleHdr := writeCast(t, dir, "idle.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000,"idle_time_limit":1.5}`,
		`[0,"o","a"]`, `[10,"o","b"]`, `[10.5,"o","c"]`))
	v3 := writeCast(t, dir, "v3.cast", castLines(`{"version":3,"term":{"cols":80,"rows":24},"timestamp":1700000000}`,
		`[0.5,"o","a"]`, `[1,"o","b"]`, `[2,"o","c"]`))
	ms := time.Millisecond
	tests := []struct {
		name   string
		args   []string
		sleeps []time.Duration
		out    string
	}{
		{"speed 100", []string{"--speed", "100", timed}, []time.Duration{5 * ms, 10 * ms, 2500 * time.Microsecond, 27500 * time.Microsecond, 1000 * ms}, "abcde"},
		{"half speed", []string{"--speed", "0.5", timed}, []time.Duration{1000 * ms, 2000 * ms, 500 * ms, 5500 * ms, 200000 * ms}, "abcde"},
		{"idle limit", []string{"--idle-limit", "2s", timed}, []time.Duration{500 * ms, 1000 * ms, 250 * ms, 2000 * ms, 2000 * ms}, "abcde"},
		{"idle limit and speed", []string{"--idle-limit", "2s", "--speed", "4", timed}, []time.Duration{125 * ms, 250 * ms, 62500 * time.Microsecond, 500 * ms, 500 * ms}, "abcde"},
		{"header idle_time_limit", []string{idleHdr}, []time.Duration{1500 * ms, 500 * ms}, "abc"},
		{"--idle-limit 0 overrides the header", []string{"--idle-limit", "0", idleHdr}, []time.Duration{10000 * ms, 500 * ms}, "abc"},
		{"--idle-limit overrides the header", []string{"--idle-limit", "3s", idleHdr}, []time.Duration{3000 * ms, 500 * ms}, "abc"},
		{"v3 intervals", []string{v3}, []time.Duration{500 * ms, 1000 * ms, 2000 * ms}, "abc"},
		{"no wait", []string{"--no-wait", timed}, nil, "abcde"},
		{"-n", []string{"-n", "--speed", "0.001", timed}, nil, "abcde"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{now: time.Unix(1700000000, 0)}
			got := playWith(t, c, nil, tc.args...)
			if diff := cmp.Diff(reviewResult{Stdout: tc.out}, got); diff != "" {
				t.Errorf("reel play (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tc.sleeps, roundAll(c.sleeps)); diff != "" {
				t.Errorf("waits (-want +got)\n%s", diff)
			}
		})
	}
}

// TestPlayRealTime: with the real clock, --speed 100 over 5 recorded
// seconds takes at least 50 ms, and --no-wait does not wait.
func TestPlayRealTime(t *testing.T) {
	p := writeCast(t, t.TempDir(), "r.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000}`,
		`[1,"o","a"]`, `[3,"o","b"]`, `[5,"o","c"]`))
	start := time.Now()
	got := reviewRun(t, nil, nil, "play", "--speed", "100", p)
	took := time.Since(start)
	if got.Stdout != "abc" || got.Code != 0 {
		t.Fatalf("reel play: %+v", got)
	}
	if took < 50*time.Millisecond {
		t.Errorf("--speed 100 over 5 s took %v, want at least 50ms", took)
	}
	start = time.Now()
	reviewRun(t, nil, nil, "play", "-n", "--speed", "0.01", p)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("--no-wait took %v", took)
	}
}

func TestPlayErrors(t *testing.T) {
	ts := newTestStore(t)
	p := writeCast(t, t.TempDir(), "r.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000}`, `[1,"o","a"]`))
	tests := []struct {
		name string
		args []string
		want reviewResult
	}{
		{"no file", nil, reviewResult{Code: 2, Stderr: "reel play: name a recording: a .cast file or a <node>/<time>.cast key\nRun 'reel play --help' for usage.\n"}},
		{"two files", []string{p, p}, reviewResult{Code: 2, Stderr: "reel play: play one recording at a time (got 2)\nRun 'reel play --help' for usage.\n"}},
		{"zero speed", []string{"--speed", "0", p}, reviewResult{Code: 2, Stderr: "reel play: --speed must be a positive number, got 0\nRun 'reel play --help' for usage.\n"}},
		{"negative idle", []string{"--idle-limit", "-1s", p}, reviewResult{Code: 2, Stderr: "reel play: --idle-limit must not be negative, got -1s\nRun 'reel play --help' for usage.\n"}},
		{"interrupted key", []string{"-n", "--dst", ts.dir, ts.keys["root"]}, reviewResult{Stdout: "top - 12:00\x1b[H",
			Stderr: "note: " + ts.keys["root"] + " was interrupted (the upload did not end normally); it was cut at its last complete line (connection lost)\n"}},
		{"kubernetes key", []string{"-n", "--dst", ts.dir, ts.keys["kube"]}, reviewResult{Stdout: "# exit\r\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := reviewRun(t, nil, nil, append([]string{"play"}, tc.args...)...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// termios reads a terminal's settings.
func termios(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	fd, ok := player.FileFd(f) // not f.Fd(): it would make reads blocking
	if !ok {
		t.Fatal("no descriptor")
	}
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *tio
}

// syncBuilder is a strings.Builder safe for a writer and a reader.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPlayTerminal runs reel play with a real terminal (a pty) as stdin:
// it goes raw while playing, q quits, and the terminal is restored
// whichever way the replay ends.
func TestPlayTerminal(t *testing.T) {
	p := writeCast(t, t.TempDir(), "long.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`,
		`[0,"o","first"]`, `[1000,"o","never"]`))
	tests := []struct {
		name string
		end  func(ptmx *os.File, cancel context.CancelCauseFunc)
		code int
	}{
		{"q", func(ptmx *os.File, _ context.CancelCauseFunc) { ptmx.Write([]byte("q")) }, 0},
		{"ctrl-c", func(ptmx *os.File, _ context.CancelCauseFunc) { ptmx.Write([]byte{3}) }, 0},
		{"pause then q", func(ptmx *os.File, _ context.CancelCauseFunc) { ptmx.Write([]byte(" x q")) }, 0},
		{"SIGTERM", func(_ *os.File, cancel context.CancelCauseFunc) { cancel(signalError{syscall.SIGTERM}) }, 143},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skip("no pty:", err)
			}
			defer ptmx.Close()
			defer tty.Close()
			before := termios(t, tty)
			if before.Lflag&unix.ICANON == 0 {
				t.Fatal("a new pty is not in canonical mode")
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var out, errb syncBuilder
			env := &cmdEnv{stdin: tty, stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
			done := make(chan int, 1)
			go func() { done <- dispatch(ctx, env, []string{"play", p}) }()

			deadline := time.Now().Add(10 * time.Second)
			for out.String() != "first" || termios(t, tty).Lflag&unix.ICANON != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("reel play did not start in raw mode: output %q", out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			raw := termios(t, tty)
			if raw.Lflag&unix.ECHO != 0 {
				t.Error("raw mode left echo on")
			}
			tc.end(ptmx, cancel)
			select {
			case code := <-done:
				if code != tc.code {
					t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errb.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("reel play did not end")
			}
			// The output ended mid-line: the replay ends on a fresh one.
			if out.String() != "first\r\n" {
				t.Errorf("output %q, want %q", out.String(), "first\r\n")
			}
			if diff := cmp.Diff(before, termios(t, tty)); diff != "" {
				t.Errorf("terminal not restored (-before +after)\n%s", diff)
			}
		})
	}
}
