package s3store

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// A job is one thing to upload: a recording or an event segment. run does
// as much as can be done now and returns; the runner calls it again when it
// is kicked, and after a backoff when it failed.
type job interface {
	run(ctx context.Context) error
	sched() *sched
	describe() string // for logs: the key
}

// sched is a job's place in the runner; guarded by runner.mu.
type sched struct {
	queued  bool // in the queue
	running bool
	again   bool        // kicked while running: run once more
	waiting *time.Timer // backing off after a failure
	fails   int         // failures in a row
}

// runner runs jobs on a fixed number of goroutines, each job on at most
// one at a time, retrying failed ones with exponential backoff.
type runner struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []job
	waiting map[job]struct{}
	stopped bool
}

func newRunner(s *Store, workers int) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{s: s, ctx: ctx, cancel: cancel, waiting: map[job]struct{}{}}
	r.cond = sync.NewCond(&r.mu)
	for range workers {
		r.wg.Go(r.work)
	}
	return r
}

// kick asks for j to be run soon. A job that is backing off keeps waiting.
func (r *runner) kick(j job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kickLocked(j)
}

func (r *runner) kickLocked(j job) {
	if r.stopped {
		return
	}
	sc := j.sched()
	switch {
	case sc.running:
		sc.again = true
	case sc.queued, sc.waiting != nil:
	default:
		sc.queued = true
		r.queue = append(r.queue, j)
		r.cond.Signal()
	}
}

// retryNow ends every backoff at once.
func (r *runner) retryNow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for j := range r.waiting {
		sc := j.sched()
		if sc.waiting.Stop() {
			sc.waiting = nil
			delete(r.waiting, j)
			r.kickLocked(j)
		}
	}
}

// failing counts jobs backing off after a failure.
func (r *runner) failing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiting)
}

func (r *runner) work() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for len(r.queue) == 0 && !r.stopped {
			r.cond.Wait()
		}
		if r.stopped {
			return
		}
		j := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		sc := j.sched()
		sc.queued, sc.running = false, true
		r.mu.Unlock()
		err := j.run(r.ctx)
		r.mu.Lock()
		sc.running = false
		if r.stopped || r.ctx.Err() != nil {
			return
		}
		if err != nil {
			sc.fails++
			sc.again = false
			r.s.noteFailure(j, err, sc.fails)
			d := backoff(r.s.cfg.RetryMin, r.s.cfg.RetryMax, sc.fails)
			r.waiting[j] = struct{}{}
			sc.waiting = time.AfterFunc(d, func() {
				r.mu.Lock()
				defer r.mu.Unlock()
				if sc.waiting == nil {
					return // retryNow got there first
				}
				sc.waiting = nil
				delete(r.waiting, j)
				r.kickLocked(j)
			})
			continue
		}
		if sc.fails > 0 {
			r.s.log.Info("upload resumed", "key", j.describe(), "after_failures", sc.fails)
			sc.fails = 0
		}
		if sc.again {
			sc.again = false
			r.kickLocked(j)
		}
	}
}

// stop ends the workers, cancelling uploads under way, and waits for them.
func (r *runner) stop() {
	r.mu.Lock()
	r.stopped = true
	for j := range r.waiting {
		j.sched().waiting.Stop()
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// backoff is the wait after the n-th failure in a row: exponential from
// lo, capped at hi, with jitter so that many uploads do not retry in step.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// noteFailure counts and logs a failed upload attempt: the first failure
// of a job and every tenth are warnings, the rest debug.
func (s *Store) noteFailure(j job, err error, fails int) {
	s.stats.retries.Add(1)
	msg := err.Error()
	s.lastErr.Store(&msg)
	level := s.log.Debug
	if fails == 1 || fails%10 == 0 {
		level = s.log.Warn
	}
	level("upload failed; will retry", "key", j.describe(), "failures", fails, "err", err)
}
