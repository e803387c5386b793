package asciicast

import (
	"errors"
	"fmt"
	"strconv"
)

// lineState is where a lineMachine stands in an event line.
type lineState uint8

const (
	stArr       lineState = iota // before '['
	stTime                       // before the time
	stMinus                      // after the time's '-'
	stZero                       // after a leading 0
	stInt                        // in integer digits
	stDot                        // after '.'
	stFrac                       // in fraction digits
	stExp                        // after 'e' or 'E'
	stExpSign                    // after the exponent's sign
	stExpDigits                  // in exponent digits
	stAfterTime                  // before the ',' after the time
	stCode                       // before the code string
	stAfterCode                  // before the ',' after the code
	stData                       // before the data string
	stAfterData                  // before the closing ']'
	stEnd                        // after ']'
	stStr                        // in a string
	stEsc                        // after '\' in a string
	stHex                        // in the digits of a \u escape
	stRune                       // in a multi-byte UTF-8 sequence
	stDone                       // problem found; the rest of the line is ignored
)

// want says what a state expects next, for messages.
var want = [...]string{
	stArr:       "'['",
	stTime:      "a number for time",
	stMinus:     "a digit",
	stDot:       "a digit",
	stExp:       "a digit",
	stExpSign:   "a digit",
	stAfterTime: "',' after time",
	stCode:      "code string",
	stAfterCode: "',' after code",
	stData:      "data string",
	stAfterData: "']' after data",
	stEnd:       "end of line",
}

// lineMachine checks one event line fed in pieces of any size, one byte at a
// time except for runs of plain string bytes. It carries at most the text of
// the time (maxTimeLen bytes), never the line. It accepts exactly the lines
// scanLine accepts and says why it rejects one.
type lineMachine struct {
	st         lineState
	inData     bool  // the string being read is data, not code
	need       uint8 // stRune: bytes still to come
	lo, hi     byte  // stRune: range of the next byte
	hex        uint8 // stHex: digits read
	strictUTF8 bool
	checkTimes bool
	col        int // bytes of the line fed so far
	runeCol    int // stRune: column of the sequence's first byte
	numLen     int
	num        [maxTimeLen]byte // this line's time
	prevLen    int
	prev       [maxTimeLen]byte // the previous event's time
	problem    error            // why the line is bad; nil if it is not (yet)
}

// reset prepares the machine for a new line. prev is the text of the
// previous event's time, if checkTimes.
func (m *lineMachine) reset(prev []byte, checkTimes, strictUTF8 bool) {
	m.st, m.inData, m.need, m.lo, m.hi, m.hex = stArr, false, 0, 0, 0, 0
	m.strictUTF8, m.checkTimes = strictUTF8, checkTimes
	m.col, m.runeCol, m.numLen, m.problem = 0, 0, 0, nil
	m.prevLen = copy(m.prev[:], prev)
}

// time returns the text of the line's time.
func (m *lineMachine) time() []byte { return m.num[:m.numLen] }

// feed consumes the next bytes of the line, which hold no '\n'.
func (m *lineMachine) feed(b []byte) {
	for i := 0; i < len(b); {
		if m.st == stStr {
			// Whole escapes and runes, as the fast scanner reads them.
			j, _ := stringRun(b, i, m.strictUTF8)
			m.col += j - i
			if i = j; i == len(b) {
				return
			}
		}
		if m.step(b[i]) {
			i++
			m.col++
		}
	}
}

// step consumes c, at column m.col+1, and reports whether it did; if not, c
// must be stepped again in the new state.
func (m *lineMachine) step(c byte) bool {
	switch m.st {
	case stDone:
	case stArr:
		if c == '[' {
			m.st = stTime
		} else if !isSpace(c) {
			m.unexpected(c)
		}
	case stTime:
		switch {
		case c == '-':
			m.st = stMinus
		case c == '0':
			m.st = stZero
		case c >= '1' && c <= '9':
			m.st = stInt
		case isSpace(c):
			return true
		default:
			m.unexpected(c)
			return true
		}
		m.addNum(c)
	case stMinus:
		switch {
		case c == '0':
			m.st = stZero
		case c >= '1' && c <= '9':
			m.st = stInt
		default:
			m.unexpected(c)
			return true
		}
		m.addNum(c)
	case stZero, stInt, stFrac, stExpDigits:
		switch {
		case isDigit(c) && m.st != stZero:
		case c == '.' && (m.st == stZero || m.st == stInt):
			m.st = stDot
		case (c == 'e' || c == 'E') && m.st != stExpDigits:
			m.st = stExp
		default:
			m.endNumber()
			return false
		}
		m.addNum(c)
	case stDot:
		if !isDigit(c) {
			m.unexpected(c)
			return true
		}
		m.st = stFrac
		m.addNum(c)
	case stExp, stExpSign:
		switch {
		case isDigit(c):
			m.st = stExpDigits
		case (c == '+' || c == '-') && m.st == stExp:
			m.st = stExpSign
		default:
			m.unexpected(c)
			return true
		}
		m.addNum(c)
	case stAfterTime, stAfterCode:
		if c == ',' {
			m.st++ // stCode, stData
		} else if !isSpace(c) {
			m.unexpected(c)
		}
	case stCode, stData:
		if c == '"' {
			m.inData = m.st == stData
			m.st = stStr
		} else if !isSpace(c) {
			m.unexpected(c)
		}
	case stAfterData:
		if c == ']' {
			m.st = stEnd
		} else if !isSpace(c) {
			m.unexpected(c)
		}
	case stEnd:
		if !isSpace(c) {
			m.unexpected(c)
		}
	case stStr:
		m.stringByte(c)
	case stEsc:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			m.st = stStr
		case 'u':
			m.st, m.hex = stHex, 0
		default:
			m.fail(fmt.Errorf("invalid escape in %s: %s after '\\' at column %d", m.str(), quoteByte(c), m.col+1))
		}
	case stHex:
		if isHex[c] == 0 {
			m.fail(fmt.Errorf("invalid \\u escape in %s: %s at column %d", m.str(), quoteByte(c), m.col+1))
			return true
		}
		if m.hex++; m.hex == 4 {
			m.st = stStr
		}
	case stRune:
		if c < m.lo || c > m.hi {
			if m.strictUTF8 {
				m.badUTF8()
				return true
			}
			m.st = stStr // as utf8.DecodeRune: the bad byte starts afresh
			return false
		}
		m.lo, m.hi = 0x80, 0xbf
		if m.need--; m.need == 0 {
			m.st = stStr
		}
	}
	return true
}

// stringByte handles a byte inside a string.
func (m *lineMachine) stringByte(c byte) {
	switch {
	case c == '"':
		if m.inData {
			m.st = stAfterData
		} else {
			m.st = stAfterCode
		}
		return
	case c == '\\':
		m.st = stEsc
		return
	case c < 0x20:
		m.fail(fmt.Errorf("control character 0x%02x in %s at column %d", c, m.str(), m.col+1))
		return
	case c < 0x80:
		return
	}
	// The first byte of a UTF-8 sequence: the ranges utf8.DecodeRune accepts.
	m.lo, m.hi = 0x80, 0xbf
	switch {
	case c >= 0xc2 && c <= 0xdf:
		m.need = 1
	case c == 0xe0:
		m.need, m.lo = 2, 0xa0
	case c == 0xed:
		m.need, m.hi = 2, 0x9f
	case c >= 0xe1 && c <= 0xef:
		m.need = 2
	case c == 0xf0:
		m.need, m.lo = 3, 0x90
	case c >= 0xf1 && c <= 0xf3:
		m.need = 3
	case c == 0xf4:
		m.need, m.hi = 3, 0x8f
	default:
		if m.strictUTF8 {
			m.runeCol = m.col + 1
			m.badUTF8()
		}
		return
	}
	m.st, m.runeCol = stRune, m.col+1
}

// addNum keeps a byte of the time.
func (m *lineMachine) addNum(c byte) {
	if m.numLen == maxTimeLen {
		m.fail(fmt.Errorf("event is not [time, code, data]: time longer than %d characters at column %d", maxTimeLen, m.col+1))
		return
	}
	m.num[m.numLen] = c
	m.numLen++
}

// endNumber parses the time once its last byte is read.
func (m *lineMachine) endNumber() {
	num := m.num[:m.numLen]
	if m.checkTimes {
		if err := timeProblem(num, m.prev[:m.prevLen]); err != nil {
			m.fail(err)
			return
		}
	} else if _, ok := parseTime(num); !ok {
		m.fail(fmt.Errorf("event time %s is out of range", num))
		return
	}
	m.st = stAfterTime
}

// eol ends the line. Afterwards m.problem is nil if the line is a good
// event, and m.time() holds its time.
func (m *lineMachine) eol() {
	switch m.st {
	case stDone, stEnd:
		return
	case stZero, stInt, stFrac, stExpDigits:
		if m.endNumber(); m.problem != nil {
			return
		}
	case stArr:
		if m.col == 0 {
			m.fail(errors.New("empty line"))
			return
		}
	case stRune:
		if m.strictUTF8 {
			m.badUTF8()
			return
		}
		fallthrough
	case stStr, stEsc, stHex:
		m.fail(fmt.Errorf("event is not [time, code, data]: line ends inside %s", m.str()))
		return
	}
	m.fail(fmt.Errorf("event is not [time, code, data]: want %s, got end of line", want[m.st]))
}

func (m *lineMachine) unexpected(c byte) {
	m.fail(fmt.Errorf("event is not [time, code, data]: want %s, got %s at column %d", want[m.st], quoteByte(c), m.col+1))
}

func (m *lineMachine) badUTF8() {
	m.fail(fmt.Errorf("invalid UTF-8 in %s at column %d", m.str(), m.runeCol))
}

func (m *lineMachine) fail(err error) {
	m.problem = err
	m.st = stDone
}

// str names the string being read.
func (m *lineMachine) str() string {
	if m.inData {
		return "data string"
	}
	return "code string"
}

// quoteByte shows a byte in a message.
func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
