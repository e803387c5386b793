package asciicast

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrLineTooLong is wrapped by the errors about a line longer than the limit.
var ErrLineTooLong = errors.New("line too long")

const (
	// defaultMaxLine is the line limit of Checker and Decoder when MaxLine
	// is not set.
	defaultMaxLine = 64 << 20
	// maxHeader bounds the header line the Checker buffers.
	maxHeader = 1 << 20
)

// Checker validates an asciicast v2 stream written to it in chunks of any
// size, as it arrives. It keeps the first problem it finds and counts lines.
//
// Line 1 must be a JSON object with "version": 2, in valid UTF-8, at most
// 1 MiB (the Checker buffers it to parse it). Every later line must be valid
// UTF-8 and exactly a JSON array [time, code, data]: a number and two
// strings, with JSON whitespace allowed around them. The time must be at
// least 0 and not less than the previous event's time, and it must be
// written in at most 64 characters. No line may be empty or longer than
// MaxLine bytes (not counting its newline).
//
// The verdict does not depend on how the stream is cut into writes. Event
// lines are never buffered: a Checker holds a few hundred bytes besides the
// header. A Write that holds whole lines checks them on a fast path that
// does not allocate.
//
// The zero value is ready to use. A Checker is not safe for concurrent use.
type Checker struct {
	// MaxLine is the longest allowed line, in bytes, without its newline.
	// Zero means 64 MiB. The header's limit is the smaller of MaxLine and
	// 1 MiB.
	MaxLine int

	lines     int64  // complete lines
	total     int64  // bytes written
	partial   bool   // the last byte written was not '\n'
	hdr       []byte // line 1 as far as written
	header    Header // line 1, parsed
	hasHeader bool   // header is set
	inLine    bool   // m holds a started event line
	m         lineMachine
	prev      []byte           // time of the last good event, as written
	prevInt   int              // length of its integer part
	prevPlain bool             // it has no sign and no exponent
	prevBuf   [maxTimeLen]byte // holds prev between writes
	problem   error
}

// Write checks p. It always returns len(p), nil: problems are reported by
// Problem and Finish, so a Checker can sit in an io.MultiWriter or an
// io.TeeReader without stopping the copy.
func (c *Checker) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	c.total += int64(n)
	c.partial = p[n-1] != '\n'
	for len(p) > 0 {
		switch {
		case c.problem != nil:
			c.lines += int64(bytes.Count(p, []byte{'\n'}))
			p = nil
		case c.lines == 0:
			p = c.headerBytes(p)
		default:
			p = c.events(p)
		}
	}
	// Within a write prev may point into p; keep it for the next one.
	c.prev = c.prevBuf[:copy(c.prevBuf[:], c.prev)]
	return n, nil
}

// Problem returns the first problem found so far, or nil.
func (c *Checker) Problem() error { return c.problem }

// Finish ends the stream and returns the first problem: one found while
// writing, or else empty input, a header without its newline, or a last line
// without its newline. It returns nil for a valid recording.
func (c *Checker) Finish() error {
	if c.problem == nil {
		switch {
		case c.total == 0:
			c.problem = errors.New("asciicast: empty input")
		case c.lines == 0:
			c.problem = errors.New("asciicast: line 1: header has no newline")
		case c.partial:
			c.problem = fmt.Errorf("asciicast: line %d: partial line at end of input (no newline)", c.lines+1)
		}
	}
	return c.problem
}

// Lines returns the number of complete (newline-terminated) lines seen,
// the header included.
func (c *Checker) Lines() int64 { return c.lines }

// Header returns the header once line 1 is complete and is a JSON object
// that decodes into a Header (whatever its version).
func (c *Checker) Header() (Header, bool) { return c.header, c.hasHeader }

func (c *Checker) maxLine() int {
	if c.MaxLine > 0 {
		return c.MaxLine
	}
	return defaultMaxLine
}

func (c *Checker) fail(line int64, err error) {
	c.problem = fmt.Errorf("asciicast: line %d: %w", line, err)
}

// headerBytes takes bytes of line 1 and returns what follows it.
func (c *Checker) headerBytes(p []byte) []byte {
	i := bytes.IndexByte(p, '\n')
	seg := p
	if i >= 0 {
		seg = p[:i]
	}
	if limit := min(maxHeader, c.maxLine()); len(c.hdr)+len(seg) > limit {
		c.hdr = nil
		c.fail(1, fmt.Errorf("header: %w: more than %d bytes", ErrLineTooLong, limit))
		return p // the caller counts its lines
	}
	c.hdr = append(c.hdr, seg...)
	if i < 0 {
		return nil
	}
	c.lines = 1
	line := c.hdr
	c.hdr = nil
	if !utf8.Valid(line) {
		c.fail(1, errors.New("header: invalid UTF-8"))
		return p[i+1:]
	}
	var h Header
	if err := h.decode(line); err != nil {
		c.fail(1, fmt.Errorf("header: %w", err))
		return p[i+1:]
	}
	c.header, c.hasHeader = h, true
	if h.Version != 2 {
		c.fail(1, fmt.Errorf("header: version %d, want 2", h.Version))
	}
	return p[i+1:]
}

// events checks event lines in p until a problem or the end of p, and
// returns the bytes it has not counted lines in.
func (c *Checker) events(p []byte) []byte {
	maxLen := c.maxLine()
	var sp span
	for len(p) > 0 {
		if !c.inLine {
			// Fast path: a whole good line at the start of p.
			n, ok := scanEvent(p, true, &sp)
			if ok && n < len(p) && n <= maxLen {
				if t := p[sp.time0:sp.time1]; c.timeOK(t, &sp) {
					c.setPrev(t, sp.timeInt, sp.timePlain)
				} else if !c.slowLine(p[:n]) {
					return p
				}
				c.lines++
				p = p[n+1:]
				continue
			}
		}
		i := bytes.IndexByte(p, '\n')
		if !c.inLine && i >= 0 && i <= maxLen {
			// A whole line the fast path rejected: say why.
			if !c.slowLine(p[:i]) {
				return p
			}
			c.lines++
			p = p[i+1:]
			continue
		}
		// Slow path: part of a line, or a line over the limit.
		if !c.inLine {
			c.m.reset(c.prev, true, true)
			c.inLine = true
		}
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if room := maxLen - c.m.col; len(seg) > room {
			c.m.feed(seg[:room])
			if c.m.problem == nil {
				c.fail(c.lines+1, fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, maxLen))
			} else {
				c.fail(c.lines+1, c.m.problem)
			}
			return p
		}
		c.m.feed(seg)
		if c.m.problem != nil {
			c.fail(c.lines+1, c.m.problem)
			return p
		}
		if i < 0 {
			return nil
		}
		c.m.eol()
		if c.m.problem != nil {
			c.fail(c.lines+1, c.m.problem)
			return p[i:]
		}
		c.setPrevText(c.m.time())
		c.inLine = false
		c.lines++
		p = p[i+1:]
	}
	return nil
}

// timeOK reports whether t, the time of a line scanned into sp, may follow
// the previous event's. It is timeProblem(t, prev) == nil, made quick for
// the common case of two plain decimals: with integer parts of the same
// length, byte order is numeric order.
func (c *Checker) timeOK(t []byte, sp *span) bool {
	if sp.timePlain && c.prevPlain {
		if sp.timeInt != c.prevInt {
			if sp.timeInt > c.prevInt {
				return true
			}
		} else if len(t) >= 8 && len(c.prev) >= 8 {
			// Consecutive times mostly differ in their first 8 bytes.
			a, b := binary.BigEndian.Uint64(t), binary.BigEndian.Uint64(c.prev)
			if a != b {
				if a > b {
					return true
				}
			} else if bytes.Compare(t, c.prev) >= 0 {
				return true
			}
		} else if bytes.Compare(t, c.prev) >= 0 {
			return true
		}
	}
	return timeProblem(t, c.prev) == nil
}

// setPrev records the time of a good event. t may point into the caller's
// buffer until Write returns.
func (c *Checker) setPrev(t []byte, intLen int, plain bool) {
	c.prev, c.prevInt, c.prevPlain = t, intLen, plain
}

// setPrevText is setPrev for a time the fast scanner has not seen.
func (c *Checker) setPrevText(t []byte) {
	intLen := 0
	for intLen < len(t) && isDigit(t[intLen]) {
		intLen++
	}
	c.setPrev(c.prevBuf[:copy(c.prevBuf[:], t)], intLen, intLen > 0 && !hasExponent(t))
}

// slowLine runs the line machine over a whole line the fast scanner
// rejected, to say why, and reports whether the line is good after all
// (which would be a bug: the two accept the same lines).
func (c *Checker) slowLine(line []byte) bool {
	c.m.reset(c.prev, true, true)
	c.m.feed(line)
	c.m.eol()
	if c.m.problem != nil {
		c.fail(c.lines+1, c.m.problem)
		return false
	}
	c.setPrevText(c.m.time())
	return true
}
