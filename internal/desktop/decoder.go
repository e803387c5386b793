package desktop

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// ErrTruncated is returned by Decoder.Next after the last complete record
// when the recording ends with part of a record: a live recording, or one
// cut by a crash. What came before is valid.
var ErrTruncated = errors.New("desktop: recording ends inside a record")

// A Record is one decoded record. Which fields are set depends on Type.
type Record struct {
	Type byte
	T    time.Duration // since the start
	Off  int64         // offset of the record's line in the recording

	Rect       Rect   // Keyframe (whole screen), Region, Copy (destination), Resize (size)
	SrcX, SrcY int    // Copy
	X, Y       int    // Pointer
	Buttons    uint8  // Pointer
	Down       bool   // Key
	Sym        uint32 // Key
	FromServer bool   // Clipboard
	Text       []byte // Clipboard

	enc  byte
	data []byte // compressed pixels (Keyframe, Region, Cursor)
	hotX int
	hotY int
}

// A Decoder reads a recording record by record.
type Decoder struct {
	br     *bufio.Reader
	h      Header
	off    int64
	raw    []byte
	line   []byte
	maxLen int
}

// NewDecoder reads the header from r.
func NewDecoder(r io.Reader) (*Decoder, error) {
	d := &Decoder{br: bufio.NewReaderSize(r, 64<<10), maxLen: MaxLine}
	line, err := d.readLine(1 << 20)
	if err != nil {
		if err == io.EOF || err == ErrTruncated {
			return nil, fmt.Errorf("desktop: no header: %w", ErrTruncated)
		}
		return nil, err
	}
	d.h, err = ParseHeader(line)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Header returns the recording's header.
func (d *Decoder) Header() Header { return d.h }

// Offset returns the offset of the next record's line.
func (d *Decoder) Offset() int64 { return d.off }

// readLine returns the next line without its newline.
func (d *Decoder) readLine(max int) ([]byte, error) {
	d.line = d.line[:0]
	for {
		chunk, err := d.br.ReadSlice('\n')
		d.line = append(d.line, chunk...)
		if len(d.line) > max+1 {
			return nil, fmt.Errorf("desktop: line at offset %d longer than %d bytes", d.off, max)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(d.line) > 0 {
				return nil, ErrTruncated
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		d.off += int64(len(d.line))
		return d.line[:len(d.line)-1], nil
	}
}

// Next returns the next record: io.EOF after the last one, ErrTruncated
// if the recording ends inside one. The record's slices are valid until
// the next call.
func (d *Decoder) Next() (Record, error) {
	off := d.off
	line, err := d.readLine(d.maxLen)
	if err != nil {
		return Record{}, err
	}
	d.raw, err = unescape(d.raw[:0], line)
	if err != nil {
		return Record{}, fmt.Errorf("%w at offset %d", err, off)
	}
	rec, err := parseRecord(d.raw)
	if err != nil {
		return Record{}, fmt.Errorf("%w (record at offset %d)", err, off)
	}
	rec.Off = off
	return rec, nil
}

// parseRecord parses an unescaped record, CRC included.
func parseRecord(raw []byte) (Record, error) {
	var rec Record
	if len(raw) < 6 {
		return rec, errors.New("desktop: record too short")
	}
	body, sum := raw[:len(raw)-4], binary.BigEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return rec, errors.New("desktop: record checksum mismatch")
	}
	p := parser{b: body[1:]}
	rec.Type = body[0]
	rec.T = time.Duration(p.uvarint()) * time.Microsecond
	switch rec.Type {
	case TypeKeyframe:
		rec.Rect = Rect{0, 0, p.int(), p.int()}
		p.pixels(&rec)
	case TypeRegion:
		rec.Rect = Rect{p.int(), p.int(), p.int(), p.int()}
		p.pixels(&rec)
	case TypeCopy:
		rec.SrcX, rec.SrcY = p.int(), p.int()
		rec.Rect = Rect{p.int(), p.int(), p.int(), p.int()}
	case TypeResize:
		rec.Rect = Rect{0, 0, p.int(), p.int()}
	case TypePointer:
		rec.X, rec.Y = p.int(), p.int()
		rec.Buttons = p.byte()
	case TypeCursor:
		rec.hotX, rec.hotY = p.int(), p.int()
		rec.Rect = Rect{0, 0, p.int(), p.int()}
		p.pixels(&rec)
	case TypeKey:
		rec.Down = p.byte() == 1
		rec.Sym = p.u32()
	case TypeClipboard:
		rec.FromServer = p.byte() == 1
		rec.Text = p.rest()
	default:
		return rec, fmt.Errorf("desktop: unknown record type 0x%02x", rec.Type)
	}
	if p.err != nil {
		return rec, fmt.Errorf("desktop: record %q: %w", rec.Type, p.err)
	}
	if rec.Type != TypePointer && rec.Type != TypeKey && rec.Type != TypeClipboard {
		if err := checkRect(&rec); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

func checkRect(rec *Record) error {
	r := rec.Rect
	lim := MaxSide
	if rec.Type == TypeCursor {
		lim = MaxCursor
	}
	if r.X > MaxSide || r.Y > MaxSide || r.W > lim || r.H > lim || r.W*r.H > MaxPixels ||
		rec.SrcX > MaxSide || rec.SrcY > MaxSide {
		return fmt.Errorf("desktop: record %q: rectangle %v too large", rec.Type, r)
	}
	return nil
}

type parser struct {
	b   []byte
	err error
}

var errShort = errors.New("record too short")

func (p *parser) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.err = errShort
		return 0
	}
	p.b = p.b[n:]
	return v
}

// int reads a uvarint that must fit a screen coordinate.
func (p *parser) int() int {
	v := p.uvarint()
	if v > 1<<20 {
		if p.err == nil {
			p.err = fmt.Errorf("value %d out of range", v)
		}
		return 0
	}
	return int(v)
}

func (p *parser) byte() byte {
	if p.err != nil || len(p.b) < 1 {
		p.err = cmpErr(p.err, errShort)
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *parser) u32() uint32 {
	if p.err != nil || len(p.b) < 4 {
		p.err = cmpErr(p.err, errShort)
		return 0
	}
	v := binary.BigEndian.Uint32(p.b)
	p.b = p.b[4:]
	return v
}

func (p *parser) rest() []byte {
	b := p.b
	p.b = nil
	return b
}

func (p *parser) pixels(rec *Record) {
	rec.enc = p.byte()
	rec.data = p.rest()
	want := byte(PixDeflateRGB)
	if rec.Type == TypeCursor {
		want = PixDeflateRGBA
	}
	if p.err == nil && rec.enc != want {
		p.err = fmt.Errorf("unknown pixel encoding %d", rec.enc)
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// inflate decompresses a record's pixel block into dst, which must be
// exactly the size the record's rectangle implies.
func inflate(dst, data []byte) error {
	zr := flate.NewReader(bytes.NewReader(data))
	defer zr.Close()
	if _, err := io.ReadFull(zr, dst); err != nil {
		return fmt.Errorf("desktop: pixels: %w", err)
	}
	var one [1]byte
	if n, _ := zr.Read(one[:]); n != 0 {
		return errors.New("desktop: pixels: more data than the rectangle holds")
	}
	return nil
}
