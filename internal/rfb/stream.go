package rfb

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// tee reads an RFB stream and passes every byte it reads on to w (the
// other side of the proxy), unchanged. Reads are exact: it never asks the
// connection for more than the protocol says comes next.
type tee struct {
	br  *bufio.Reader
	w   io.Writer // nil: nothing is passed on
	buf []byte    // scratch for reads
	// n counts the bytes read, for the benchmark's throughput figure.
	n int64
}

func newTee(r io.Reader, w io.Writer) *tee {
	return &tee{br: bufio.NewReaderSize(r, 64<<10), w: w}
}

// full reads exactly len(p) bytes into p and passes them on.
func (t *tee) full(p []byte) error {
	if _, err := io.ReadFull(t.br, p); err != nil {
		return err
	}
	t.n += int64(len(p))
	if t.w != nil {
		if _, err := t.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// next reads n bytes into the scratch buffer and returns them; they are
// valid until the next call.
func (t *tee) next(n int) ([]byte, error) {
	if cap(t.buf) < n {
		t.buf = make([]byte, n)
	}
	b := t.buf[:n]
	return b, t.full(b)
}

func (t *tee) u8() (uint8, error) {
	b, err := t.next(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (t *tee) u16() (uint16, error) {
	b, err := t.next(2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (t *tee) u32() (uint32, error) {
	b, err := t.next(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// skip reads and passes on n bytes without keeping them.
func (t *tee) skip(n int) error {
	for n > 0 {
		k := min(n, 32<<10)
		if _, err := t.next(k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// zstream is one of the connection's persistent zlib streams (ZRLE has
// one, Tight four). The server sends each rectangle's part of the stream
// ending with a flush, so the part decompresses on its own; feed appends
// it and reads take exactly what the rectangle needs, never more, so the
// decompressor never runs past the data it has.
type zstream struct {
	q  byteQueue
	zr io.ReadCloser
}

func (z *zstream) reset() {
	z.q = byteQueue{}
	z.zr = nil
}

// feed appends compressed data.
func (z *zstream) feed(p []byte) {
	z.q.add(p)
}

// Read reads decompressed bytes.
func (z *zstream) Read(p []byte) (int, error) {
	if z.zr == nil {
		zr, err := zlib.NewReader(&z.q)
		if err != nil {
			return 0, fmt.Errorf("rfb: zlib stream: %w", err)
		}
		z.zr = zr
	}
	n, err := z.zr.Read(p)
	if err == io.EOF {
		err = errors.New("rfb: zlib stream ended")
	}
	return n, err
}

// full reads exactly len(p) decompressed bytes.
func (z *zstream) full(p []byte) error {
	_, err := io.ReadFull(z, p)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return errors.New("rfb: compressed data shorter than the rectangle needs")
	}
	return err
}

// byteQueue is the compressed input of a zstream: an io.ByteReader, so
// the decompressor reads byte by byte and never ahead.
type byteQueue struct {
	b   []byte
	off int
}

func (q *byteQueue) add(p []byte) {
	if q.off > 0 && q.off == len(q.b) {
		q.b, q.off = q.b[:0], 0
	} else if q.off > 64<<10 {
		q.b = append(q.b[:0], q.b[q.off:]...)
		q.off = 0
	}
	q.b = append(q.b, p...)
}

func (q *byteQueue) Read(p []byte) (int, error) {
	if q.off == len(q.b) {
		return 0, io.EOF
	}
	n := copy(p, q.b[q.off:])
	q.off += n
	return n, nil
}

func (q *byteQueue) ReadByte() (byte, error) {
	if q.off == len(q.b) {
		return 0, io.EOF
	}
	c := q.b[q.off]
	q.off++
	return c, nil
}
