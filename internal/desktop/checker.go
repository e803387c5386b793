package desktop

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// A Checker checks a desktop recording as it streams by, without holding
// it: the header, each record's escapes, CRC, type and time. The recorder
// uses it to flag malformed uploads (they are still stored). It keeps a
// few dozen bytes of state whatever the record sizes.
type Checker struct {
	lines   int64
	hdr     []byte
	inHdr   bool
	started bool
	problem error

	// The record being checked.
	n       int64   // unescaped bytes so far
	escaped bool    // the previous byte was esc
	crc     uint32  // over the unescaped bytes, but the last four
	tail    [4]byte // the last four unescaped bytes (the CRC, at the end)
	head    [12]byte
	lastT   time.Duration
}

// Write checks p. It always returns len(p), nil: problems are reported by
// Problem and Finish.
func (c *Checker) Write(p []byte) (int, error) {
	n := len(p)
	if !c.started {
		c.started, c.inHdr = true, true
	}
	for len(p) > 0 && c.problem == nil {
		if c.inHdr {
			i := indexNL(p)
			if i < 0 {
				c.hdr = append(c.hdr, p...)
				if len(c.hdr) > 1<<20 {
					c.fail(fmt.Errorf("desktop: header longer than 1 MiB"))
				}
				return n, nil
			}
			c.hdr = append(c.hdr, p[:i]...)
			if _, err := ParseHeader(c.hdr); err != nil {
				c.fail(err)
			}
			c.hdr, c.inHdr = nil, false
			c.lines++
			p = p[i+1:]
			continue
		}
		b := p[0]
		p = p[1:]
		if b == newline {
			if c.escaped {
				c.fail(errBadEscape)
				break
			}
			c.endRecord()
			continue
		}
		if c.escaped {
			c.escaped = false
			switch b {
			case escNL:
				b = newline
			case escEsc:
				b = esc
			default:
				c.fail(errBadEscape)
				continue
			}
		} else if b == esc {
			c.escaped = true
			continue
		}
		c.add(b)
	}
	return n, nil
}

func indexNL(p []byte) int {
	for i, b := range p {
		if b == newline {
			return i
		}
	}
	return -1
}

// add takes one unescaped byte of the record.
func (c *Checker) add(b byte) {
	if c.n < int64(len(c.head)) {
		c.head[c.n] = b
	}
	if c.n >= 4 {
		c.crc = crc32.Update(c.crc, castagnoli, c.tail[:1])
	}
	copy(c.tail[:], c.tail[1:])
	c.tail[3] = b
	c.n++
	if c.n > MaxLine {
		c.fail(fmt.Errorf("desktop: record %d longer than %d bytes", c.lines+1, MaxLine))
	}
}

func (c *Checker) endRecord() {
	c.lines++
	defer func() { c.n, c.crc, c.escaped = 0, 0, false }()
	if c.n < 6 {
		c.fail(fmt.Errorf("desktop: line %d: record too short", c.lines))
		return
	}
	if binary.BigEndian.Uint32(c.tail[:]) != c.crc {
		c.fail(fmt.Errorf("desktop: line %d: record checksum mismatch", c.lines))
		return
	}
	switch c.head[0] {
	case TypeKeyframe, TypeRegion, TypeCopy, TypeResize, TypePointer, TypeCursor, TypeKey, TypeClipboard:
	default:
		c.fail(fmt.Errorf("desktop: line %d: unknown record type 0x%02x", c.lines, c.head[0]))
		return
	}
	v, k := binary.Uvarint(c.head[1:min(int(c.n), len(c.head))])
	if k <= 0 {
		c.fail(fmt.Errorf("desktop: line %d: bad time", c.lines))
		return
	}
	t := time.Duration(v) * time.Microsecond
	if t < c.lastT {
		c.fail(fmt.Errorf("desktop: line %d: time goes back from %v to %v", c.lines, c.lastT, t))
		return
	}
	c.lastT = t
}

func (c *Checker) fail(err error) {
	if c.problem == nil {
		c.problem = err
	}
}

// Problem returns the first problem found so far, or nil.
func (c *Checker) Problem() error { return c.problem }

// Finish reports the first problem of a finished upload: those found so
// far, no header, or a last record without its newline.
func (c *Checker) Finish() error {
	switch {
	case c.problem != nil:
		return c.problem
	case !c.started || c.inHdr:
		return fmt.Errorf("desktop: no complete header")
	case c.n > 0 || c.escaped:
		return fmt.Errorf("desktop: the last record (line %d) is incomplete", c.lines+1)
	}
	return nil
}
