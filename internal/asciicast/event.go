package asciicast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// Event codes.
const (
	Output = "o" // data written to the terminal
	Input  = "i" // data typed by the user
	Marker = "m" // a marker; data is its label
	Resize = "r" // terminal resized; data is "COLSxROWS" (see ParseResize)
	Exit   = "x" // session ended (asciicast v3); data is the exit status
)

// Event is one event line: [time, code, data]. Time is in seconds since the
// start of the recording.
type Event struct {
	Time float64
	Code string
	Data string
}

// MarshalJSON writes the event as AppendEvent does. A NaN or infinite time is
// an error.
func (e Event) MarshalJSON() ([]byte, error) {
	if math.IsNaN(e.Time) || math.IsInf(e.Time, 0) {
		return nil, fmt.Errorf("asciicast: event time %v is not a finite number", e.Time)
	}
	return AppendEvent(nil, e), nil
}

// UnmarshalJSON reads a JSON array [time, code, data]. Strings with invalid
// UTF-8 are accepted; each bad byte becomes U+FFFD, as encoding/json does.
func (e *Event) UnmarshalJSON(b []byte) error {
	if bytes.IndexByte(b, '\n') >= 0 && json.Valid(b) {
		// Newlines between the parts, as in indented JSON. (In a valid
		// value they cannot be inside strings.)
		b = bytes.ReplaceAll(b, []byte{'\n'}, []byte{' '})
	}
	sp, ok := scanLine(b, false)
	var ev Event
	if ok {
		ev, ok = sp.event(b)
	}
	if !ok {
		var m lineMachine
		m.reset(nil, false, true)
		m.feed(b)
		m.eol()
		if m.problem == nil { // cannot happen: the two scanners agree
			return errors.New("asciicast: event is not [time, code, data]")
		}
		return fmt.Errorf("asciicast: %w", m.problem)
	}
	*e = ev
	return nil
}

// AppendEvent appends the event line [time,code,data] to dst, without a
// newline, and returns the extended slice. It does not allocate when dst has
// room.
//
// Time is rounded to the nearest microsecond (ties to even) and written in
// the shortest form: 1.5, 2, 12.345678; never with an exponent. A NaN or
// infinite time is written as 0 (Encoder and MarshalJSON refuse them).
// Strings are escaped as JSON requires; invalid UTF-8 becomes U+FFFD, so the
// line is always valid UTF-8.
func AppendEvent(dst []byte, e Event) []byte {
	dst = append(dst, '[')
	dst = appendTime(dst, e.Time)
	dst = append(dst, ',')
	dst = appendString(dst, e.Code)
	dst = append(dst, ',')
	dst = appendString(dst, e.Data)
	return append(dst, ']')
}

// appendTime appends t rounded to six decimals, trailing zeros dropped.
func appendTime(dst []byte, t float64) []byte {
	if math.IsNaN(t) || math.IsInf(t, 0) {
		return append(dst, '0')
	}
	neg := t < 0
	if neg {
		t = -t
	}
	us, ok := microseconds(t)
	if !ok {
		// Rare: huge times. strconv is exact but slow for fixed precision.
		var buf [64]byte
		b := strconv.AppendFloat(buf[:0], t, 'f', 6, 64)
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
		if neg {
			dst = append(dst, '-')
		}
		return append(dst, b...)
	}
	if us == 0 {
		return append(dst, '0')
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, us/1e6, 10)
	if f := us % 1e6; f != 0 {
		var d [7]byte
		d[0] = '.'
		for i := 6; i >= 1; i-- {
			d[i] = byte('0' + f%10)
			f /= 10
		}
		n := 7
		for d[n-1] == '0' {
			n--
		}
		dst = append(dst, d[:n]...)
	}
	return dst
}

// microseconds returns t×10⁶ rounded to the nearest integer, ties to even,
// computed exactly from t's binary value (the rounding strconv's 'f' format
// with precision 6 does). ok is false for t ≥ 2³³, left to strconv.
func microseconds(t float64) (us uint64, ok bool) {
	if !(t >= 0 && t < 1<<33) {
		return 0, false
	}
	b := math.Float64bits(t)
	exp := int(b>>52) & 0x7ff
	if exp == 0 {
		return 0, true // zero or subnormal: far below half a microsecond
	}
	mant := b&(1<<52-1) | 1<<52
	// t×10⁶ = mant × 2^(exp-1075) × 2⁶ × 5⁶ = (mant×15625) / 2^shift.
	shift := uint(1075 - 6 - exp) // ≥ 14 because t < 2³³
	if shift >= 68 {
		return 0, true // mant×15625 < 2⁶⁷: less than half
	}
	hi, lo := bits.Mul64(mant, 15625)
	var q uint64
	var cmp int // remainder compared with half
	if shift < 64 {
		q = lo>>shift | hi<<(64-shift)
		rem, half := lo&(1<<shift-1), uint64(1)<<(shift-1)
		cmp = compare(rem, half)
	} else {
		q = hi >> (shift - 64)
		if shift == 64 {
			cmp = compare(lo, 1<<63)
		} else {
			remHi, halfHi := hi&(1<<(shift-64)-1), uint64(1)<<(shift-65)
			cmp = compare(remHi, halfHi)
			if cmp == 0 && lo != 0 {
				cmp = 1
			}
		}
	}
	if cmp > 0 || cmp == 0 && q&1 == 1 {
		q++
	}
	return q, true
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// safeASCII marks the bytes a JSON string holds as they are.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes \ufffd;
// U+2028 and U+2029 are escaped as encoding/json does. '<', '>' and '&' are
// not escaped: terminal output is full of them.
//
// Plain ASCII, most of any terminal output, is skipped eight bytes at a
// time with specialMask, as the Checker scans strings; the byte the mask
// stops at, and the last few bytes of s, are looked at one by one.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			m := specialMask(load64(s, i))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3 // the lowest set bit is exact
		}
		c := s[i]
		if safeASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// load64 returns the eight bytes of s from i on as a little-endian word
// (the compiler makes this one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// ParseResize parses the data of a resize event. asciicast writes
// "COLSxROWS"; Tailscale's Kubernetes recorder writes "HEIGHTxWIDTH", so for
// a recording whose header IsKubernetes, pass kubernetes true and the two
// numbers are swapped. Each number must be between 1 and 65535, in decimal
// digits only.
func ParseResize(data string, kubernetes bool) (cols, rows int, err error) {
	a, b, err := parseSize(data)
	if err != nil {
		want := "COLSxROWS"
		if kubernetes {
			want = "ROWSxCOLS"
		}
		return 0, 0, fmt.Errorf("asciicast: resize %q: want %s: %w", data, want, err)
	}
	if kubernetes {
		return b, a, nil
	}
	return a, b, nil
}

func parseSize(s string) (a, b int, err error) {
	a, n, err := parseDim(s)
	if err != nil {
		return 0, 0, err
	}
	if n == len(s) || s[n] != 'x' {
		return 0, 0, errors.New("no 'x' after the first number")
	}
	b, m, err := parseDim(s[n+1:])
	if err != nil {
		return 0, 0, err
	}
	if n+1+m != len(s) {
		return 0, 0, fmt.Errorf("unexpected %q after the second number", s[n+1+m:])
	}
	return a, b, nil
}

// parseDim reads the decimal number at the start of s and returns it with
// the count of bytes read.
func parseDim(s string) (v, n int, err error) {
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		if v = v*10 + int(s[n]-'0'); v > 65535 {
			return 0, 0, errors.New("size over 65535")
		}
		n++
	}
	switch {
	case n == 0:
		return 0, 0, errors.New("missing number")
	case v == 0:
		return 0, 0, errors.New("size 0")
	}
	return v, n, nil
}
