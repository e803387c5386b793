package auth

import (
	"sync"
	"time"
)

// limiter counts failed logins per key (an account, an address) in a
// fixed window that starts at the first failure. At max failures the key
// is refused until the window ends, whatever the password.
type limiter struct {
	max    int
	window time.Duration
	cap    int // keys kept; beyond it the oldest windows are dropped

	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

func newLimiter(max int, win time.Duration) *limiter {
	return &limiter{max: max, window: win, cap: 100000, m: map[string]*window{}}
}

// blocked reports whether key is refused now, and for how long yet.
func (l *limiter) blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[key]
	if !ok {
		return 0, false
	}
	left := w.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.m, key)
		return 0, false
	}
	return left, w.failures >= l.max
}

// fail counts a failure for key.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[key]
	if ok && now.Sub(w.start) >= l.window {
		ok = false
	}
	if !ok {
		if len(l.m) >= l.cap {
			l.prune(now)
		}
		w = &window{start: now}
		l.m[key] = w
	}
	w.failures++
}

// reset forgets key's failures (a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// prune drops ended windows, and if that is not enough the oldest
// tenth. l.mu is held.
func (l *limiter) prune(now time.Time) {
	for k, w := range l.m {
		if now.Sub(w.start) >= l.window {
			delete(l.m, k)
		}
	}
	if len(l.m) < l.cap {
		return
	}
	cut := now.Add(-l.window / 10 * 9)
	for k, w := range l.m {
		if w.start.Before(cut) {
			delete(l.m, k)
		}
	}
	for k := range l.m { // all in the last tenth: drop any
		if len(l.m) < l.cap {
			break
		}
		delete(l.m, k)
	}
}
