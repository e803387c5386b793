package rfb

import (
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
)

// recorder turns what the proxy sees into a desktop recording: it is the
// screen's sink (regions, copies, size, cursor) and takes the client's
// pointer, keys and clipboard.
//
// Changed regions are gathered and taken from the screen at most every
// minInterval: the recording shows what the user saw, at most minInterval
// late, and a burst of updates costs one set of records. Taking them is a
// copy of their pixels; compressing and sending happen on the recorder's
// own goroutine, which keeps its own copy of the recorded screen (for
// keyframes), so the proxy's forwarding never waits for compression
// unless more than maxQueued bytes of pixels are waiting.
type recorder struct {
	mu          sync.Mutex
	start       time.Time
	now         func() time.Time
	minInterval time.Duration
	keys, clip  bool

	scr     *screen        // set once the screen exists
	shadow  *desktop.Image // the screen as last taken for the recording
	dirty   []desktop.Rect
	last    time.Time // last flush
	timer   *time.Timer
	x, y    int
	buttons uint8
	err     error // the first write error; recording stops
	onErr   func(error)
	stopped bool
	resized bool
	started bool // the first frame has been queued

	// The queue to the encoding goroutine.
	qmu     sync.Mutex
	qcond   *sync.Cond
	queue   []job
	queued  int // pixel bytes in queue
	closing bool
	done    chan struct{}

	// Owned by the encoding goroutine.
	enc    *desktop.Encoder
	mirror *desktop.Image
}

// maxQueued bounds the pixel bytes waiting for the encoder.
const maxQueued = 64 << 20

// job is one piece of work for the encoding goroutine.
type job struct {
	t       time.Duration
	kind    byte // a desktop record type, or 0 for regions
	rects   []desktop.Rect
	pix     []uint32 // the rects' pixels, one after the other
	w, h    int      // resize
	sx, sy  int      // copy
	x, y    int      // pointer
	buttons uint8
	down    bool
	sym     uint32
	text    []byte
	server  bool
	cursor  *desktop.Cursor
}

func newRecorder(enc *desktop.Encoder, start time.Time, now func() time.Time, minInterval time.Duration, keys, clip bool) *recorder {
	r := &recorder{enc: enc, start: start, now: now, minInterval: minInterval, keys: keys, clip: clip, done: make(chan struct{})}
	r.qcond = sync.NewCond(&r.qmu)
	go r.encodeLoop()
	return r
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

// fail stops recording after an error and reports it once; r.mu is held.
func (r *recorder) fail(err error) {
	if err == nil || r.err != nil {
		return
	}
	r.err = err
	if r.onErr != nil {
		go r.onErr(err)
	}
}

func (r *recorder) active() bool { return r.err == nil && !r.stopped }

// push queues a job, waiting while too many pixel bytes are queued.
func (r *recorder) push(j job) {
	size := 4 * len(j.pix)
	r.qmu.Lock()
	for r.queued > 0 && r.queued+size > maxQueued && !r.closing {
		r.qcond.Wait()
	}
	r.queue = append(r.queue, j)
	r.queued += size
	r.qmu.Unlock()
	r.qcond.Broadcast()
}

func (r *recorder) encodeLoop() {
	defer close(r.done)
	for {
		r.qmu.Lock()
		for len(r.queue) == 0 && !r.closing {
			r.qcond.Wait()
		}
		if len(r.queue) == 0 {
			r.qmu.Unlock()
			return
		}
		j := r.queue[0]
		r.queue[0] = job{}
		r.queue = r.queue[1:]
		r.queued -= 4 * len(j.pix)
		r.qmu.Unlock()
		r.qcond.Broadcast()
		if err := r.encode(&j); err != nil {
			// Wake any pusher first: it may hold r.mu.
			r.qmu.Lock()
			r.queue, r.queued, r.closing = nil, 0, true
			r.qmu.Unlock()
			r.qcond.Broadcast()
			r.mu.Lock()
			r.fail(err)
			r.mu.Unlock()
			return
		}
	}
}

// encode writes one job's records; it runs on the encoding goroutine.
func (r *recorder) encode(j *job) error {
	e := r.enc
	switch j.kind {
	case 0: // regions
		off := 0
		for _, rc := range j.rects {
			for y := 0; y < rc.H; y++ {
				copy(r.mirror.Pix[(rc.Y+y)*r.mirror.W+rc.X:], j.pix[off:off+rc.W])
				off += rc.W
			}
		}
		if e.NeedKeyframe(j.t) {
			return e.Keyframe(j.t, r.mirror)
		}
		for _, rc := range j.rects {
			if err := e.Region(j.t, r.mirror, rc); err != nil {
				return err
			}
		}
	case desktop.TypeKeyframe: // the first frame: the whole screen
		r.mirror = &desktop.Image{W: j.w, H: j.h, Pix: j.pix}
		return e.Keyframe(j.t, r.mirror)
	case desktop.TypeCopy:
		rc := j.rects[0]
		desktop.CopyRect(r.mirror, j.sx, j.sy, rc)
		if e.NeedKeyframe(j.t) {
			return e.Keyframe(j.t, r.mirror)
		}
		return e.Copy(j.t, j.sx, j.sy, rc)
	case desktop.TypeResize:
		r.mirror = desktop.NewImage(j.w, j.h)
		return e.Resize(j.t, j.w, j.h)
	case desktop.TypePointer:
		return e.Pointer(j.t, j.x, j.y, j.buttons)
	case desktop.TypeCursor:
		return e.Cursor(j.t, j.cursor)
	case desktop.TypeKey:
		return e.Key(j.t, j.down, j.sym)
	case desktop.TypeClipboard:
		return e.Clipboard(j.t, j.server, j.text)
	}
	return nil
}

func (r *recorder) region(rect desktop.Rect) {
	// Called with r.mu held by the proxy (see serverToClient).
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
	// The screen has the copy applied already. When regions are pending,
	// the recorded screen lacks them, so a copy record could copy stale
	// pixels: the destination is then written as a region instead.
	if !r.active() {
		return
	}
	if len(r.dirty) > 0 || !r.started || r.resized {
		r.region(rect)
		return
	}
	r.push(job{t: r.t(), kind: desktop.TypeCopy, sx: sx, sy: sy, rects: []desktop.Rect{rect}})
}

func (r *recorder) resize(w, h int) {
	r.dirty = r.dirty[:0]
	r.resized = true
}

func (r *recorder) cursor(c *desktop.Cursor) {
	if r.active() {
		r.push(job{t: r.t(), kind: desktop.TypeCursor, cursor: c})
	}
}

// updateDone is called (with r.mu held) after each FramebufferUpdate: it
// takes the changes now, or arms a timer if the last time was under
// minInterval ago.
func (r *recorder) updateDone() {
	if !r.active() || (len(r.dirty) == 0 && !r.resized && r.started) {
		return
	}
	now := r.now()
	if wait := r.minInterval - now.Sub(r.last); wait > 0 && r.started {
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

// flush queues the pending changes; r.mu is held.
func (r *recorder) flush() {
	if !r.active() || r.scr == nil {
		return
	}
	r.last = r.now()
	t := r.t()
	fb := r.scr.fb
	first := !r.started
	if r.resized && r.started {
		r.push(job{t: t, kind: desktop.TypeResize, w: fb.W, h: fb.H})
	}
	if first || r.resized {
		r.started, r.resized = true, false
		r.dirty = append(r.dirty[:0], desktop.Rect{W: fb.W, H: fb.H})
	}
	if first || r.shadow == nil || r.shadow.W != fb.W || r.shadow.H != fb.H {
		r.shadow = desktop.NewImage(fb.W, fb.H)
	}
	// Only what differs from what was last taken is taken: servers often
	// send unchanged pixels again (a full refresh), and then this costs a
	// comparison, not a copy and a compression.
	var rects []desktop.Rect
	n := 0
	for _, d := range r.dirty {
		if !d.In(fb.W, fb.H) || d.Empty() {
			continue
		}
		box := desktop.Rect{}
		for y := d.Y; y < d.Y+d.H; y++ {
			row := r.shadow.Pix[y*fb.W+d.X : y*fb.W+d.X+d.W]
			src := fb.Pix[y*fb.W+d.X : y*fb.W+d.X+d.W]
			x0 := 0
			for x0 < d.W && row[x0] == src[x0] {
				x0++
			}
			if x0 == d.W {
				continue
			}
			x1 := d.W
			for row[x1-1] == src[x1-1] {
				x1--
			}
			copy(row[x0:x1], src[x0:x1])
			box = box.Union(desktop.Rect{X: d.X + x0, Y: y, W: x1 - x0, H: 1})
		}
		if !box.Empty() {
			rects = append(rects, box)
			n += box.W * box.H
		}
	}
	r.dirty = r.dirty[:0]
	if first {
		// The whole screen, changed or not (black pixels are unchanged).
		r.push(job{t: t, kind: desktop.TypeKeyframe, w: fb.W, h: fb.H, pix: append([]uint32(nil), fb.Pix...)})
		return
	}
	if len(rects) == 0 {
		return
	}
	pix := make([]uint32, 0, n)
	for _, d := range rects {
		for y := d.Y; y < d.Y+d.H; y++ {
			pix = append(pix, fb.Pix[y*fb.W+d.X:y*fb.W+d.X+d.W]...)
		}
	}
	r.push(job{t: t, rects: rects, pix: pix})
}

func (r *recorder) pointer(x, y int, buttons uint8) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x == r.x && y == r.y && buttons == r.buttons {
		return
	}
	r.x, r.y, r.buttons = x, y, buttons
	if r.active() {
		r.push(job{t: r.t(), kind: desktop.TypePointer, x: x, y: y, buttons: buttons})
	}
}

func (r *recorder) key(down bool, sym uint32) {
	if !r.keys {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active() {
		r.push(job{t: r.t(), kind: desktop.TypeKey, down: down, sym: sym})
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
	if r.active() {
		r.push(job{t: r.t(), kind: desktop.TypeClipboard, server: fromServer, text: text})
	}
}

// stop queues what is pending, ends recording, and waits until the
// encoding goroutine has written everything.
func (r *recorder) stop() {
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.flush()
	r.stopped = true
	r.mu.Unlock()
	r.qmu.Lock()
	r.closing = true
	r.qmu.Unlock()
	r.qcond.Broadcast()
	<-r.done
}
