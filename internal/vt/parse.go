package vt

import (
	"unicode/utf8"
	"unsafe"
)

// The parser follows the shape of Paul Williams' DEC-compatible parser
// state machine (vt100.net/emu/dec_ansi_parser), cut down to what changes
// the screen: strings (OSC, DCS, SOS, PM, APC) are skipped whole, and C0
// controls act even in the middle of a sequence.
type pstate uint8

const (
	ground pstate = iota
	escape
	escInter // ESC and an intermediate byte: ESC ( 0, ESC # 8
	csiParam
	csiIgnore // a malformed CSI sequence, skipped up to its final byte
	str       // OSC, DCS, SOS, PM, APC: skipped up to BEL or ST
)

const maxParams = 32

// maxParam bounds a CSI parameter; every count is clamped to the screen
// anyway.
const maxParam = 1 << 16

// Write feeds output bytes to the terminal. It never fails and never
// blocks: there are no replies to send. A multi-byte character or an escape
// sequence may be split across writes. Invalid UTF-8 shows as U+FFFD.
func (t *Terminal) Write(p []byte) (int, error) {
	i := 0
	if t.nutf > 0 {
		i = t.finishRune(p)
	}
	for i < len(p) {
		b := p[i]
		if t.state == ground {
			if b >= 0x20 && b < 0x7f {
				j := i + 1
				for j < len(p) && p[j] >= 0x20 && p[j] < 0x7f {
					j++
				}
				t.putASCII(p[i:j])
				i = j
				continue
			}
			if b >= 0x80 {
				if !utf8.FullRune(p[i:]) {
					t.nutf = copy(t.utf[:], p[i:])
					return len(p), nil
				}
				r, n := utf8.DecodeRune(p[i:])
				t.printRune(r)
				i += n
				continue
			}
		}
		t.advance(b)
		i++
	}
	return len(p), nil
}

// WriteString is Write for a string.
func (t *Terminal) WriteString(s string) (int, error) {
	// Write neither changes nor keeps p: the string's bytes can be lent.
	return t.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// finishRune completes a character split across writes and returns how
// many bytes of p it used.
func (t *Terminal) finishRune(p []byte) int {
	var buf [utf8.UTFMax]byte
	stored := copy(buf[:], t.utf[:t.nutf])
	n, used := stored, 0
	for n < utf8.UTFMax && used < len(p) && !utf8.FullRune(buf[:n]) {
		buf[n] = p[used]
		n++
		used++
	}
	if !utf8.FullRune(buf[:n]) { // p was too short: keep waiting
		t.nutf = n
		copy(t.utf[:], buf[:n])
		return used
	}
	t.nutf = 0
	r, size := utf8.DecodeRune(buf[:n])
	if size <= stored {
		// The stored bytes do not start a character: one U+FFFD for them,
		// and p is read from its start.
		t.printRune(utf8.RuneError)
		return 0
	}
	t.printRune(r)
	return size - stored
}

func (t *Terminal) printRune(r rune) {
	if r >= 0x80 && r < 0xa0 {
		return // C1 controls as characters: nothing to show
	}
	t.put(r, runeWidth(r))
}

// advance runs the state machine on one byte that is not part of a run of
// printable characters in the ground state.
func (t *Terminal) advance(b byte) {
	if b < 0x20 || b == 0x7f {
		switch {
		case b == 0x1b:
			if t.state == str {
				t.strDone = true
				t.keep(b)
				return
			}
			t.state = escape
			t.inter = 0
			t.seq, t.seqLost = append(t.seq[:0], b), false
		case b == 0x18 || b == 0x1a: // CAN, SUB
			t.state = ground
		case t.state == str:
			if b == 0x07 { // BEL ends an OSC
				t.state = ground
			}
		case b != 0x7f:
			t.control(b)
		}
		return
	}
	if t.state != str {
		t.keep(b)
	}
	switch t.state {
	case ground:
		// only bytes >= 0x80 reach here through Write's fast path; nothing
	case escape:
		switch {
		case b < 0x30:
			t.inter = b
			t.state = escInter
		case b == '[':
			t.state = csiParam
			t.priv, t.inter, t.np, t.sub = 0, 0, 0, 0
		case b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_':
			t.state = str
			t.strDone = false
		default:
			t.state = ground
			t.escDispatch(b)
		}
	case escInter:
		if b < 0x30 {
			return // a second intermediate byte: ignored
		}
		t.state = ground
		t.escInterDispatch(t.inter, b)
	case csiParam:
		switch {
		case b >= '0' && b <= '9':
			if t.np == 0 {
				t.np = 1
				t.params[0] = 0
			}
			p := &t.params[t.np-1]
			if *p < maxParam {
				*p = *p*10 + int32(b-'0')
			}
		case b == ';' || b == ':':
			if t.np == 0 {
				t.np = 1
				t.params[0] = 0
			}
			if t.np == maxParams {
				t.state = csiIgnore
				return
			}
			t.params[t.np] = 0
			if b == ':' {
				t.sub |= 1 << t.np
			}
			t.np++
		case b >= 0x3c && b <= 0x3f:
			if t.np > 0 || t.priv != 0 || t.inter != 0 {
				t.state = csiIgnore
				return
			}
			t.priv = b
		case b < 0x30:
			t.inter = b
		case b >= 0x40 && b < 0x7f:
			t.state = ground
			t.csiDispatch(b)
		default:
			t.state = csiIgnore
		}
	case csiIgnore:
		if b >= 0x40 && b < 0x7f {
			t.state = ground
		}
	case str:
		if t.strDone {
			t.strDone = false
			if b == '\\' { // ST
				t.state = ground
				return
			}
			// ESC and something else: the string is abandoned and the
			// escape sequence starts.
			t.state = escape
			t.inter = 0
			t.seq, t.seqLost = append(t.seq[:0], 0x1b), false
			t.advance(b)
		}
	}
}

// maxSeq bounds the bytes of an unfinished sequence kept for Dump.
const maxSeq = 256

// keep records a byte of the sequence being read, so that Dump can put a
// fresh terminal in the middle of the same sequence. Of a control string
// only its opening (ESC ] and the like) and a final ESC are kept: the rest
// is skipped anyway.
func (t *Terminal) keep(b byte) {
	if len(t.seq) < maxSeq {
		t.seq = append(t.seq, b)
	} else {
		t.seqLost = true
	}
}

// control runs a C0 control character.
func (t *Terminal) control(b byte) {
	switch b {
	case '\b':
		if t.cur.x > 0 {
			t.cur.x--
		}
		t.cur.wrapNext = false
	case '\t':
		t.tab(1)
	case '\n', '\v', '\f':
		t.index()
		if t.newline {
			t.cur.x = 0
		}
	case '\r':
		t.cur.x = 0
		t.cur.wrapNext = false
	case 0x0e: // SO
		t.cur.gl = 1
	case 0x0f: // SI
		t.cur.gl = 0
	}
}

func (t *Terminal) escDispatch(b byte) {
	switch b {
	case '7':
		t.saveCursor()
	case '8':
		t.restoreCursor()
	case 'D':
		t.index()
	case 'E':
		t.index()
		t.cur.x = 0
	case 'M':
		t.reverseIndex()
	case 'H':
		t.tabs[t.cur.x] = true
	case 'c':
		t.fullReset()
	}
}

func (t *Terminal) escInterDispatch(inter, b byte) {
	switch inter {
	case '(', ')':
		cs := csASCII
		if b == '0' {
			cs = csGraphics
		}
		t.cur.g[inter-'('] = cs
		// ESC # 8 (DECALN, the screen filled with E for alignment) is left
		// out: a test pattern no program draws, and the one sequence that
		// would cost a full screen of work for three bytes.
	}
}

// param returns CSI parameter i, or def when it is missing or 0.
func (t *Terminal) param(i int, def int) int {
	if i >= t.np || t.params[i] == 0 {
		return def
	}
	return int(t.params[i])
}

func (t *Terminal) csiDispatch(final byte) {
	if t.inter != 0 {
		if t.inter == '!' && final == 'p' && t.priv == 0 {
			t.softReset()
		}
		return
	}
	if t.priv != 0 {
		if t.priv == '?' && (final == 'h' || final == 'l') {
			for i := range t.np {
				t.privateMode(t.params[i], final == 'h')
			}
		}
		return
	}
	n := t.param(0, 1)
	switch final {
	case '@': // ICH
		t.insertCells(t.scr.lines[t.cur.y], t.cur.x, n)
		t.cur.wrapNext = false
	case 'A': // CUU
		t.moveUp(n)
	case 'B', 'e': // CUD, VPR
		t.moveDown(n)
	case 'C', 'a': // CUF, HPR
		t.moveTo(t.cur.x+n, t.cur.y)
	case 'D': // CUB
		t.moveTo(t.cur.x-n, t.cur.y)
	case 'E': // CNL
		t.moveDown(n)
		t.cur.x = 0
	case 'F': // CPL
		t.moveUp(n)
		t.cur.x = 0
	case 'G', '`': // CHA, HPA
		t.moveTo(n-1, t.cur.y)
	case 'H', 'f': // CUP, HVP
		t.moveToOrigin(t.param(1, 1)-1, n-1)
	case 'I': // CHT
		t.tab(n)
	case 'J': // ED
		t.eraseDisplay(int32(t.param(0, 0)))
	case 'K': // EL
		t.eraseLine(int32(t.param(0, 0)))
	case 'L': // IL
		if t.cur.y >= t.top && t.cur.y <= t.bot {
			t.insertLines(t.cur.y, n)
			t.moveTo(0, t.cur.y)
		}
	case 'M': // DL
		if t.cur.y >= t.top && t.cur.y <= t.bot {
			t.deleteLines(t.cur.y, n, false)
			t.moveTo(0, t.cur.y)
		}
	case 'P': // DCH
		t.deleteCells(t.scr.lines[t.cur.y], t.cur.x, n)
		t.cur.wrapNext = false
	case 'S': // SU
		t.scrollUp(n)
	case 'T': // SD
		if t.np <= 1 { // with more parameters it is a mouse-tracking request
			t.scrollDown(n)
		}
	case 'X': // ECH
		t.clearCells(t.scr.lines[t.cur.y], t.cur.x, t.cur.x+n)
		t.cur.wrapNext = false
	case 'Z': // CBT
		t.backTab(n)
	case 'b': // REP, at most a row's worth (programs repeat within a row)
		if t.last != 0 {
			w := runeWidth(t.last)
			for range min(n, t.cols) {
				t.put(t.last, w)
			}
		}
	case 'd': // VPA
		t.moveToOrigin(t.cur.x, n-1)
	case 'g': // TBC
		switch t.param(0, 0) {
		case 0:
			t.tabs[t.cur.x] = false
		case 3:
			clear(t.tabs)
		}
	case 'h', 'l':
		for i := range t.np {
			switch t.params[i] {
			case 4:
				t.insert = final == 'h'
			case 20:
				t.newline = final == 'h'
			}
		}
	case 'm':
		t.sgr()
	case 'r': // DECSTBM
		top, bot := t.param(0, 1)-1, t.param(1, t.rows)-1
		bot = min(bot, t.rows-1)
		if top < bot {
			t.top, t.bot = top, bot
			t.moveToOrigin(0, 0)
		}
	case 's': // SCOSC
		if t.np == 0 {
			t.saveCursor()
		}
	case 'u': // SCORC
		if t.np == 0 {
			t.restoreCursor()
		}
	}
}

func (t *Terminal) privateMode(m int32, on bool) {
	switch m {
	case 6: // DECOM
		t.cur.origin = on
		t.moveToOrigin(0, 0)
	case 7: // DECAWM
		t.autowrap = on
		if !on {
			t.cur.wrapNext = false
		}
	case 25: // DECTCEM
		t.hidden = !on
	case 47:
		t.setAlt(on, false, false)
	case 1047:
		t.setAlt(on, on, false)
	case 1048:
		if on {
			t.saveCursor()
		} else {
			t.restoreCursor()
		}
	case 1049:
		t.setAlt(on, on, true)
	}
}

// sgr is SGR: the pen's colours and attributes.
func (t *Terminal) sgr() {
	p := &t.cur.pen
	if t.np == 0 {
		*p = style{}
		return
	}
	for i := 0; i < t.np; i++ {
		v := t.params[i]
		switch {
		case v == 0:
			*p = style{}
		case v == 1:
			p.attr |= attrBold
		case v == 2:
			p.attr |= attrFaint
		case v == 3:
			p.attr |= attrItalic
		case v == 4:
			p.attr |= attrUnderline
			if i+1 < t.np && t.sub&(1<<(i+1)) != 0 { // 4:0 is no underline
				if t.params[i+1] == 0 {
					p.attr &^= attrUnderline
				}
				for i+1 < t.np && t.sub&(1<<(i+1)) != 0 {
					i++
				}
			}
		case v == 5 || v == 6:
			p.attr |= attrBlink
		case v == 7:
			p.attr |= attrInverse
		case v == 8:
			p.attr |= attrInvisible
		case v == 9:
			p.attr |= attrStrike
		case v == 21:
			p.attr |= attrUnderline
		case v == 22:
			p.attr &^= attrBold | attrFaint
		case v == 23:
			p.attr &^= attrItalic
		case v == 24:
			p.attr &^= attrUnderline
		case v == 25:
			p.attr &^= attrBlink
		case v == 27:
			p.attr &^= attrInverse
		case v == 28:
			p.attr &^= attrInvisible
		case v == 29:
			p.attr &^= attrStrike
		case v >= 30 && v <= 37:
			p.fg = colorIndexed | color(v-30)
		case v == 38, v == 48, v == 58:
			var c color
			var ok bool
			i, c, ok = t.extColor(i)
			if ok {
				switch v {
				case 38:
					p.fg = c
				case 48:
					p.bg = c
				}
			}
		case v == 39:
			p.fg = 0
		case v >= 40 && v <= 47:
			p.bg = colorIndexed | color(v-40)
		case v == 49:
			p.bg = 0
		case v >= 90 && v <= 97:
			p.fg = colorIndexed | color(v-90+8)
		case v >= 100 && v <= 107:
			p.bg = colorIndexed | color(v-100+8)
		}
	}
}

// extColor reads the colour of SGR 38/48/58 at parameter i, in either form:
// 38;5;N and 38;2;R;G;B, or with colons 38:5:N, 38:2:R:G:B and
// 38:2:CS:R:G:B. It returns the index of the last parameter it used.
func (t *Terminal) extColor(i int) (int, color, bool) {
	if i+1 < t.np && t.sub&(1<<(i+1)) != 0 {
		// colon form: the sub-parameters that follow
		j := i + 1
		for j+1 < t.np && t.sub&(1<<(j+1)) != 0 {
			j++
		}
		args := t.params[i+1 : j+1]
		switch {
		case len(args) >= 2 && args[0] == 5:
			return j, colorIndexed | color(args[1]&0xff), args[1] < 256
		case len(args) >= 5 && args[0] == 2: // 2:CS:R:G:B
			return j, rgb(args[2], args[3], args[4]), true
		case len(args) == 4 && args[0] == 2: // 2:R:G:B
			return j, rgb(args[1], args[2], args[3]), true
		}
		return j, 0, false
	}
	if i+2 < t.np && t.params[i+1] == 5 {
		n := t.params[i+2]
		return i + 2, colorIndexed | color(n&0xff), n < 256
	}
	if i+4 < t.np && t.params[i+1] == 2 {
		return i + 4, rgb(t.params[i+2], t.params[i+3], t.params[i+4]), true
	}
	return t.np, 0, false // malformed: the rest of the sequence is unusable
}

func rgb(r, g, b int32) color {
	return colorRGB | color(r&0xff)<<16 | color(g&0xff)<<8 | color(b&0xff)
}
