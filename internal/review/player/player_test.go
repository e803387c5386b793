package player

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/asciicast"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// castLines joins a header and events into a recording, one line each.
func castLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// manualClock only moves when the test advances it, and announces every
// wait the player starts.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []manualTimer
	armed  chan time.Duration
}

type manualTimer struct {
	at time.Time
	ch chan time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, manualTimer{c.now.Add(d), ch})
	c.mu.Unlock()
	c.armed <- d
	return ch
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.now
	}
	c.timers = kept
}

// chanWriter hands each write to the test.
type chanWriter chan string

func (w chanWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

func TestPlayKeys(t *testing.T) {
	rec := castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`,
		`[0,"o","a"]`, `[1,"o","b"]`, `[2,"o","c"]`, `[3,"o","d"]`)
	c := &manualClock{now: time.Unix(1700000000, 0), armed: make(chan time.Duration, 10)}
	keys := make(chan byte)
	writes := make(chanWriter, 10)
	p := &Player{Out: writes, Clock: c, Speed: 1, Keys: keys}
	done := make(chan error, 1)
	go func() { done <- p.Play(context.Background(), asciicast.NewDecoder(strings.NewReader(rec)).Next) }()

	expectWrite := func(want string) {
		t.Helper()
		select {
		case got := <-writes:
			if got != want {
				t.Fatalf("wrote %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no write of %q", want)
		}
	}
	expectWait := func(want time.Duration) {
		t.Helper()
		select {
		case got := <-c.armed:
			if got != want {
				t.Fatalf("waits %v, want %v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no wait of %v", want)
		}
	}

	expectWrite("a")
	expectWait(time.Second) // for b
	c.advance(400 * time.Millisecond)
	keys <- ' ' // pause 600ms before b is due
	keys <- 'x' // ignored; returns once the pause is in place
	c.advance(5 * time.Second)
	keys <- 'x'
	if len(writes) != 0 {
		t.Fatalf("wrote %q while paused", <-writes)
	}
	keys <- ' ' // resume: b is due in what was left
	expectWait(600 * time.Millisecond)
	c.advance(600 * time.Millisecond)
	expectWrite("b")
	expectWait(time.Second) // for c
	keys <- ' '             // pause
	keys <- '.'             // step: c at once
	expectWrite("c")
	keys <- 'x'
	if len(writes) != 0 {
		t.Fatalf("wrote %q while paused after a step", <-writes)
	}
	keys <- 'q'
	select {
	case err := <-done:
		if err != ErrQuit {
			t.Fatalf("play after q: %v, want ErrQuit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end the replay")
	}
	if len(writes) != 0 {
		t.Errorf("wrote %q after quitting", <-writes)
	}
}

func TestPlayKeysResumeAfterStep(t *testing.T) {
	rec := castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`, `[1,"o","a"]`, `[2,"o","b"]`, `[4,"o","c"]`)
	c := &manualClock{now: time.Unix(1700000000, 0), armed: make(chan time.Duration, 10)}
	keys := make(chan byte)
	writes := make(chanWriter, 10)
	p := &Player{Out: writes, Clock: c, Speed: 2, Keys: keys}
	done := make(chan error, 1)
	go func() { done <- p.Play(context.Background(), asciicast.NewDecoder(strings.NewReader(rec)).Next) }()
	if d := <-c.armed; d != 500*time.Millisecond {
		t.Fatalf("first wait %v", d)
	}
	keys <- ' '
	keys <- '.'
	if w := <-writes; w != "a" {
		t.Fatalf("step wrote %q", w)
	}
	c.advance(time.Hour) // a long look at "a"
	keys <- ' '          // resume: b is 1 s of recording after a, at speed 2
	if d := <-c.armed; d != 500*time.Millisecond {
		t.Fatalf("wait after resuming from a step: %v, want 500ms", d)
	}
	c.advance(500 * time.Millisecond)
	if w := <-writes; w != "b" {
		t.Fatalf("wrote %q", w)
	}
	if d := <-c.armed; d != time.Second {
		t.Fatalf("wait for c: %v, want 1s", d)
	}
	c.advance(time.Second)
	if w := <-writes; w != "c" {
		t.Fatalf("wrote %q", w)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPlayResizes: resizes change nothing on screen but are tracked, with
// Kubernetes' HEIGHTxWIDTH order, for the note about a small terminal.
func TestPlayResizes(t *testing.T) {
	tests := []struct {
		name       string
		rec        string
		cols, rows int // the reviewer's terminal
		note       string
	}{
		{"fits", castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`, `[1,"r","100x30"]`, `[2,"r","60x20"]`), 100, 30, ""},
		{"grew wider", castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`, `[1,"r","132x30"]`, `[2,"r","60x20"]`), 100, 30,
			"note: the recording is up to 132x30; this terminal is 100x30, so some output may wrap"},
		{"header too tall", castLines(`{"version":2,"width":80,"height":50,"timestamp":1}`), 100, 30,
			"note: the recording is up to 80x50; this terminal is 100x30, so some output may wrap"},
		{"kubernetes rows first", castLines(`{"version":2,"width":80,"height":24,"timestamp":1,"kubernetes":{"PodName":"p","Namespace":"n","Container":"c","SessionType":"exec"}}`,
			`[1,"r","40x132"]`), 100, 45, "note: the recording is up to 132x40; this terminal is 100x45, so some output may wrap"},
		{"bad resize ignored", castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`, `[1,"r","huge"]`), 80, 24, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := asciicast.NewDecoder(strings.NewReader(tc.rec))
			h, err := dec.Header()
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			p := New(&out, h)
			p.NoWait = true
			if err := p.Play(context.Background(), dec.Next); err != nil {
				t.Fatal(err)
			}
			if out.Len() != 0 {
				t.Errorf("resizes wrote %q", out.String())
			}
			mc, mr := p.MaxSize()
			if got := SizeNote(mc, mr, tc.cols, tc.rows); got != tc.note {
				t.Errorf("note %q, want %q", got, tc.note)
			}
		})
	}
}

// TestPlayCancelled: a cancelled context ends a replay that waits for a
// far event.
func TestPlayCancelled(t *testing.T) {
	rec := castLines(`{"version":2,"width":80,"height":24,"timestamp":1}`, `[0,"o","a"]`, `[1000,"o","b"]`)
	c := &manualClock{now: time.Unix(1700000000, 0), armed: make(chan time.Duration, 10)}
	writes := make(chanWriter, 10)
	p := &Player{Out: writes, Clock: c}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Play(ctx, asciicast.NewDecoder(strings.NewReader(rec)).Next) }()
	if w := <-writes; w != "a" {
		t.Fatalf("wrote %q", w)
	}
	if d := <-c.armed; d != 1000*time.Second {
		t.Fatalf("waits %v", d)
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Play after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end the replay")
	}
}
