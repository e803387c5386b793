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
		i++
		if i+8 <= len(s) { // inline the common case: fewer than eight digits
			if m := nonDigits(binary.LittleEndian.Uint64(s[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
			} else {
				i = skipDigits(s, i+8)
			}
		} else {
			i = skipDigits(s, i)
		}
	default:
		return 0, false
	}
	sp.timeInt = i - sp.time0
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return 0, false
		}
		i++
		if i+8 <= len(s) { // inline the common case: fewer than eight digits
			if m := nonDigits(binary.LittleEndian.Uint64(s[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
			} else {
				i = skipDigits(s, i+8)
			}
		} else {
			i = skipDigits(s, i)
		}
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

	// The usual shape, as json.Marshal writes it: `,"c","` and the data.
	if i+8 <= len(s) {
		if y := binary.LittleEndian.Uint64(s[i:]); y&0xffffff00ffff == 0x222c2200222c && safeASCII[byte(y>>16)] {
			sp.code0, sp.code1, sp.codeRaw = i+2, i+3, true
			sp.data0 = i + 6
			if i, sp.dataRaw = scanString(s, i+6, strictUTF8); i < 0 {
				return 0, false
			}
			sp.data1 = i - 1
			if i+1 < len(s) && s[i] == ']' && s[i+1] == '\n' {
				return i + 1, true
			}
			return eventEnd(s, i)
		}
	}

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
	return eventEnd(s, i)
}

// eventEnd checks the end of an event line from just after the data string:
// the closing ']', then up to '\n' or the end of s.
func eventEnd(s []byte, i int) (n int, ok bool) {
	if i+1 < len(s) && s[i] == ']' && s[i+1] == '\n' {
		return i + 1, true // the usual
	}
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
	j, raw := stringRun(s, i, strictUTF8)
	if j < len(s) && s[j] == '"' {
		return j + 1, raw
	}
	return -1, false
}

// stringRun skips string contents from s[i] on: plain bytes, and escapes and
// UTF-8 sequences that are whole and valid (invalid UTF-8 too, unless
// strictUTF8). It returns the index of the first byte it does not skip: the
// closing quote, a bad byte, or the start of an escape or sequence that is
// bad or cut by the end of s; or len(s). raw is false if it skipped an
// escape or invalid UTF-8.
func stringRun(s []byte, i int, strictUTF8 bool) (j int, raw bool) {
	raw = true
	for i+8 <= len(s) {
		x := binary.LittleEndian.Uint64(s[i:])
		if specialMask(x) == 0 {
			i += 8
			continue
		}
		// Handle every special byte of this word from one exact mask:
		// escapes like \r\n come in clusters.
		base := i
		for m := exactSpecialMask(x); m != 0; m &= ^uint64(0) << (8 * uint(i-base)) {
			j := base + bits.TrailingZeros64(m)>>3
			switch c := s[j]; {
			case c == '\\':
				if j+6 > len(s) {
					return stringRunTail(s, j, strictUTF8, raw)
				}
				// No branch on the kind of escape, which is hard to
				// predict: n is 2, 6 for \u, 0 for no escape; a \u
				// escape also needs four hex digits.
				n := escLen[s[j+1]]
				hex := isHex[s[j+2]] & isHex[s[j+3]] & isHex[s[j+4]] & isHex[s[j+5]]
				if n == 0 || (n>>2)&^hex != 0 {
					return j, raw
				}
				raw = false
				i = j + int(n)
			case c < 0x80: // '"' or a control byte
				return j, raw
			default:
				r, size := utf8.DecodeRune(s[j:])
				if r == utf8.RuneError && size == 1 {
					if strictUTF8 || !utf8.FullRune(s[j:]) {
						return j, raw
					}
					raw = false
				}
				i = j + size
			}
			if i >= base+8 {
				break
			}
		}
		i = max(i, base+8) // the rest of the word is plain
	}
	return stringRunTail(s, i, strictUTF8, raw)
}

// stringRunTail is stringRun a byte at a time, for the last bytes of s.
func stringRunTail(s []byte, i int, strictUTF8, raw bool) (j int, _ bool) {
	for {
		for i < len(s) && safeASCII[s[i]] {
			i++
		}
		if i == len(s) {
			return i, raw
		}
		switch c := s[i]; {
		case c == '\\':
			if i+1 == len(s) {
				return i, raw
			}
			switch escLen[s[i+1]] {
			case 2:
				i += 2
			case 6:
				if i+6 > len(s) || isHex[s[i+2]]&isHex[s[i+3]]&isHex[s[i+4]]&isHex[s[i+5]] == 0 {
					return i, raw
				}
				i += 6
			default:
				return i, raw
			}
			raw = false
		case c < 0x80: // '"' or a control byte
			return i, raw
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				if strictUTF8 || !utf8.FullRune(s[i:]) {
					return i, raw
				}
				raw = false
			}
			i += size
		}
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

// exactSpecialMask is specialMask with every set bit exact, at a few more
// operations: it works on the low seven bits of each byte, where no
// addition carries into the next byte.
func exactSpecialMask(x uint64) uint64 {
	t := x &^ highs
	lt := ^(t + 0x60*ones)              // t < 0x20
	q := ^((t ^ '"'*ones) + 0x7f*ones)  // t == '"'
	b := ^((t ^ '\\'*ones) + 0x7f*ones) // t == '\\'
	return (lt | q | b | x) & highs
}

// skipDigits returns the index of the first byte from s[i] on that is not
// an ASCII digit, or len(s). It looks at sixteen bytes at a time without a
// branch on where the digits end, which is hard to predict.
func skipDigits(s []byte, i int) int {
	for i+16 <= len(s) {
		m1 := nonDigits(binary.LittleEndian.Uint64(s[i:]))
		m2 := nonDigits(binary.LittleEndian.Uint64(s[i+8:]))
		k := bits.TrailingZeros64(m1) >> 3
		k2 := 8 + bits.TrailingZeros64(m2)>>3
		if m1 == 0 {
			k = k2
		}
		if k < 16 {
			return i + k
		}
		i += 16
	}
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// nonDigits sets the high bit of each byte of x that is below '0'
// (borrow), above '9' (0x3a+0x46 = 0x80) or non-ASCII. The lowest set bit
// is exact.
func nonDigits(x uint64) uint64 {
	return ((x - '0'*ones) | (x + 0x46*ones) | x) & highs
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
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] < utf8.RuneSelf {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
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
