package web

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestPrepareWaitsWhileBusy: a cut made ahead of a first viewer waits
// while the recorder is busy, and is made once it no longer is.
func TestPrepareWaitsWhileBusy(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	var evs []asciicast.Event
	for i := range 2000 {
		evs = append(evs, asciicast.Event{Time: float64(i), Code: asciicast.Output, Data: fmt.Sprintf("line %d\r\n", i)})
	}
	key := writeCast(t, st, "node", time.Unix(1793527200, 0), asciicast.Header{Version: 2, Width: 80, Height: 24}, evs, store.StatusComplete)
	c := newSegmentCache(st, "", 4<<10, slog.New(slog.DiscardHandler))
	defer c.close()
	var busy atomic.Bool
	busy.Store(true)
	var asked atomic.Int64
	c.busy = func() bool { asked.Add(1); return busy.Load() }

	cuts := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.cuts)
	}
	c.prepare(key)
	c.prepare(key) // a second change while it waits: still one waiter
	testutil.WaitFor(t, "the deferred cut to ask again", func() bool { return asked.Load() >= 4 })
	if n := cuts(); n != 0 {
		t.Fatalf("%d cuts started while the recorder was busy", n)
	}
	c.mu.Lock()
	waiting := len(c.deferred)
	c.mu.Unlock()
	if waiting != 1 {
		t.Errorf("%d deferred cuts, want 1", waiting)
	}
	busy.Store(false)
	testutil.WaitFor(t, "the cut", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ct := range c.cuts {
			if ok, err := ct.ready(); ok && err == nil {
				return true
			}
		}
		return false
	})
}
