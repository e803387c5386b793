package vt

import (
	"strconv"
	"unicode/utf8"
)

// Dump returns the terminal's state as output: written to a fresh terminal
// of the same size (power-on state, empty screen), it reproduces the main
// screen and, when it is showing, the alternate screen, with colours and
// attributes, soft wraps, the saved cursors, the scroll region, tab stops,
// character sets, the modes that change how later output lands (autowrap,
// insert, origin, newline), cursor visibility, the pen, and the cursor's
// position, including a pending wrap at the right edge.
//
// When output stopped in the middle of an escape sequence or a character,
// the dump ends with that unfinished part, so output that goes on with it
// lands as it would have (unless the sequence has grown past 256 bytes
// before its parameters ended, which no real program writes).
//
// This is what opens each snapshot segment of a recording for the player,
// and what a viewer who joins a live session late receives first. The one
// thing it leaves out is the character that REP would repeat.
func (t *Terminal) Dump() []byte { return t.AppendDump(nil) }

// AppendDump appends Dump's output to dst and returns the extended slice.
func (t *Terminal) AppendDump(dst []byte) []byte {
	dst = t.appendScreen(dst, &t.main)
	if t.scr == &t.alt {
		dst = t.appendSaved(dst, &t.main)
		dst = append(dst, "\x1b[?47h"...)
		dst = t.appendScreen(dst, &t.alt)
		dst = t.appendSaved(dst, &t.alt)
	} else {
		dst = t.appendSaved(dst, &t.main)
	}
	if t.top != 0 || t.bot != t.rows-1 {
		dst = csi(dst, 'r', t.top+1, t.bot+1)
	}
	if t.cur.origin {
		dst = append(dst, "\x1b[?6h"...)
	}
	if !t.defaultTabs() {
		dst = append(dst, "\x1b[3g"...)
		for x, on := range t.tabs {
			if on {
				dst = csi(dst, 'G', x+1)
				dst = append(dst, "\x1bH"...)
			}
		}
	}
	dst = t.appendCursor(dst, t.cur, t.scr)
	if !t.autowrap {
		dst = append(dst, "\x1b[?7l"...)
	}
	if t.insert {
		dst = append(dst, "\x1b[4h"...)
	}
	if t.newline {
		dst = append(dst, "\x1b[20h"...)
	}
	if t.hidden {
		dst = append(dst, "\x1b[?25l"...)
	}
	if t.state != ground && !t.seqLost {
		dst = append(dst, t.seq...)
	}
	return append(dst, t.utf[:t.nutf]...)
}

func (t *Terminal) defaultTabs() bool {
	for x, on := range t.tabs {
		if on != (x > 0 && x%8 == 0) {
			return false
		}
	}
	return true
}

// appendSaved reproduces s's saved cursor (DECSC), if any.
func (t *Terminal) appendSaved(dst []byte, s *screen) []byte {
	if !s.hasSaved {
		return dst
	}
	c := s.saved
	// Absolute position: DECOM is not set yet. DECRC brings no pending wrap
	// back.
	c.wrapNext, c.origin = false, false
	dst = t.appendCursor(dst, c, s)
	dst = append(dst, "\x1b7"...)
	// Back to the power-on pen and character sets for what follows.
	return append(dst, "\x1b[0m\x1b(B\x1b)B\x0f"...)
}

// appendCursor moves the cursor to c's place and sets c's pen and character
// sets. It expects DECOM to be as c has it.
func (t *Terminal) appendCursor(dst []byte, c cursor, s *screen) []byte {
	y := c.y
	if c.origin {
		y -= t.top
	}
	if c.wrapNext {
		// Print the last column's character again: the cursor stays on it
		// with the wrap pending, as it was.
		l := s.lines[c.y]
		x := c.x
		if l.at(x).ch == wideTail && x > 0 {
			x--
		}
		dst = csi(dst, 'H', y+1, x+1)
		dst = appendSGR(dst, l.at(x).style)
		dst = appendCell(dst, l, x)
	} else {
		dst = csi(dst, 'H', y+1, c.x+1)
	}
	dst = appendSGR(dst, c.pen)
	if c.g[0] == csGraphics {
		dst = append(dst, "\x1b(0"...)
	}
	if c.g[1] == csGraphics {
		dst = append(dst, "\x1b)0"...)
	}
	if c.gl == 1 {
		dst = append(dst, 0x0e)
	}
	return dst
}

// appendScreen draws s's rows on a blank screen with the cursor at home.
// It leaves the pen at the default.
func (t *Terminal) appendScreen(dst []byte, s *screen) []byte {
	pen := style{}
	cont := false // the previous row was printed to its end and wraps
	for y, l := range s.lines {
		end := l.used
		wraps := l.wrapped && y+1 < len(s.lines)
		fill := !wraps && l.used < len(l.cells) && l.fill != (cell{})
		if wraps {
			end = len(l.cells)
		} else {
			for end > 0 && l.cells[end-1] == (cell{}) {
				end--
			}
		}
		if end == 0 && !cont && !fill {
			continue
		}
		if !cont {
			dst = csi(dst, 'H', y+1, 1)
		}
		for x := 0; x < end; x++ {
			c := l.at(x)
			if c.ch == wideTail && x > 0 && l.at(x-1).ch != wideTail && isWide(l.at(x-1).ch) {
				continue
			}
			if c.style != pen {
				dst = appendSGR(dst, c.style)
				pen = c.style
			}
			dst = appendCell(dst, l, x)
		}
		if fill {
			// The rest of the row is blank with a background: erase it
			// with that background (xterm's background colour erase).
			dst = csi(dst, 'H', y+1, l.used+1)
			dst = appendSGR(dst, l.fill.style)
			pen = l.fill.style
			dst = append(dst, "\x1b[K"...)
		}
		cont = wraps
	}
	if pen != (style{}) {
		dst = append(dst, "\x1b[0m"...)
	}
	return dst
}

func isWide(r rune) bool { return r > 0x1000 && runeWidth(r) == 2 }

// appendCell appends the character of cell x: a blank for an empty cell,
// an orphaned half of a wide character, or a wide character with no room
// for its right half.
func appendCell(dst []byte, l *line, x int) []byte {
	r := l.at(x).ch
	switch {
	case r <= 0 || r == ' ':
		return append(dst, ' ')
	case r < utf8.RuneSelf:
		return append(dst, byte(r))
	case isWide(r) && (x+1 >= len(l.cells) || l.at(x+1).ch != wideTail):
		return append(dst, ' ')
	}
	return utf8.AppendRune(dst, r)
}

// appendSGR appends an SGR sequence that sets the pen to st from any pen.
func appendSGR(dst []byte, st style) []byte {
	dst = append(dst, "\x1b[0"...)
	for i, code := range [...]byte{1, 2, 3, 4, 5, 7, 8, 9} {
		if st.attr&(1<<i) != 0 {
			dst = append(dst, ';')
			dst = strconv.AppendInt(dst, int64(code), 10)
		}
	}
	dst = appendColor(dst, st.fg, 30, 90, 38)
	dst = appendColor(dst, st.bg, 40, 100, 48)
	return append(dst, 'm')
}

func appendColor(dst []byte, c color, base, bright, ext int) []byte {
	n := int(c &^ colorKind)
	switch c & colorKind {
	case colorIndexed:
		switch {
		case n < 8:
			return appendParams(dst, base+n)
		case n < 16:
			return appendParams(dst, bright+n-8)
		}
		return appendParams(dst, ext, 5, n)
	case colorRGB:
		return appendParams(dst, ext, 2, n>>16, n>>8&0xff, n&0xff)
	}
	return dst
}

func appendParams(dst []byte, ps ...int) []byte {
	for _, p := range ps {
		dst = append(dst, ';')
		dst = strconv.AppendInt(dst, int64(p), 10)
	}
	return dst
}

// csi appends ESC [ p1;p2... final.
func csi(dst []byte, final byte, ps ...int) []byte {
	dst = append(dst, 0x1b, '[')
	for i, p := range ps {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = strconv.AppendInt(dst, int64(p), 10)
	}
	return append(dst, final)
}
