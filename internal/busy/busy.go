// Package busy lets background work that can wait (the search index's
// text extraction, the web UI's segment cuts) leave the CPU to the
// recorder while it takes a burst of data: the bytes a sender is waiting
// to have acknowledged come first, the work catches up after the burst.
package busy

import (
	"context"
	"sync"
	"time"
)

// Check is how often waiting work asks again whether the recorder is
// still busy.
const Check = 250 * time.Millisecond

// Meter returns a function that reports whether received, a running
// count of bytes, grew faster than rate bytes per second over the last
// window (measured once per window, at a call; between, it repeats the
// last answer). It is safe for concurrent use.
func Meter(received func() int64, rate int64, window time.Duration, now func() time.Time) func() bool {
	var mu sync.Mutex
	start, base := now(), received()
	busy := false
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if t := now(); t.Sub(start) >= window {
			n := received()
			busy = float64(n-base) > float64(rate)*t.Sub(start).Seconds()
			start, base = t, n
		}
		return busy
	}
}

// Yield is called after a piece of background work that took took. While
// busy says so it pauses, so that such work takes at most share (0 to 1)
// of the time; it returns as soon as busy turns false, and with ctx's
// error when ctx ends. A nil busy never pauses.
func Yield(ctx context.Context, busy func() bool, took time.Duration, share float64) error {
	if busy == nil || !busy() {
		return nil
	}
	if share <= 0 || share > 1 {
		share = 0.1
	}
	pause := time.Duration(float64(took) * (1 - share) / share)
	for pause > 0 {
		step := min(pause, Check)
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause -= step
		if !busy() {
			return nil
		}
	}
	return nil
}

// Wait blocks while busy says so, asking every Check; it returns ctx's
// error when ctx ends. A nil busy never waits.
func Wait(ctx context.Context, busy func() bool) error {
	if busy == nil {
		return nil
	}
	for busy() {
		t := time.NewTimer(Check)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
