// Package testutil holds the helpers that more than one package's tests
// use: waiting for a condition with a deadline, a goroutine-safe buffer,
// finding a test peer (which skips on a laptop but fails in CI), a TCP
// proxy the test can cut, and a pty driver for programs that need a
// terminal.
//
// Tests wait for conditions, never for time: WaitFor polls until the
// condition holds and fails with what was seen when the deadline passes.
// The deadline only bounds a failure; it is never a synchronisation.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where a missing peer
// is a failure and not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test on a developer's machine and fails it in CI.
// Use it only for a missing peer or capability, with a message that says
// how to get it.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI=true: a missing peer is a failure)", args...)
	}
	t.Skipf(format, args...)
}

// NeedTool returns the path of an external program the test needs. It
// skips without it, except in CI, where it fails.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, "%s is not installed (make test-deps installs it): %v", name, err)
	}
	return p
}

// DefaultWait bounds WaitFor. It is long on purpose: it only decides how
// long a broken test takes to fail, never how long a passing one takes. Set
// REEL_TEST_WAIT (a Go duration) to change it.
var DefaultWait = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("REEL_TEST_WAIT")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}()

// WaitFor polls cond until it returns true, and fails the test after
// DefaultWait, naming what it waited for. Extra detail for the failure
// message comes from seen, if not nil.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForSeen(t, DefaultWait, what, cond, nil)
}

// WaitForSeen is WaitFor with a deadline and a function that describes
// the state when it fails (what the terminal showed, the files present).
func WaitForSeen(t testing.TB, d time.Duration, what string, cond func() bool, seen func() string) {
	t.Helper()
	if err := Poll(d, cond); err != nil {
		if seen != nil {
			t.Fatalf("waiting for %s: %v; seen:\n%s", what, err, seen())
		}
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Poll calls cond with a short, growing interval until it returns true or
// d has passed.
func Poll(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v", d)
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
	return nil
}

// Recv waits for a value from ch, failing after DefaultWait.
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(DefaultWait):
		t.Fatalf("waiting for %s: gave up after %v", what, DefaultWait)
	}
	var zero T
	return zero
}

// Buffer is a bytes.Buffer safe for concurrent use: a process's output
// written by one goroutine and read by the test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns how many bytes were written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Contains reports whether s was written so far.
func (b *Buffer) Contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

// WaitFor waits until the buffer contains s.
func (b *Buffer) WaitFor(t testing.TB, s string) {
	t.Helper()
	WaitForSeen(t, DefaultWait, strconv.Quote(s), func() bool { return b.Contains(s) }, b.String)
}

// Clock is a clock a test sets: Now returns the time set, then moves it
// on by Step (zero: it stands still until Advance or Set). Safe for
// concurrent use; pass its Now where code takes a clock.
type Clock struct {
	Step time.Duration

	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time, and moves it on by Step.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(c.Step)
	return now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
