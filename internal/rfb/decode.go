package rfb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	"github.com/reel-rec/reel/internal/desktop"
)

// Encodings (RFC 6143, 7.7, and the registry kept by the RFB community).
const (
	EncRaw      = 0
	EncCopyRect = 1
	EncRRE      = 2
	EncHextile  = 5
	EncTight    = 7
	EncZRLE     = 16

	EncCursor              = -239
	EncXCursor             = -240
	EncDesktopSize         = -223
	EncLastRect            = -224
	EncPointerPos          = -232
	EncDesktopName         = -307
	EncExtendedDesktopSize = -308
	EncFence               = -312
	EncContinuousUpdates   = -313

	// Tight's quality and compression levels: hints only.
	EncJPEGQuality0   = -32
	EncJPEGQuality9   = -23
	EncCompressLevel0 = -256
	EncCompressLevel9 = -247
)

// Supported reports whether reel can decode (or safely pass) an encoding
// or pseudo-encoding. A client's SetEncodings is filtered to these before
// the server sees it, so the server sends nothing reel cannot record.
func Supported(enc int32) bool {
	switch enc {
	case EncRaw, EncCopyRect, EncRRE, EncHextile, EncTight, EncZRLE,
		EncCursor, EncXCursor, EncDesktopSize, EncLastRect, EncPointerPos,
		EncDesktopName, EncExtendedDesktopSize, EncFence, EncContinuousUpdates:
		return true
	}
	return enc >= EncJPEGQuality0 && enc <= EncJPEGQuality9 || enc >= EncCompressLevel0 && enc <= EncCompressLevel9
}

// Limits on what a server may send, so that a hostile one cannot make reel
// allocate without bound.
const (
	maxCursor   = 256     // widest and tallest cursor
	maxNameLen  = 1 << 16 // desktop name
	maxZRLE     = 64 << 20
	maxScreens  = 16
	maxColorMap = 1 << 16
)

// screenSink receives what an update changed.
type screenSink interface {
	region(r desktop.Rect)
	copyRect(sx, sy int, r desktop.Rect)
	resize(w, h int)
	cursor(c *desktop.Cursor)
}

// A screen is the proxy's copy of the framebuffer, kept up to date by
// decoding every update the server sends.
type screen struct {
	fb        *desktop.Image
	pf        PixelFormat
	conv      *converter
	colormap  []uint32
	maxPixels int
	name      string

	zrle  zstream
	tight [4]zstream

	sink screenSink
	pix  []byte   // scratch: decompressed data
	line []uint32 // scratch: one tile or row of converted pixels
}

func newScreen(w, h int, pf PixelFormat, maxPixels int, sink screenSink) (*screen, error) {
	s := &screen{maxPixels: maxPixels, sink: sink}
	if err := s.setSize(w, h); err != nil {
		return nil, err
	}
	if err := s.setPixelFormat(pf); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *screen) setSize(w, h int) error {
	if w <= 0 || h <= 0 || w > desktop.MaxSide || h > desktop.MaxSide || w*h > s.maxPixels {
		return fmt.Errorf("rfb: desktop size %dx%d beyond the limit of %d pixels", w, h, s.maxPixels)
	}
	s.fb = desktop.NewImage(w, h)
	return nil
}

func (s *screen) setPixelFormat(pf PixelFormat) error {
	if err := pf.check(); err != nil {
		return err
	}
	s.pf = pf
	s.conv = newConverter(pf, s.colormap)
	return nil
}

// setColourMap handles SetColourMapEntries.
func (s *screen) setColourMap(first int, rgb []uint32) {
	if need := first + len(rgb); need > len(s.colormap) {
		s.colormap = append(s.colormap, make([]uint32, need-len(s.colormap))...)
	}
	copy(s.colormap[first:], rgb)
	s.conv.colormap = s.colormap
}

// update decodes one FramebufferUpdate, after its message-type byte.
func (s *screen) update(t *tee) error {
	hdr, err := t.next(3)
	if err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	for i := 0; i < n; i++ {
		b, err := t.next(12)
		if err != nil {
			return err
		}
		r := desktop.Rect{X: int(binary.BigEndian.Uint16(b)), Y: int(binary.BigEndian.Uint16(b[2:])), W: int(binary.BigEndian.Uint16(b[4:])), H: int(binary.BigEndian.Uint16(b[6:]))}
		enc := int32(binary.BigEndian.Uint32(b[8:]))
		if enc == EncLastRect {
			return nil
		}
		if err := s.rect(t, r, enc); err != nil {
			return fmt.Errorf("rfb: rectangle %d of %d (%dx%d at %d,%d, encoding %d): %w", i+1, n, r.W, r.H, r.X, r.Y, enc, err)
		}
	}
	return nil
}

func (s *screen) rect(t *tee, r desktop.Rect, enc int32) error {
	switch enc {
	case EncDesktopSize:
		return s.resize(r.W, r.H)
	case EncExtendedDesktopSize:
		b, err := t.next(4)
		if err != nil {
			return err
		}
		if int(b[0]) > maxScreens {
			return fmt.Errorf("%d screens", b[0])
		}
		if err := t.skip(16 * int(b[0])); err != nil {
			return err
		}
		if r.W == s.fb.W && r.H == s.fb.H {
			return nil
		}
		return s.resize(r.W, r.H)
	case EncDesktopName:
		l, err := t.u32()
		if err != nil {
			return err
		}
		if l > maxNameLen {
			return fmt.Errorf("desktop name of %d bytes", l)
		}
		b, err := t.next(int(l))
		s.name = string(b)
		return err
	case EncPointerPos:
		return nil
	case EncCursor:
		return s.richCursor(t, r)
	case EncXCursor:
		return s.xCursor(t, r)
	}
	if !r.In(s.fb.W, s.fb.H) {
		return fmt.Errorf("outside the %dx%d screen", s.fb.W, s.fb.H)
	}
	var err error
	switch enc {
	case EncRaw:
		err = s.raw(t, r)
	case EncCopyRect:
		var b []byte
		if b, err = t.next(4); err != nil {
			return err
		}
		sx, sy := int(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
		if !(desktop.Rect{X: sx, Y: sy, W: r.W, H: r.H}).In(s.fb.W, s.fb.H) {
			return fmt.Errorf("copy source %d,%d outside the screen", sx, sy)
		}
		desktop.CopyRect(s.fb, sx, sy, r)
		if !r.Empty() {
			s.sink.copyRect(sx, sy, r)
		}
		return nil
	case EncRRE:
		err = s.rre(t, r)
	case EncHextile:
		err = s.hextile(t, r)
	case EncZRLE:
		err = s.zrleRect(t, r)
	case EncTight:
		err = s.tightRect(t, r)
	default:
		return errors.New("encoding not negotiated")
	}
	if err == nil && !r.Empty() {
		s.sink.region(r)
	}
	return err
}

func (s *screen) resize(w, h int) error {
	if w == s.fb.W && h == s.fb.H {
		return nil
	}
	if err := s.setSize(w, h); err != nil {
		return err
	}
	s.sink.resize(w, h)
	return nil
}

// readPixels reads n PIXELs and converts them into s.line.
func (s *screen) readPixels(t *tee, n int) ([]uint32, error) {
	bpp := s.pf.bytesPP()
	b, err := t.next(n * bpp)
	if err != nil {
		return nil, err
	}
	return s.convert(b, n, bpp), nil
}

func (s *screen) convert(b []byte, n, bpp int) []uint32 {
	if cap(s.line) < n {
		s.line = make([]uint32, n)
	}
	out := s.line[:n]
	if s.conv.fast && bpp == 4 && !s.pf.BigEndian {
		rs, gs, bs := s.pf.RedShift, s.pf.GreenShift, s.pf.BlueShift
		for i := range out {
			v := binary.LittleEndian.Uint32(b[4*i:])
			out[i] = (v>>rs&255)<<16 | (v>>gs&255)<<8 | v>>bs&255
		}
		return out
	}
	for i := range out {
		out[i] = s.conv.rgb(s.pf.pixel(b[i*bpp:]))
	}
	return out
}

func (s *screen) put(r desktop.Rect, px []uint32) {
	for y := 0; y < r.H; y++ {
		copy(s.fb.Pix[(r.Y+y)*s.fb.W+r.X:(r.Y+y)*s.fb.W+r.X+r.W], px[y*r.W:(y+1)*r.W])
	}
}

func (s *screen) fill(r desktop.Rect, c uint32) {
	for y := r.Y; y < r.Y+r.H; y++ {
		row := s.fb.Pix[y*s.fb.W+r.X : y*s.fb.W+r.X+r.W]
		for i := range row {
			row[i] = c
		}
	}
}

func (s *screen) raw(t *tee, r desktop.Rect) error {
	// Row by row, so a large rectangle needs no large buffer.
	for y := 0; y < r.H; y++ {
		px, err := s.readPixels(t, r.W)
		if err != nil {
			return err
		}
		copy(s.fb.Pix[(r.Y+y)*s.fb.W+r.X:], px)
	}
	return nil
}

func (s *screen) onePixel(t *tee) (uint32, error) {
	px, err := s.readPixels(t, 1)
	if err != nil {
		return 0, err
	}
	return px[0], nil
}

func (s *screen) rre(t *tee, r desktop.Rect) error {
	n, err := t.u32()
	if err != nil {
		return err
	}
	if int64(n) > int64(r.W)*int64(r.H) {
		return fmt.Errorf("%d subrectangles in %d pixels", n, r.W*r.H)
	}
	bg, err := s.onePixel(t)
	if err != nil {
		return err
	}
	s.fill(r, bg)
	for i := 0; i < int(n); i++ {
		c, err := s.onePixel(t)
		if err != nil {
			return err
		}
		b, err := t.next(8)
		if err != nil {
			return err
		}
		sr := desktop.Rect{X: int(binary.BigEndian.Uint16(b)), Y: int(binary.BigEndian.Uint16(b[2:])), W: int(binary.BigEndian.Uint16(b[4:])), H: int(binary.BigEndian.Uint16(b[6:]))}
		if !sr.In(r.W, r.H) {
			return errors.New("RRE subrectangle outside its rectangle")
		}
		sr.X += r.X
		sr.Y += r.Y
		s.fill(sr, c)
	}
	return nil
}

// Hextile subencoding bits.
const (
	hexRaw        = 1
	hexBackground = 2
	hexForeground = 4
	hexAnySubrect = 8
	hexColoured   = 16
)

func (s *screen) hextile(t *tee, r desktop.Rect) error {
	var bg, fg uint32
	for ty := r.Y; ty < r.Y+r.H; ty += 16 {
		for tx := r.X; tx < r.X+r.W; tx += 16 {
			tile := desktop.Rect{X: tx, Y: ty, W: min(16, r.X+r.W-tx), H: min(16, r.Y+r.H-ty)}
			sub, err := t.u8()
			if err != nil {
				return err
			}
			if sub&hexRaw != 0 {
				px, err := s.readPixels(t, tile.W*tile.H)
				if err != nil {
					return err
				}
				s.put(tile, px)
				continue
			}
			if sub&hexBackground != 0 {
				if bg, err = s.onePixel(t); err != nil {
					return err
				}
			}
			s.fill(tile, bg)
			if sub&hexForeground != 0 {
				if fg, err = s.onePixel(t); err != nil {
					return err
				}
			}
			if sub&hexAnySubrect == 0 {
				continue
			}
			n, err := t.u8()
			if err != nil {
				return err
			}
			for i := 0; i < int(n); i++ {
				c := fg
				if sub&hexColoured != 0 {
					if c, err = s.onePixel(t); err != nil {
						return err
					}
				}
				b, err := t.next(2)
				if err != nil {
					return err
				}
				sr := desktop.Rect{X: int(b[0] >> 4), Y: int(b[0] & 15), W: int(b[1]>>4) + 1, H: int(b[1]&15) + 1}
				if !sr.In(tile.W, tile.H) {
					return errors.New("hextile subrectangle outside its tile")
				}
				sr.X += tile.X
				sr.Y += tile.Y
				s.fill(sr, c)
			}
		}
	}
	return nil
}

// zrleRect decodes a ZRLE rectangle: its zlib data holds 64×64 tiles.
func (s *screen) zrleRect(t *tee, r desktop.Rect) error {
	l, err := t.u32()
	if err != nil {
		return err
	}
	if l > maxZRLE || int64(l) > 4*int64(r.W)*int64(r.H)+(64<<10) {
		return fmt.Errorf("ZRLE data of %d bytes for %d pixels", l, r.W*r.H)
	}
	b, err := t.next(int(l))
	if err != nil {
		return err
	}
	s.zrle.feed(b)
	z := &s.zrle
	cn, high := s.pf.cpixel()
	if cn == 0 {
		cn = s.pf.bytesPP()
	}
	var palette [128]uint32
	var tile [64 * 64]uint32
	var one [4]byte
	readC := func(dst []uint32) error {
		need := len(dst) * cn
		if cap(s.pix) < need {
			s.pix = make([]byte, need)
		}
		b := s.pix[:need]
		if err := z.full(b); err != nil {
			return err
		}
		s.cpixels(dst, b, cn, high)
		return nil
	}
	for ty := r.Y; ty < r.Y+r.H; ty += 64 {
		for tx := r.X; tx < r.X+r.W; tx += 64 {
			tr := desktop.Rect{X: tx, Y: ty, W: min(64, r.X+r.W-tx), H: min(64, r.Y+r.H-ty)}
			px := tile[:tr.W*tr.H]
			if err := z.full(one[:1]); err != nil {
				return err
			}
			sub := int(one[0])
			switch {
			case sub == 0:
				if err := readC(px); err != nil {
					return err
				}
			case sub == 1:
				if err := readC(palette[:1]); err != nil {
					return err
				}
				for i := range px {
					px[i] = palette[0]
				}
			case sub >= 2 && sub <= 16:
				if err := readC(palette[:sub]); err != nil {
					return err
				}
				bits := 4
				switch {
				case sub == 2:
					bits = 1
				case sub <= 4:
					bits = 2
				}
				rowBytes := (tr.W*bits + 7) / 8
				need := rowBytes * tr.H
				if cap(s.pix) < need {
					s.pix = make([]byte, need)
				}
				b := s.pix[:need]
				if err := z.full(b); err != nil {
					return err
				}
				for y := 0; y < tr.H; y++ {
					row := b[y*rowBytes:]
					for x := 0; x < tr.W; x++ {
						bit := x * bits
						idx := int(row[bit/8]>>(8-bits-bit%8)) & (1<<bits - 1)
						if idx >= sub {
							return errors.New("ZRLE palette index out of range")
						}
						px[y*tr.W+x] = palette[idx]
					}
				}
			case sub == 128 || sub >= 130:
				n := 0
				if sub >= 130 {
					n = sub - 128
					if err := readC(palette[:n]); err != nil {
						return err
					}
				}
				for i := 0; i < len(px); {
					var c uint32
					run := 1
					if n == 0 {
						var cc [1]uint32
						if err := readC(cc[:]); err != nil {
							return err
						}
						c = cc[0]
						if run, err = zrleRun(z); err != nil {
							return err
						}
					} else {
						if err := z.full(one[:1]); err != nil {
							return err
						}
						idx := int(one[0] & 127)
						if idx >= n {
							return errors.New("ZRLE palette index out of range")
						}
						c = palette[idx]
						if one[0]&128 != 0 {
							if run, err = zrleRun(z); err != nil {
								return err
							}
						}
					}
					if run > len(px)-i {
						return errors.New("ZRLE run longer than its tile")
					}
					for k := 0; k < run; k++ {
						px[i+k] = c
					}
					i += run
				}
			default:
				return fmt.Errorf("ZRLE tile subencoding %d", sub)
			}
			s.put(tr, px)
		}
	}
	return nil
}

// zrleRun reads a run length: bytes summed while they are 255, plus one.
func zrleRun(z *zstream) (int, error) {
	var b [1]byte
	n := 1
	for {
		if err := z.full(b[:]); err != nil {
			return 0, err
		}
		n += int(b[0])
		if b[0] != 255 {
			return n, nil
		}
		if n > 64*64 {
			return 0, errors.New("ZRLE run longer than a tile")
		}
	}
}

// cpixels converts CPIXELs (cn bytes each) from b into dst.
func (s *screen) cpixels(dst []uint32, b []byte, cn int, high bool) {
	if cn != 3 {
		for i := range dst {
			dst[i] = s.conv.rgb(s.pf.pixel(b[i*cn:]))
		}
		return
	}
	for i := range dst {
		p := b[3*i:]
		var v uint32
		switch {
		case s.pf.BigEndian && !high:
			v = uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
		case s.pf.BigEndian && high:
			v = uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8
		case !high:
			v = uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
		default:
			v = uint32(p[0])<<8 | uint32(p[1])<<16 | uint32(p[2])<<24
		}
		dst[i] = s.conv.rgb(v)
	}
}

// Tight compression-control types (high four bits).
const (
	tightFill = 8
	tightJPEG = 9
)

// tightRect decodes a Tight rectangle.
func (s *screen) tightRect(t *tee, r desktop.Rect) error {
	ctl, err := t.u8()
	if err != nil {
		return err
	}
	for i := range 4 {
		if ctl&(1<<i) != 0 {
			s.tight[i].reset()
		}
	}
	kind := ctl >> 4
	tp := s.pf.tight()
	psize := s.pf.bytesPP()
	if tp {
		psize = 3
	}
	readT := func(dst []uint32, b []byte) {
		if tp {
			for i := range dst {
				dst[i] = uint32(b[3*i])<<16 | uint32(b[3*i+1])<<8 | uint32(b[3*i+2])
			}
			return
		}
		for i := range dst {
			dst[i] = s.conv.rgb(s.pf.pixel(b[i*psize:]))
		}
	}
	switch {
	case kind == tightFill:
		b, err := t.next(psize)
		if err != nil {
			return err
		}
		var c [1]uint32
		readT(c[:], b)
		s.fill(r, c[0])
		return nil
	case kind == tightJPEG:
		n, err := compactLen(t)
		if err != nil {
			return err
		}
		b, err := t.next(n)
		if err != nil {
			return err
		}
		return s.jpeg(r, b)
	case kind > tightJPEG:
		return fmt.Errorf("Tight compression type %d", kind)
	}
	stream := &s.tight[kind&3]
	filter := byte(0)
	if kind&4 != 0 {
		if filter, err = t.u8(); err != nil {
			return err
		}
	}
	var palette [256]uint32
	ncol := 0
	var dataLen int
	switch filter {
	case 0, 2: // copy, gradient
		dataLen = r.W * r.H * psize
	case 1:
		n, err := t.u8()
		if err != nil {
			return err
		}
		ncol = int(n) + 1
		b, err := t.next(ncol * psize)
		if err != nil {
			return err
		}
		readT(palette[:ncol], b)
		if ncol == 2 {
			dataLen = (r.W + 7) / 8 * r.H
		} else {
			dataLen = r.W * r.H
		}
	default:
		return fmt.Errorf("Tight filter %d", filter)
	}
	var data []byte
	if dataLen < 12 {
		b, err := t.next(dataLen)
		if err != nil {
			return err
		}
		data = append(s.pix[:0], b...)
	} else {
		n, err := compactLen(t)
		if err != nil {
			return err
		}
		b, err := t.next(n)
		if err != nil {
			return err
		}
		stream.feed(b)
		if cap(s.pix) < dataLen {
			s.pix = make([]byte, dataLen)
		}
		data = s.pix[:dataLen]
		if err := stream.full(data); err != nil {
			return err
		}
	}
	s.pix = data[:0]
	if cap(s.line) < r.W*r.H {
		s.line = make([]uint32, r.W*r.H)
	}
	px := s.line[:r.W*r.H]
	switch filter {
	case 0:
		readT(px, data)
	case 1:
		if ncol == 2 {
			rowBytes := (r.W + 7) / 8
			for y := 0; y < r.H; y++ {
				for x := 0; x < r.W; x++ {
					px[y*r.W+x] = palette[data[y*rowBytes+x/8]>>(7-x%8)&1]
				}
			}
		} else {
			for i, idx := range data {
				if int(idx) >= ncol {
					return errors.New("Tight palette index out of range")
				}
				px[i] = palette[idx]
			}
		}
	case 2:
		s.gradient(px, data, r.W, r.H, tp, psize)
	}
	s.put(r, px)
	return nil
}

// gradient undoes Tight's gradient filter: each channel is predicted as
// left + above - above-left (clamped) and the data is the difference.
func (s *screen) gradient(px []uint32, data []byte, w, h int, tp bool, psize int) {
	type chans [3]int
	maxv := chans{255, 255, 255}
	split := func(v uint32) chans { return chans{int(v >> 16 & 255), int(v >> 8 & 255), int(v & 255)} }
	if !tp {
		maxv = chans{int(s.pf.RedMax), int(s.pf.GreenMax), int(s.pf.BlueMax)}
		split = func(v uint32) chans {
			return chans{int(v >> s.pf.RedShift & uint32(s.pf.RedMax)), int(v >> s.pf.GreenShift & uint32(s.pf.GreenMax)), int(v >> s.pf.BlueShift & uint32(s.pf.BlueMax))}
		}
	}
	raw := func(i int) uint32 {
		if tp {
			return uint32(data[3*i])<<16 | uint32(data[3*i+1])<<8 | uint32(data[3*i+2])
		}
		return s.pf.pixel(data[i*psize:])
	}
	prev := make([]chans, w) // the row above, as channel values
	cur := make([]chans, w)
	for y := 0; y < h; y++ {
		var left, upLeft chans
		for x := 0; x < w; x++ {
			d := split(raw(y*w + x))
			var v chans
			for c := range 3 {
				p := left[c] + prev[x][c] - upLeft[c]
				p = max(0, min(p, maxv[c]))
				v[c] = (p + d[c]) & maxv[c]
			}
			cur[x] = v
			upLeft = prev[x]
			left = v
			if tp {
				px[y*w+x] = uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2])
			} else {
				px[y*w+x] = s.conv.rgb(uint32(v[0])<<s.pf.RedShift | uint32(v[1])<<s.pf.GreenShift | uint32(v[2])<<s.pf.BlueShift)
			}
		}
		prev, cur = cur, prev
	}
}

// compactLen reads Tight's 1-3 byte length.
func compactLen(t *tee) (int, error) {
	n := 0
	for i := 0; i < 3; i++ {
		b, err := t.u8()
		if err != nil {
			return 0, err
		}
		if i == 2 {
			n |= int(b) << 14
			break
		}
		n |= int(b&127) << (7 * i)
		if b&128 == 0 {
			break
		}
	}
	return n, nil
}

func (s *screen) jpeg(r desktop.Rect, b []byte) error {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("JPEG: %w", err)
	}
	if cfg.Width != r.W || cfg.Height != r.H {
		return fmt.Errorf("JPEG of %dx%d in a %dx%d rectangle", cfg.Width, cfg.Height, r.W, r.H)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("JPEG: %w", err)
	}
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < r.H; y++ {
			row := s.fb.Pix[(r.Y+y)*s.fb.W+r.X:]
			for x := 0; x < r.W; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				R, G, B := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				row[x] = uint32(R)<<16 | uint32(G)<<8 | uint32(B)
			}
		}
	default:
		for y := 0; y < r.H; y++ {
			for x := 0; x < r.W; x++ {
				R, G, B, _ := img.At(x, y).RGBA()
				s.fb.Pix[(r.Y+y)*s.fb.W+r.X+x] = (R>>8)<<16 | (G>>8)<<8 | B>>8
			}
		}
	}
	return nil
}

// richCursor decodes the Cursor pseudo-encoding: pixels, then a bitmask.
func (s *screen) richCursor(t *tee, r desktop.Rect) error {
	if r.W > maxCursor || r.H > maxCursor {
		return fmt.Errorf("cursor of %dx%d", r.W, r.H)
	}
	n := r.W * r.H
	bpp := s.pf.bytesPP()
	b, err := t.next(n*bpp + (r.W+7)/8*r.H)
	if err != nil {
		return err
	}
	c := &desktop.Cursor{W: r.W, H: r.H, HotX: min(r.X, max(r.W-1, 0)), HotY: min(r.Y, max(r.H-1, 0)), Pix: make([]uint32, n)}
	mask := b[n*bpp:]
	rowBytes := (r.W + 7) / 8
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			i := y*r.W + x
			v := s.conv.rgb(s.pf.pixel(b[i*bpp:]))
			if mask[y*rowBytes+x/8]>>(7-x%8)&1 != 0 {
				v |= 0xFF000000
			} else {
				v = 0
			}
			c.Pix[i] = v
		}
	}
	s.sink.cursor(c)
	return nil
}

// xCursor decodes the XCursor pseudo-encoding: two colours, a bitmap and
// a mask.
func (s *screen) xCursor(t *tee, r desktop.Rect) error {
	if r.W > maxCursor || r.H > maxCursor {
		return fmt.Errorf("cursor of %dx%d", r.W, r.H)
	}
	c := &desktop.Cursor{W: r.W, H: r.H, HotX: min(r.X, max(r.W-1, 0)), HotY: min(r.Y, max(r.H-1, 0))}
	if r.W*r.H == 0 {
		s.sink.cursor(c)
		return nil
	}
	rowBytes := (r.W + 7) / 8
	b, err := t.next(6 + 2*rowBytes*r.H)
	if err != nil {
		return err
	}
	fg := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	bg := uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
	bits, mask := b[6:6+rowBytes*r.H], b[6+rowBytes*r.H:]
	c.Pix = make([]uint32, r.W*r.H)
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			k := y*rowBytes + x/8
			sh := 7 - x%8
			if mask[k]>>sh&1 == 0 {
				continue
			}
			v := bg
			if bits[k]>>sh&1 != 0 {
				v = fg
			}
			c.Pix[y*r.W+x] = v | 0xFF000000
		}
	}
	s.sink.cursor(c)
	return nil
}
