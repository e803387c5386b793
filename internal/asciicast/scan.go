package asciicast

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the fast scanner for one whole event line. The streaming
// lineMachine (machine.go) accepts exactly the same lines; the scanner only
// says yes or no, and on no the machine is run over the line to say why.

// maxTimeLen bounds the text of an event time, so that the streaming checker
// can carry a number split across writes in a small fixed buffer. Real
// recorders write at most about 25 characters.
const maxTimeLen = 64

// isSpace reports JSON whitespace other than '\n', which ends a line.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// span is the result of scanning an event line: where its parts are.
type span struct {
	time0, time1     int  // the time's text: line[time0:time1]
	timeInt          int  // length of the time's integer part
	timePlain        bool // the time has no sign and no exponent
	code0, code1     int  // code string contents: line[code0:code1]
	data0, data1     int  // data string contents
	codeRaw, dataRaw bool // contents have no escape and are valid UTF-8
}

// event builds the Event of a line scanned into sp. ok is false when the
// time overflows float64.
func (sp *span) event(line []byte) (e Event, ok bool) {
	if e.Time, ok = parseTime(line[sp.time0:sp.time1]); !ok {
		return e, false
	}
	e.Code = stringOf(line[sp.code0:sp.code1], sp.codeRaw)
	e.Data = stringOf(line[sp.data0:sp.data1], sp.dataRaw)
	return e, true
}

// stringOf returns the contents of a scanned JSON string as a Go string.
func stringOf(b []byte, raw bool) string {
	if raw {
		switch string(b) { // common codes without an allocation
		case Output:
			return Output
		case Input:
			return Input
		case Resize:
			return Resize
		case Marker:
			return Marker
		case Exit:
			return Exit
		}
		return string(b)
	}
	return string(unquote(make([]byte, 0, len(b)), b))
}

// scanLine checks that line, which holds no '\n', is exactly a JSON array
// [number, string, string], with JSON whitespace around its parts, and says
// where the parts are. With strictUTF8, invalid UTF-8 in a string fails the
// line. The time's value is not looked at.
func scanLine(line []byte, strictUTF8 bool) (sp span, ok bool) {
	n, ok := scanEvent(line, strictUTF8, &sp)
	return sp, ok && n == len(line)
}

// scanEvent scans the event line that starts s, up to the first '\n' or the
// end of s, into sp and returns where that '\n' is (or len(s)). It accepts
// what scanLine accepts.
func scanEvent(s []byte, strictUTF8 bool, sp *span) (n int, ok bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '[' {
		return 0, false
	}
	i++
	for i < len(s) && isSpace(s[i]) {
		i++
	}

	// The time, by JSON's number grammar.
	sp.time0 = i
	sp.timePlain = true
	if i < len(s) && s[i] == '-' {
		sp.timePlain = false
		i++
	}
	switch {
	case i == len(s):
		return 0, false
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		i = skipDigits(s, i+1)
	default:
		return 0, false
	}
	sp.timeInt = i - sp.time0
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return 0, false
		}
		i = skipDigits(s, i+1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		sp.timePlain = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return 0, false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i-sp.time0 > maxTimeLen {
		return 0, false
	}
	sp.time1 = i

	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != ',' {
		return 0, false
	}
	i++
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '"' {
		return 0, false
	}
	sp.code0 = i + 1
	if i+2 < len(s) && safeASCII[s[i+1]] && s[i+2] == '"' {
		i, sp.codeRaw = i+3, true // a one-letter code, the usual
	} else if i, sp.codeRaw = scanString(s, i+1, strictUTF8); i < 0 {
		return 0, false
	}
	sp.code1 = i - 1
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != ',' {
		return 0, false
	}
	i++
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '"' {
		return 0, false
	}
	sp.data0 = i + 1
	if i, sp.dataRaw = scanString(s, i+1, strictUTF8); i < 0 {
		return 0, false
	}
	sp.data1 = i - 1
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != ']' {
		return 0, false
	}
	i++
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i, i == len(s) || s[i] == '\n'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isHex is 1 for hexadecimal digits, 0 for other bytes.
var isHex = func() (t [256]uint8) {
	for _, c := range "0123456789abcdefABCDEF" {
		t[c] = 1
	}
	return t
}()

// escLen is the length of the escape that starts with '\\' and c, by c:
// 2, or 6 for \uXXXX, or 0 when c starts no escape.
var escLen = func() (t [256]uint8) {
	for _, c := range `"\\/bfnrt` {
		t[c] = 2
	}
	t['u'] = 6
	return t
}()

// scanString returns the index just past the closing quote of the JSON
// string whose contents start at s[i], or -1 if the string is invalid or
// not closed. raw reports contents that need no unquoting: no escapes and
// valid UTF-8.
func scanString(s []byte, i int, strictUTF8 bool) (end int, raw bool) {
	raw = true
	for {
		// Skip plain bytes, eight at a time while there are eight.
		if i+8 <= len(s) {
			m := specialMask(binary.LittleEndian.Uint64(s[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(s) && safeASCII[s[i]] {
				i++
			}
			if i == len(s) {
				return -1, false
			}
		}
		c := s[i]
		if c == '\\' {
			raw = false
			if i+6 > len(s) {
				if i+1 == len(s) || escLen[s[i+1]] != 2 {
					return -1, false // a \u escape needs six bytes
				}
				i += 2
				continue
			}
			switch escLen[s[i+1]] {
			case 2:
				i += 2
				continue
			case 6:
				if isHex[s[i+2]]&isHex[s[i+3]]&isHex[s[i+4]]&isHex[s[i+5]] != 0 {
					i += 6
					continue
				}
			}
			return -1, false
		}
		if c == '"' {
			return i + 1, raw
		}
		if c < 0x20 {
			return -1, false
		}
		// c >= 0x80
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			if strictUTF8 {
				return -1, false
			}
			raw = false
		}
		i += size
	}
}

// SWAR constants: a byte value repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialMask sets the high bit of each byte of x (eight bytes of a JSON
// string, little-endian) that a string cannot hold as it is: below 0x20,
// '"', '\\', or 0x80 and up. A subtraction borrows into higher bytes only
// above a byte that matches, so the lowest set bit is exact; higher ones may
// not be.
func specialMask(x uint64) uint64 {
	return ((x - 0x20*ones) | ((x ^ '"'*ones) - ones) | ((x ^ '\\'*ones) - ones) | x) & highs
}

// plainLen returns how many leading bytes of s a JSON string holds without
// a second look: ASCII from 0x20 up, other than '"' and '\\'.
func plainLen(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if m := specialMask(binary.LittleEndian.Uint64(s[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(s) && safeASCII[s[i]]; i++ {
	}
	return i
}

// skipDigits returns the index of the first byte from s[i] on that is not
// an ASCII digit, or len(s).
func skipDigits(s []byte, i int) int {
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		// High bit set where a byte is below '0' (borrow), above '9'
		// (0x3a+0x46 = 0x80) or non-ASCII; exact for the lowest one.
		if m := ((x - '0'*ones) | (x + 0x46*ones) | x) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseTime converts a valid JSON number to float64, exactly as
// strconv.ParseFloat does. ok is false when the value overflows float64.
func parseTime(b []byte) (t float64, ok bool) {
	// Fast path: at most 19 digits, no exponent. Then the mantissa is an
	// exact integer and, when it is below 2⁵³ and there are at most 22
	// decimals, one correctly rounded division gives the right float64.
	neg := b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	var m uint64
	digits, frac := 0, -1
	for ; i < len(b); i++ {
		c := b[i]
		if c == '.' {
			frac = 0
			continue
		}
		if c < '0' || c > '9' || digits == 19 {
			return parseTimeSlow(b)
		}
		m = m*10 + uint64(c-'0')
		digits++
		if frac >= 0 {
			frac++
		}
	}
	if m > 1<<53 || frac > 22 {
		return parseTimeSlow(b)
	}
	t = float64(m)
	if frac > 0 {
		t /= pow10[frac]
	}
	if neg {
		t = -t
	}
	return t, true
}

func parseTimeSlow(b []byte) (float64, bool) {
	t, err := strconv.ParseFloat(string(b), 64)
	return t, err == nil && !math.IsInf(t, 0)
}

// unquote appends the decoded contents of a scanned JSON string to dst, the
// way encoding/json decodes it: invalid UTF-8 and unpaired surrogates become
// U+FFFD.
func unquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2 = hex4(s[i+2:])
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						i += 6
						r = d
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// hex4 reads four hex digits that the scanner has checked.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
