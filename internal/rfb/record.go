package rfb

import (
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
)

// recorder turns what the proxy sees into a desktop recording: it is the
// screen's sink (regions, copies, size, cursor) and takes the client's
// pointer, keys and clipboard. Changed regions are gathered and written at
// most every minInterval, from the screen as it then is: the recording
// shows what the user saw, with at most minInterval of delay, and a burst
// of updates costs one set of records. Safe for concurrent use.
type recorder struct {
	mu          sync.Mutex
	enc         *desktop.Encoder
	start       time.Time
	now         func() time.Time
	minInterval time.Duration
	keys, clip  bool

	scr      *screen // set once the screen exists
	dirty    []desktop.Rect
	last     time.Time // last flush
	timer    *time.Timer
	cur      *desktop.Cursor
	x, y     int
	buttons  uint8
	err      error // the first write error; recording stops
	onErr    func(error)
	stopped  bool
	resized  bool
	wroteAny bool
}

// sinkWriter adapts a function to io.Writer for the Encoder.
type sinkWriter func(p []byte) error

func (f sinkWriter) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r *recorder) t() time.Duration { return r.now().Sub(r.start) }

// fail stops recording after a write error and reports it once.
func (r *recorder) fail(err error) {
	if err == nil || r.err != nil {
		return
	}
	r.err = err
	if r.onErr != nil {
		go r.onErr(err)
	}
}

func (r *recorder) region(rect desktop.Rect) {
	// Called with r.mu held by the proxy (see lockedUpdate).
	for i, d := range r.dirty {
		u := d.Union(rect)
		if u == d {
			return
		}
		// Merge neighbours whose union wastes little.
		if u.W*u.H <= d.W*d.H+rect.W*rect.H+(u.W*u.H)/8 {
			r.dirty[i] = u
			return
		}
	}
	r.dirty = append(r.dirty, rect)
	if len(r.dirty) > 64 {
		u := r.dirty[0]
		for _, d := range r.dirty[1:] {
			u = u.Union(d)
		}
		r.dirty = append(r.dirty[:0], u)
	}
}

func (r *recorder) copyRect(sx, sy int, rect desktop.Rect) {
	// The copy applies to the screen as it was before it: write what is
	// pending first (from the screen before the copy it is not: the copy
	// has been applied already, so pending regions that overlap the
	// destination are written after the copy instead).
	if r.err != nil || r.stopped {
		return
	}
	if len(r.dirty) > 0 || r.enc.NeedKeyframe(r.t()) {
		// Simplest correct choice: treat the copy as a changed region.
		r.region(rect)
		return
	}
	r.fail(r.enc.Copy(r.t(), sx, sy, rect))
}

func (r *recorder) resize(w, h int) {
	r.dirty = r.dirty[:0]
	r.resized = true
}

func (r *recorder) cursor(c *desktop.Cursor) {
	r.cur = c
	if r.err == nil && !r.stopped && r.wroteAny {
		r.fail(r.enc.Cursor(r.t(), c))
	}
}

// updateDone is called (with r.mu held) after each FramebufferUpdate: it
// writes the changes now, or arms a timer if the last write was under
// minInterval ago.
func (r *recorder) updateDone() {
	if r.err != nil || r.stopped || (len(r.dirty) == 0 && !r.resized && r.wroteAny) {
		return
	}
	now := r.now()
	if wait := r.minInterval - now.Sub(r.last); wait > 0 && r.wroteAny {
		if r.timer == nil {
			r.timer = time.AfterFunc(wait, func() {
				r.mu.Lock()
				defer r.mu.Unlock()
				r.timer = nil
				r.flush()
			})
		}
		return
	}
	r.flush()
}

// flush writes the pending changes; r.mu is held.
func (r *recorder) flush() {
	if r.err != nil || r.stopped || r.scr == nil {
		return
	}
	r.last = r.now()
	t := r.t()
	fb := r.scr.fb
	if r.resized && r.wroteAny {
		r.fail(r.enc.Resize(t, fb.W, fb.H))
	}
	r.resized = false
	if r.enc.NeedKeyframe(t) {
		if !r.wroteAny {
			// Cursor and pointer from before the first frame; the
			// encoder repeats them after every keyframe.
			if r.cur != nil {
				r.enc.SetCursor(r.cur)
			}
			r.enc.SetPointer(r.x, r.y, r.buttons)
		}
		r.fail(r.enc.Keyframe(t, fb))
		r.wroteAny = true
		r.dirty = r.dirty[:0]
		return
	}
	for _, d := range r.dirty {
		if !d.In(fb.W, fb.H) {
			continue
		}
		r.fail(r.enc.Region(t, fb, d))
	}
	r.dirty = r.dirty[:0]
}

func (r *recorder) pointer(x, y int, buttons uint8) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x == r.x && y == r.y && buttons == r.buttons {
		return
	}
	r.x, r.y, r.buttons = x, y, buttons
	if r.err == nil && !r.stopped && r.wroteAny {
		r.fail(r.enc.Pointer(r.t(), x, y, buttons))
	}
}

func (r *recorder) key(down bool, sym uint32) {
	if !r.keys {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && !r.stopped && r.wroteAny {
		r.fail(r.enc.Key(r.t(), down, sym))
	}
}

func (r *recorder) clipboard(fromServer bool, latin1 []byte) {
	if !r.clip {
		return
	}
	text := make([]byte, 0, len(latin1))
	for _, c := range latin1 {
		text = append(text, string(rune(c))...)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && !r.stopped && r.wroteAny {
		r.fail(r.enc.Clipboard(r.t(), fromServer, text))
	}
}

// stop writes what is pending and ends recording.
func (r *recorder) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.flush()
	r.stopped = true
}
