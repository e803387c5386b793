package rfb

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
)

// Pixel formats the fuzzers and tests decode with.
var (
	pfRGB888   = PixelFormat{BPP: 32, Depth: 24, TrueColour: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 16, GreenShift: 8, BlueShift: 0}
	pfBGR888BE = PixelFormat{BPP: 32, Depth: 24, BigEndian: true, TrueColour: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 0, GreenShift: 8, BlueShift: 16}
	pfRGB565   = PixelFormat{BPP: 16, Depth: 16, TrueColour: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5, BlueShift: 0}
	pfBGR233   = PixelFormat{BPP: 8, Depth: 8, TrueColour: true, RedMax: 7, GreenMax: 7, BlueMax: 3, RedShift: 0, GreenShift: 3, BlueShift: 6}
	pfColormap = PixelFormat{BPP: 8, Depth: 8}
)

var fuzzFormats = []PixelFormat{pfRGB888, pfBGR888BE, pfRGB565, pfBGR233, pfColormap}

// countSink counts what the screen reports.
type countSink struct{ regions, copies, resizes, cursors int }

func (s *countSink) region(desktop.Rect)             { s.regions++ }
func (s *countSink) copyRect(int, int, desktop.Rect) { s.copies++ }
func (s *countSink) resize(int, int)                 { s.resizes++ }
func (s *countSink) cursor(*desktop.Cursor)          { s.cursors++ }

// rect is one rectangle header.
func rect(x, y, w, h int, enc int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(x))
	b = binary.BigEndian.AppendUint16(b, uint16(y))
	b = binary.BigEndian.AppendUint16(b, uint16(w))
	b = binary.BigEndian.AppendUint16(b, uint16(h))
	return binary.BigEndian.AppendUint32(b, uint32(enc))
}

func update(rects ...[]byte) []byte {
	b := []byte{0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(rects)))
	for _, r := range rects {
		b = append(b, r...)
	}
	return b
}

func zlibBytes(p []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(p)
	w.Flush()
	return b.Bytes()
}

// seedUpdates are valid updates in every encoding, for a 32×32 RGB888 screen.
func seedUpdates() [][]byte {
	px := func(c uint32) []byte { return binary.LittleEndian.AppendUint32(nil, c) }
	raw := append(rect(0, 0, 2, 2, EncRaw), append(append(px(1), px(2)...), append(px(3), px(4)...)...)...)
	copyr := append(rect(4, 4, 2, 2, EncCopyRect), 0, 0, 0, 0)
	rre := append(rect(0, 0, 8, 8, EncRRE), 0, 0, 0, 1)
	rre = append(append(rre, px(5)...), px(6)...)
	rre = append(rre, 0, 1, 0, 1, 0, 2, 0, 2)
	hex := append(rect(0, 0, 16, 16, EncHextile), hexBackground|hexForeground|hexAnySubrect)
	hex = append(append(hex, px(7)...), px(8)...)
	hex = append(hex, 1, 0x11, 0x22)
	// ZRLE: one 8×8 tile, palette RLE of two colours.
	tile := []byte{130, 1, 2, 3, 4, 5, 6, 0x80, 30, 1}
	tile = append(tile, bytes.Repeat([]byte{0}, 0)...)
	zd := zlibBytes(append([]byte{1, 9, 9, 9}, tile...)[:4])
	zrle := append(rect(0, 0, 8, 8, EncZRLE), binary.BigEndian.AppendUint32(nil, uint32(len(zd)))...)
	zrle = append(zrle, zd...)
	fill := append(rect(0, 0, 32, 32, EncTight), tightFill<<4, 10, 20, 30)
	pal := append(rect(0, 0, 4, 4, EncTight), 0x40, 1, 1, 1, 2, 3, 4, 5, 6)
	pal = append(pal, 0x5a, 0xa5, 0x5a, 0xa5) // 2 colours: 4 rows of 1 byte... (<12: raw)
	cur := append(rect(1, 1, 2, 2, EncCursor), append(append(px(1), px(2)...), append(px(3), px(4)...)...)...)
	cur = append(cur, 0xC0, 0x40)
	size := rect(0, 0, 16, 16, EncDesktopSize)
	return [][]byte{update(raw), update(copyr), update(rre), update(hex), update(zrle), update(fill), update(pal), update(cur), update(size, raw)}
}

// FuzzScreen feeds arbitrary server messages to the decoders (Raw,
// CopyRect, RRE, Hextile, ZRLE, Tight with JPEG, the pseudo-encodings):
// whatever comes, no panic, and memory stays bounded by the screen limit.
func FuzzScreen(f *testing.F) {
	for _, s := range seedUpdates() {
		f.Add(byte(0), s)
	}
	f.Fuzz(func(t *testing.T, pfi byte, data []byte) {
		pf := fuzzFormats[int(pfi)%len(fuzzFormats)]
		sink := &countSink{}
		s, err := newScreen(32, 32, pf, 64*64, sink)
		if err != nil {
			t.Fatal(err)
		}
		s.setColourMap(0, []uint32{1, 2, 3})
		tr := newTee(bytes.NewReader(data), io.Discard)
		for i := 0; i < 8; i++ {
			if _, err := tr.u8(); err != nil {
				return
			}
			if err := s.update(tr); err != nil {
				return
			}
			if s.fb.W*s.fb.H > 64*64 {
				t.Fatalf("screen grew to %dx%d", s.fb.W, s.fb.H)
			}
		}
	})
}

// TestDecodersSeeds checks that the seed updates decode: the fuzz corpus
// starts from valid input.
func TestDecodersSeeds(t *testing.T) {
	for i, u := range seedUpdates() {
		sink := &countSink{}
		s, _ := newScreen(32, 32, pfRGB888, 64*64, sink)
		tr := newTee(bytes.NewReader(u), nil)
		tr.u8()
		if err := s.update(tr); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}

// memConn is a net.Conn reading from r and writing to w.
type memConn struct {
	io.Reader
	io.Writer
	closed atomic.Bool
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.Reader.Read(p)
}
func (c *memConn) Close() error                     { c.closed.Store(true); return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzClientMessages feeds arbitrary client messages to the proxy's
// parser: no panic, and encodings passed on are only supported ones.
func FuzzClientMessages(f *testing.F) {
	f.Add([]byte{2, 0, 0, 3, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0x11, 0, 0, 0, 7, 3, 1, 0, 0, 0, 0, 1, 0, 1, 0})
	f.Add([]byte{5, 1, 0, 10, 0, 20, 4, 1, 0, 0, 0, 0, 0xff, 0x0d, 6, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 248, 0, 0, 0, 0, 0, 0, 0, 1, 9, 251, 0, 1, 0, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var up bytes.Buffer
		s := &Server{}
		var pf atomic.Pointer[PixelFormat]
		err := s.clientToServer(&memConn{Reader: bytes.NewReader(data)}, &memConn{Reader: bytes.NewReader(nil), Writer: &up}, nil, &pf)
		if err == nil {
			t.Fatal("the parser ended without an error")
		}
		// Whatever was passed on must parse again (the filter keeps the
		// message boundaries) and hold only supported encodings.
		out := up.Bytes()
		if bytes.Equal(out, data) {
			return
		}
		var again bytes.Buffer
		s.clientToServer(&memConn{Reader: bytes.NewReader(out)}, &memConn{Writer: &again}, nil, &pf)
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("filtered stream does not parse to itself:\n%x\n%x", out, again.Bytes())
		}
	})
}

// FuzzHandshake feeds arbitrary bytes to both handshakes: as a client to
// the proxy's server side, and as an upstream server to its client side.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte("RFB 003.008\n\x13\x00\x02\x00\x00\x01\x02"))
	f.Add([]byte("RFB 003.008\n\x01\x02" + "0123456789abcdef" + "\x00\x00\x00\x00" + "\x00\x20\x00\x20\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x10\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02hi"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Server{TLSConfig: &tls.Config{}, Auth: denyAll{}, UpstreamPassword: "pw", MaxPixels: 64 * 64}
		s.clientHandshake(&memConn{Reader: bytes.NewReader(data), Writer: io.Discard}, false)
		s.clientHandshake(&memConn{Reader: bytes.NewReader(data), Writer: io.Discard}, true)
		s.upstreamHandshake(&memConn{Reader: bytes.NewReader(data), Writer: io.Discard})
	})
}

type denyAll struct{}

func (denyAll) Authenticate(context.Context, string, string) error { return errors.New("no") }
