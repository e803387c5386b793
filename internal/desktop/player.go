package desktop

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// A Player rebuilds the screen from records: feed it records in order
// with Apply, starting at the beginning or at a keyframe.
type Player struct {
	Screen   *Image
	Cursor   *Cursor // nil until a cursor record
	X, Y     int     // pointer position
	Buttons  uint8
	T        time.Duration // time of the last record applied
	buf      []byte
	keyframe bool // a keyframe has been applied since the start or a resize
}

// NewPlayer returns a Player with a black w×h screen.
func NewPlayer(w, h int) *Player { return &Player{Screen: NewImage(w, h)} }

// Apply applies one record. Records that do not change the picture (keys,
// clipboard) only advance the time.
func (p *Player) Apply(rec *Record) error {
	p.T = rec.T
	switch rec.Type {
	case TypeKeyframe:
		if p.Screen == nil || p.Screen.W != rec.Rect.W || p.Screen.H != rec.Rect.H {
			p.Screen = NewImage(rec.Rect.W, rec.Rect.H)
		}
		p.keyframe = true
		return p.pixels(rec, rec.Rect)
	case TypeRegion:
		if !rec.Rect.In(p.Screen.W, p.Screen.H) {
			return fmt.Errorf("desktop: region %v outside the %dx%d screen", rec.Rect, p.Screen.W, p.Screen.H)
		}
		return p.pixels(rec, rec.Rect)
	case TypeCopy:
		src := Rect{rec.SrcX, rec.SrcY, rec.Rect.W, rec.Rect.H}
		if !rec.Rect.In(p.Screen.W, p.Screen.H) || !src.In(p.Screen.W, p.Screen.H) {
			return fmt.Errorf("desktop: copy %v from (%d,%d) outside the screen", rec.Rect, rec.SrcX, rec.SrcY)
		}
		CopyRect(p.Screen, rec.SrcX, rec.SrcY, rec.Rect)
	case TypeResize:
		p.Screen = NewImage(rec.Rect.W, rec.Rect.H)
		p.keyframe = false
	case TypePointer:
		p.X, p.Y, p.Buttons = rec.X, rec.Y, rec.Buttons
	case TypeCursor:
		n := rec.Rect.W * rec.Rect.H
		p.buf = grow(p.buf, 4*n)
		if err := inflate(p.buf, rec.data); err != nil {
			return err
		}
		c := &Cursor{W: rec.Rect.W, H: rec.Rect.H, HotX: rec.hotX, HotY: rec.hotY, Pix: make([]uint32, n)}
		for i := range c.Pix {
			b := p.buf[4*i:]
			c.Pix[i] = uint32(b[3])<<24 | uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		}
		p.Cursor = c
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func (p *Player) pixels(rec *Record, r Rect) error {
	p.buf = grow(p.buf, 3*r.W*r.H)
	if err := inflate(p.buf, rec.data); err != nil {
		return err
	}
	i := 0
	for y := r.Y; y < r.Y+r.H; y++ {
		row := p.Screen.Pix[y*p.Screen.W+r.X : y*p.Screen.W+r.X+r.W]
		for x := range row {
			row[x] = uint32(p.buf[i])<<16 | uint32(p.buf[i+1])<<8 | uint32(p.buf[i+2])
			i += 3
		}
	}
	return nil
}

// CopyRect copies the r.W×r.H pixels at (sx, sy) to r within img,
// correctly when the two overlap.
func CopyRect(img *Image, sx, sy int, r Rect) {
	if sy < r.Y {
		for y := r.H - 1; y >= 0; y-- {
			copy(img.Pix[(r.Y+y)*img.W+r.X:(r.Y+y)*img.W+r.X+r.W], img.Pix[(sy+y)*img.W+sx:(sy+y)*img.W+sx+r.W])
		}
		return
	}
	for y := 0; y < r.H; y++ {
		copy(img.Pix[(r.Y+y)*img.W+r.X:(r.Y+y)*img.W+r.X+r.W], img.Pix[(sy+y)*img.W+sx:(sy+y)*img.W+sx+r.W])
	}
}

// Composite returns a copy of the screen with the cursor drawn at the
// pointer, as the user saw it.
func (p *Player) Composite() *Image {
	out := &Image{W: p.Screen.W, H: p.Screen.H, Pix: append([]uint32(nil), p.Screen.Pix...)}
	c := p.Cursor
	if c == nil {
		return out
	}
	for cy := 0; cy < c.H; cy++ {
		y := p.Y - c.HotY + cy
		if y < 0 || y >= out.H {
			continue
		}
		for cx := 0; cx < c.W; cx++ {
			x := p.X - c.HotX + cx
			if x < 0 || x >= out.W {
				continue
			}
			v := c.Pix[cy*c.W+cx]
			a := v >> 24
			switch a {
			case 0:
			case 255:
				out.Pix[y*out.W+x] = v & 0xFFFFFF
			default:
				d := out.Pix[y*out.W+x]
				mix := func(s, d uint32) uint32 { return (s*a + d*(255-a)) / 255 }
				out.Pix[y*out.W+x] = mix(v>>16&255, d>>16&255)<<16 | mix(v>>8&255, d>>8&255)<<8 | mix(v&255, d&255)
			}
		}
	}
	return out
}

// Keyframe is one entry of an Index.
type Keyframe struct {
	T   time.Duration
	Off int64 // offset of the keyframe's line
}

// An Index describes a recording: its header, length and keyframes.
type Index struct {
	Header    Header
	Duration  time.Duration // time of the last complete record
	Records   int
	Size      int64 // bytes up to the end of the last complete record
	Keyframes []Keyframe
	// Truncated is set when the recording ends inside a record (live, or
	// cut by a crash); Err when a record is corrupt (the index covers
	// what came before it).
	Truncated bool
	Err       error
}

// Scan reads a whole recording and indexes it. It does not decompress
// pixels. It fails only when the header is unreadable; a corrupt record
// ends the scan and is reported in Index.Err.
func Scan(r io.Reader) (*Index, error) {
	d, err := NewDecoder(r)
	if err != nil {
		return nil, err
	}
	ix := &Index{Header: d.Header(), Size: d.Offset()}
	for {
		rec, err := d.Next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
			case errors.Is(err, ErrTruncated):
				ix.Truncated = true
			default:
				ix.Err = err
			}
			return ix, nil
		}
		ix.Records++
		ix.Duration = max(ix.Duration, rec.T)
		ix.Size = d.Offset()
		if rec.Type == TypeKeyframe {
			ix.Keyframes = append(ix.Keyframes, Keyframe{T: rec.T, Off: rec.Off})
		}
	}
}

// Before returns the last keyframe at or before t (the first one if t
// comes before every keyframe); ok is false when there is none.
func (ix *Index) Before(t time.Duration) (Keyframe, bool) {
	if len(ix.Keyframes) == 0 {
		return Keyframe{}, false
	}
	k := ix.Keyframes[0]
	for _, kf := range ix.Keyframes {
		if kf.T > t {
			break
		}
		k = kf
	}
	return k, true
}

// Stat reads the header and the duration (the time of the last complete
// record) of the recording held by r, of size bytes, reading only its
// start and its end.
func Stat(r io.ReaderAt, size int64) (Header, time.Duration, error) {
	d, err := NewDecoder(io.NewSectionReader(r, 0, min(size, 1<<20)))
	if err != nil {
		return Header{}, 0, err
	}
	h := d.Header()
	start := d.Offset()
	// Walk back from the end in growing windows until a whole record is
	// found.
	for window := int64(64 << 10); ; window *= 4 {
		from := max(start, size-window)
		buf := make([]byte, size-from)
		if _, err := r.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
			return h, 0, err
		}
		if t, ok := lastRecordTime(buf, from == start); ok {
			return h, t, nil
		}
		if from == start {
			return h, 0, nil // no complete record
		}
		if window > MaxLine {
			return h, 0, errors.New("desktop: no complete record near the end")
		}
	}
}

// RecordTime returns the time of the record on one line (as stored:
// escaped, without its newline), after checking that it is a whole, valid
// record (escapes, checksum, body).
func RecordTime(line []byte) (time.Duration, error) {
	raw, err := unescape(nil, line)
	if err != nil {
		return 0, err
	}
	rec, err := parseRecord(raw)
	if err != nil {
		return 0, err
	}
	return rec.T, nil
}

// lastRecordTime finds the last complete, valid record in buf (which ends
// where the recording ends) and returns its time. atStart says buf begins
// at a record boundary.
func lastRecordTime(buf []byte, atStart bool) (time.Duration, bool) {
	end := len(buf)
	for end > 0 && buf[end-1] != newline {
		end-- // a partial record at the very end
	}
	for end > 0 {
		begin := end - 1
		for begin > 0 && buf[begin-1] != newline {
			begin--
		}
		if begin == 0 && !atStart {
			return 0, false
		}
		if t, err := RecordTime(buf[begin : end-1]); err == nil {
			return t, true
		}
		end = begin
	}
	return 0, false
}

// FrameAt rebuilds the screen at time t: it seeks r to the keyframe before
// t (from ix) and applies records up to and including t. It reads only
// from that keyframe on.
func FrameAt(r io.ReadSeeker, ix *Index, t time.Duration) (*Player, error) {
	k, ok := ix.Before(t)
	if !ok {
		return nil, errors.New("desktop: the recording has no keyframe")
	}
	if _, err := r.Seek(k.Off, io.SeekStart); err != nil {
		return nil, err
	}
	d, _ := NewDecoderAt(r, ix.Header, k.Off)
	p := NewPlayer(ix.Header.Width, ix.Header.Height)
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated) {
			return p, nil
		}
		if err != nil {
			return p, err
		}
		if rec.T > t && rec.Off != k.Off {
			return p, nil
		}
		if err := p.Apply(&rec); err != nil {
			return p, err
		}
	}
}

// NewDecoderAt returns a Decoder that reads records from r, whose next
// byte is at offset off of a recording with header h: a record boundary,
// such as a keyframe's offset from an Index.
func NewDecoderAt(r io.Reader, h Header, off int64) (*Decoder, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	return &Decoder{br: bufio.NewReaderSize(r, 64<<10), h: h, off: off, maxLen: MaxLine}, nil
}
