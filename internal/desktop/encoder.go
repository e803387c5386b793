package desktop

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Keyframe policy defaults (see Encoder).
const (
	DefaultKeyframeInterval = 60 * time.Second
	DefaultKeyframeRatio    = 3
)

// An Encoder writes a recording: the header, then one record per call.
// Each call hands exactly one whole line to the underlying writer in one
// Write, so a writer that queues writes (the sender) never holds half a
// record. An Encoder is not safe for concurrent use.
type Encoder struct {
	w     io.Writer
	level int

	// Keyframe policy: NeedKeyframe is true once the bytes written since
	// the last keyframe reach KeyframeRatio times its size, or once
	// KeyframeInterval has passed with changes since.
	KeyframeInterval time.Duration
	KeyframeRatio    int

	raw     []byte // the record being built, unescaped
	line    []byte // escaped
	pix     []byte // pixels in RGB order
	zbuf    bytes.Buffer
	zw      *flate.Writer
	zk      *flate.Writer // for keyframes: rare, so compressed harder
	written int64         // bytes written so far

	lastKey     time.Duration
	lastKeySize int64
	sinceKey    int64 // bytes of screen records since the last keyframe
	haveKey     bool

	// The cursor and pointer, repeated after every keyframe so that
	// replay from a keyframe needs nothing before it.
	cursor      *Cursor
	px, py      int
	pb          uint8
	havePointer bool
}

// NewEncoder writes h (completed with Format and Version) to w and returns
// an Encoder for the records. level is the DEFLATE level of changed
// regions (flate.BestSpeed to flate.BestCompression; 0 means
// flate.BestSpeed); keyframes use at least level 6.
func NewEncoder(w io.Writer, h Header, level int) (*Encoder, error) {
	h.Format, h.Version = Format, Version
	if h.Timestamp == 0 && !h.Start.IsZero() {
		h.Timestamp = h.Start.Unix()
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("desktop: header: %w", err)
	}
	if level == 0 {
		level = flate.BestSpeed
	}
	e := &Encoder{w: w, level: level, KeyframeInterval: DefaultKeyframeInterval, KeyframeRatio: DefaultKeyframeRatio}
	e.zw, err = flate.NewWriter(&e.zbuf, level)
	if err != nil {
		return nil, fmt.Errorf("desktop: %w", err)
	}
	if e.zk, err = flate.NewWriter(&e.zbuf, max(level, 6)); err != nil {
		return nil, fmt.Errorf("desktop: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	e.written = int64(len(b) + 1)
	return e, nil
}

// SetWriter sends the records that follow to w (the header went to the
// writer given to NewEncoder).
func (e *Encoder) SetWriter(w io.Writer) { e.w = w }

// Written returns the bytes written so far, header included.
func (e *Encoder) Written() int64 { return e.written }

// NeedKeyframe says whether the next screen change should be written as a
// keyframe, by the policy above. It is true before the first keyframe.
func (e *Encoder) NeedKeyframe(t time.Duration) bool {
	if !e.haveKey {
		return true
	}
	if e.sinceKey == 0 {
		return false
	}
	ratio := int64(max(e.KeyframeRatio, 1))
	return e.sinceKey >= ratio*max(e.lastKeySize, 64<<10) || (e.KeyframeInterval > 0 && t-e.lastKey >= e.KeyframeInterval)
}

func (e *Encoder) begin(typ byte, t time.Duration) {
	e.raw = append(e.raw[:0], typ)
	e.raw = binary.AppendUvarint(e.raw, uint64(max(t, 0)/time.Microsecond))
}

func (e *Encoder) uvarints(v ...int) {
	for _, x := range v {
		e.raw = binary.AppendUvarint(e.raw, uint64(max(x, 0)))
	}
}

// end adds the CRC, escapes and writes the record; it returns the line's
// length.
func (e *Encoder) end() (int64, error) {
	e.raw = binary.BigEndian.AppendUint32(e.raw, crc32.Checksum(e.raw, castagnoli))
	e.line = appendEscaped(e.line[:0], e.raw)
	e.line = append(e.line, newline)
	n, err := e.w.Write(e.line)
	e.written += int64(n)
	if err != nil {
		return int64(n), err
	}
	return int64(n), nil
}

// deflate appends a pixel block of enc holding data, compressed with zw.
func (e *Encoder) deflate(zw *flate.Writer, enc byte, data []byte) error {
	e.zbuf.Reset()
	zw.Reset(&e.zbuf)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	e.raw = append(e.raw, enc)
	e.raw = append(e.raw, e.zbuf.Bytes()...)
	return nil
}

// rgb copies r of img into e.pix as RGB bytes.
func (e *Encoder) rgb(img *Image, r Rect) []byte {
	n := r.W * r.H * 3
	if cap(e.pix) < n {
		e.pix = make([]byte, n)
	}
	p := e.pix[:n]
	i := 0
	for y := r.Y; y < r.Y+r.H; y++ {
		row := img.Pix[y*img.W+r.X : y*img.W+r.X+r.W]
		for _, c := range row {
			p[i], p[i+1], p[i+2] = byte(c>>16), byte(c>>8), byte(c)
			i += 3
		}
	}
	return p
}

// Keyframe writes the whole of img as a keyframe at t, followed by the
// last cursor shape and pointer position written, so that replay can
// start at any keyframe.
func (e *Encoder) Keyframe(t time.Duration, img *Image) error {
	e.begin(TypeKeyframe, t)
	e.uvarints(img.W, img.H)
	if err := e.deflate(e.zk, PixDeflateRGB, e.rgb(img, Rect{0, 0, img.W, img.H})); err != nil {
		return err
	}
	n, err := e.end()
	e.haveKey, e.lastKey, e.lastKeySize, e.sinceKey = true, t, n, 0
	if err != nil {
		return err
	}
	if e.cursor != nil {
		if err := e.writeCursor(t, e.cursor); err != nil {
			return err
		}
	}
	if e.havePointer {
		return e.writePointer(t, e.px, e.py, e.pb)
	}
	return nil
}

// Region writes the pixels of img inside r (which must lie in img).
func (e *Encoder) Region(t time.Duration, img *Image, r Rect) error {
	if r.Empty() {
		return nil
	}
	if !r.In(img.W, img.H) {
		return fmt.Errorf("desktop: region %v outside the %dx%d screen", r, img.W, img.H)
	}
	e.begin(TypeRegion, t)
	e.uvarints(r.X, r.Y, r.W, r.H)
	if err := e.deflate(e.zw, PixDeflateRGB, e.rgb(img, r)); err != nil {
		return err
	}
	n, err := e.end()
	e.sinceKey += n
	return err
}

// Copy writes that the w×h rectangle at (sx, sy) was copied to r.
func (e *Encoder) Copy(t time.Duration, sx, sy int, r Rect) error {
	e.begin(TypeCopy, t)
	e.uvarints(sx, sy, r.X, r.Y, r.W, r.H)
	n, err := e.end()
	e.sinceKey += n
	return err
}

// Resize writes a change of the screen's size. A keyframe should follow.
func (e *Encoder) Resize(t time.Duration, w, h int) error {
	e.begin(TypeResize, t)
	e.uvarints(w, h)
	_, err := e.end()
	e.haveKey = false
	return err
}

// Pointer writes the pointer's position and button mask.
func (e *Encoder) Pointer(t time.Duration, x, y int, buttons uint8) error {
	e.px, e.py, e.pb, e.havePointer = x, y, buttons, true
	return e.writePointer(t, x, y, buttons)
}

func (e *Encoder) writePointer(t time.Duration, x, y int, buttons uint8) error {
	e.begin(TypePointer, t)
	e.uvarints(x, y)
	e.raw = append(e.raw, buttons)
	_, err := e.end()
	return err
}

// Cursor writes the cursor's shape. c must not change afterwards.
func (e *Encoder) Cursor(t time.Duration, c *Cursor) error {
	e.cursor = c
	return e.writeCursor(t, c)
}

func (e *Encoder) writeCursor(t time.Duration, c *Cursor) error {
	e.begin(TypeCursor, t)
	e.uvarints(c.HotX, c.HotY, c.W, c.H)
	n := c.W * c.H * 4
	if cap(e.pix) < n {
		e.pix = make([]byte, n)
	}
	p := e.pix[:n]
	for i, v := range c.Pix[:c.W*c.H] {
		p[4*i], p[4*i+1], p[4*i+2], p[4*i+3] = byte(v>>16), byte(v>>8), byte(v), byte(v>>24)
	}
	if err := e.deflate(e.zw, PixDeflateRGBA, p); err != nil {
		return err
	}
	_, err := e.end()
	return err
}

// SetCursor and SetPointer set the cursor and pointer that the next
// keyframe repeats, without writing a record.
func (e *Encoder) SetCursor(c *Cursor) { e.cursor = c }

func (e *Encoder) SetPointer(x, y int, buttons uint8) {
	e.px, e.py, e.pb, e.havePointer = x, y, buttons, true
}

// Key writes a key press (down) or release of the X keysym sym.
func (e *Encoder) Key(t time.Duration, down bool, sym uint32) error {
	e.begin(TypeKey, t)
	d := byte(0)
	if down {
		d = 1
	}
	e.raw = append(e.raw, d)
	e.raw = binary.BigEndian.AppendUint32(e.raw, sym)
	_, err := e.end()
	return err
}

// Clipboard writes clipboard text (UTF-8) sent by the server (fromServer)
// or by the client. Text longer than MaxText is cut.
func (e *Encoder) Clipboard(t time.Duration, fromServer bool, text []byte) error {
	e.begin(TypeClipboard, t)
	d := byte(0)
	if fromServer {
		d = 1
	}
	e.raw = append(e.raw, d)
	if len(text) > MaxText {
		text = text[:MaxText]
	}
	e.raw = append(e.raw, text...)
	_, err := e.end()
	return err
}
