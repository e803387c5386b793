package recorder

import (
	"log/slog"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

// BatchSyncer is implemented by stores that can make many writers durable
// at once more cheaply than one by one (fsstore: one syncfs instead of N
// fdatasyncs). SyncAll returns one error per writer, nil where its bytes
// are durable, so that a failure fails only the recordings it hit.
type BatchSyncer interface {
	SyncAll([]store.Writer) []error
}

// batchThreshold is how many dirty recordings make a batch sync worthwhile.
const batchThreshold = 4

// committer syncs every live recording that has new bytes, once per
// interval, in one round for all of them (group commit), then wakes the
// ackers, who ack what the round made durable.
type committer struct {
	st       store.Store
	interval time.Duration
	m        *Metrics
	log      *slog.Logger
	notify   func(key string, c Change)

	mu       sync.Mutex
	sessions map[*session]struct{}
	round    chan struct{} // closed when the current round ends
}

func newCommitter(st store.Store, interval time.Duration, m *Metrics, log *slog.Logger) *committer {
	return &committer{st: st, interval: interval, m: m, log: log, sessions: map[*session]struct{}{}, round: make(chan struct{})}
}

func (c *committer) add(ss *session) {
	c.mu.Lock()
	c.sessions[ss] = struct{}{}
	c.mu.Unlock()
}

func (c *committer) remove(ss *session) {
	c.mu.Lock()
	delete(c.sessions, ss)
	c.mu.Unlock()
}

// roundDone returns a channel closed when the next sync round ends.
func (c *committer) roundDone() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.round
}

func (c *committer) run(stop <-chan struct{}) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c.syncRound()
	}
}

// syncRound makes every dirty recording durable and publishes the result.
func (c *committer) syncRound() {
	c.mu.Lock()
	var dirty []*session
	for ss := range c.sessions {
		if ss.received.Load() > ss.durable.Load() {
			dirty = append(dirty, ss)
		}
	}
	c.mu.Unlock()

	if len(dirty) > 0 {
		start := time.Now()
		upto, errs := c.sync(dirty)
		c.m.observeSync(time.Since(start), len(dirty))
		for i, ss := range dirty {
			if errs[i] != nil {
				c.m.errors.add("store_sync")
				ss.failSync(errs[i])
				continue
			}
			if prev := ss.durable.Load(); upto[i] > prev {
				ss.durable.Store(upto[i])
				c.m.bytesDurable.Add(upto[i] - prev)
				if c.notify != nil {
					c.notify(ss.key, Change{What: Grew, Size: upto[i]})
				}
			}
		}
	}

	c.mu.Lock()
	close(c.round)
	c.round = make(chan struct{})
	c.mu.Unlock()
}

// sync flushes and syncs the sessions' writers and returns, per session,
// how many bytes are now durable (0 if unknown) and the error. It holds each
// session's wmu meanwhile, so none closes under it; one that closed since
// the snapshot is skipped (its Close synced it).
func (c *committer) sync(dirty []*session) ([]int64, []error) {
	upto := make([]int64, len(dirty))
	errs := make([]error, len(dirty))
	var open []int
	for i, ss := range dirty {
		ss.wmu.Lock()
		if ss.closed {
			ss.wmu.Unlock()
			continue
		}
		upto[i], errs[i] = ss.flush(true)
		open = append(open, i)
	}
	defer func() {
		for _, i := range open {
			dirty[i].wmu.Unlock()
		}
	}()
	var todo []int // open and flushed without error
	for _, i := range open {
		if errs[i] == nil {
			todo = append(todo, i)
		}
	}
	if bs, ok := c.st.(BatchSyncer); ok && len(todo) >= batchThreshold {
		ws := make([]store.Writer, len(todo))
		for j, i := range todo {
			ws[j] = dirty[i].w
		}
		for j, err := range bs.SyncAll(ws) {
			errs[todo[j]] = err
		}
		return upto, errs
	}
	// fdatasync in parallel: the file system batches concurrent commits.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, i := range todo {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = dirty[i].w.Sync()
		})
	}
	wg.Wait()
	return upto, errs
}
