package player

import (
	"slices"
	"strconv"
	"strings"
)

// modes follows the terminal modes a recording's output turns on and off,
// so that a replay that stops anywhere can turn them off again. It parses
// just enough of the output: ESC = and ESC >, ESC c, CSI ? Pm h/l (DEC
// private modes), CSI ... m (text attributes), and skips OSC, DCS and other
// strings. State carries across writes, so a sequence split between events
// is still seen.
type modes struct {
	state   parseState
	params  []byte // of the CSI sequence being read
	private bool   // it began with '?'
	tooLong bool   // its parameters did not fit: ignore it

	set      map[int]bool // DEC private modes the output changed from their default, by number
	keypad   bool         // application keypad (ESC =)
	attrs    bool         // text attributes set and not reset
	midLine  bool         // the main screen's cursor is not at the start of a line
	altDepth int          // how many alternate-screen modes are on (47, 1047, 1049)
}

type parseState uint8

const (
	ground   parseState = iota
	escape              // after ESC
	escInter            // ESC then an intermediate byte (ESC ( B)
	csi                 // after ESC [ or CSI
	str                 // inside OSC, DCS, APC, PM or SOS, until BEL or ST
	strEsc              // ESC inside a string: ST if '\' follows
)

// Modes whose default is on: the output changes them by turning them off.
var defaultOn = map[int]bool{
	7:  true, // autowrap
	25: true, // cursor visible
}

// Modes a replay turns back to their default, in the order they are
// undone: screens last, so the rest is undone where it was set, then the
// cursor shown on the main screen.
var tracked = []int{
	1,                                                 // application cursor keys
	9, 1000, 1001, 1002, 1003, 1005, 1006, 1015, 1016, // mouse reporting
	1004,           // focus events
	2004,           // bracketed paste
	7,              // autowrap
	1049, 1047, 47, // alternate screen
	25, // cursor visible
}

func isAlt(m int) bool { return m == 47 || m == 1047 || m == 1049 }

const maxParams = 64

func (m *modes) feed(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch m.state {
		case ground:
			switch {
			case c == 0x1b:
				m.state = escape
			case c == '\n':
				if m.altDepth == 0 {
					m.midLine = false
				}
			case c == '\r':
				// Back to the start of a line that may hold text: a prompt
				// would overwrite it, so only a newline ends the output.
				if m.altDepth == 0 {
					m.midLine = true
				}
			default:
				m.print(c)
			}
		case escape:
			switch {
			case c == '[':
				m.state, m.params, m.private, m.tooLong = csi, m.params[:0], false, false
			case c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X':
				m.state = str
			case c == '=':
				m.keypad, m.state = true, ground
			case c == '>':
				m.keypad, m.state = false, ground
			case c == 'c': // full reset
				*m = modes{params: m.params}
			case c >= 0x20 && c <= 0x2f:
				m.state = escInter
			case c == 0x1b:
			default:
				m.state = ground
			}
		case escInter:
			if c < 0x20 || c > 0x2f {
				m.state = ground
			}
		case csi:
			switch {
			case c == '?' && len(m.params) == 0 && !m.private:
				m.private = true
			case c >= 0x30 && c <= 0x3f:
				if len(m.params) < maxParams {
					m.params = append(m.params, c)
				} else {
					m.tooLong = true
				}
			case c >= 0x40 && c <= 0x7e:
				m.state = ground
				if !m.tooLong {
					m.final(c)
				}
			case c == 0x1b:
				m.state = escape
			case c >= 0x20 && c <= 0x2f: // intermediates: not a sequence we follow
				m.tooLong = true
			}
		case str:
			switch c {
			case 0x07:
				m.state = ground
			case 0x1b:
				m.state = strEsc
			}
		case strEsc:
			if c == '\\' {
				m.state = ground
			} else {
				m.state = str
			}
		}
	}
}

// print notes a byte that puts something on the screen.
func (m *modes) print(c byte) {
	if m.altDepth == 0 && c >= 0x20 && c != 0x7f {
		m.midLine = true
	}
}

// final handles the end of a CSI sequence.
func (m *modes) final(c byte) {
	params := strings.Split(string(m.params), ";")
	switch {
	case m.private && (c == 'h' || c == 'l'):
		for _, p := range params {
			n, err := strconv.Atoi(p)
			if err != nil || !slices.Contains(tracked, n) {
				continue
			}
			on := c == 'h'
			if isAlt(n) {
				was := m.set[n]
				if on && !was {
					m.altDepth++
				} else if !on && was {
					m.altDepth--
				}
			}
			if m.set == nil {
				m.set = map[int]bool{}
			}
			if on == defaultOn[n] {
				delete(m.set, n)
			} else {
				m.set[n] = true
			}
		}
	case !m.private && c == 'm':
		// Only "CSI m", "CSI 0 m" (and "0;0") reset everything; anything
		// else may set an attribute.
		m.attrs = false
		for _, p := range params {
			if strings.Trim(p, "0") != "" {
				m.attrs = true
			}
		}
	}
}

// reset returns what undoes the modes that are on, and a newline when the
// main screen's cursor is not at the start of a line.
func (m *modes) reset() []byte {
	var b []byte
	if m.attrs {
		b = append(b, "\x1b[0m"...)
	}
	if m.keypad {
		b = append(b, "\x1b>"...)
	}
	for _, n := range tracked {
		if !m.set[n] {
			continue
		}
		b = append(b, "\x1b[?"...)
		b = strconv.AppendInt(b, int64(n), 10)
		if defaultOn[n] {
			b = append(b, 'h')
		} else {
			b = append(b, 'l')
		}
	}
	if m.midLine {
		b = append(b, "\r\n"...)
	}
	*m = modes{}
	return b
}
