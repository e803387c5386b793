package busy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMeter(t *testing.T) {
	var n atomic.Int64
	now := time.Unix(0, 0)
	busy := Meter(n.Load, 1000, time.Second, func() time.Time { return now })
	step := func(d time.Duration, bytes int64) {
		now = now.Add(d)
		n.Add(bytes)
	}
	if busy() {
		t.Fatal("busy before anything was received")
	}
	step(500*time.Millisecond, 5000)
	if busy() {
		t.Fatal("busy before a whole window passed")
	}
	step(500*time.Millisecond, 0) // 5000 bytes in 1 s: above 1000/s
	if !busy() {
		t.Fatal("not busy at 5000 bytes/s")
	}
	step(100*time.Millisecond, 0)
	if !busy() {
		t.Fatal("the answer changed within a window")
	}
	step(2*time.Second, 1500) // 1500 bytes in 2.1 s: below 1000/s
	if busy() {
		t.Fatal("busy at about 700 bytes/s")
	}
}

// flips returns a busy function that says true n times, then false.
func flips(n int) (func() bool, *atomic.Int64) {
	var calls atomic.Int64
	return func() bool { return calls.Add(1) <= int64(n) }, &calls
}

func TestYield(t *testing.T) {
	if err := Yield(context.Background(), nil, time.Hour, 0.1); err != nil {
		t.Fatal(err)
	}
	// Not busy: no pause however long the work took.
	never, _ := flips(0)
	if err := Yield(context.Background(), never, time.Hour, 0.1); err != nil {
		t.Fatal(err)
	}
	// Busy for three asks: the pause (an hour's worth) ends when busy
	// turns false, after two checks.
	busy, calls := flips(3)
	if err := Yield(context.Background(), busy, time.Hour, 0.1); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("busy asked %d times, want 4", got)
	}
	// The pause is the work's time times (1-share)/share, in checks.
	always, calls := flips(1 << 30)
	if err := Yield(context.Background(), always, Check, 0.5); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("busy asked %d times over a pause of one check, want 2", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Yield(ctx, always, time.Hour, 0.1); !errors.Is(err, context.Canceled) {
		t.Errorf("Yield with ctx done: %v", err)
	}
}

func TestWait(t *testing.T) {
	if err := Wait(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	busy, calls := flips(2)
	if err := Wait(context.Background(), busy); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("busy asked %d times, want 3", got)
	}
	always, _ := flips(1 << 30)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, always); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with ctx done: %v", err)
	}
}
