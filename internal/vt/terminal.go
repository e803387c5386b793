package vt

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Size limits. A recording may ask for any size; the emulator keeps at most
// MaxCols x MaxRows cells per screen so a hostile resize cannot exhaust
// memory. Larger sizes are clamped.
const (
	MaxCols = 1024
	MaxRows = 512
)

// Line is one row of the screen, as text.
type Line struct {
	// Text is the row's characters, UTF-8, without trailing blanks unless
	// the row is Wrapped (then a blank at its end separates words). Wide
	// characters appear once. In a callback it is valid until the callback
	// returns.
	Text []byte
	// Wrapped says the row continues on the next one: the text reached the
	// right edge and autowrap carried it over (a soft wrap, not a newline).
	Wrapped bool
	// Stamp is the Terminal's stamp (SetStamp) when the row last changed.
	Stamp int64
}

// Terminal is a terminal emulator. The zero value is not usable; call New.
type Terminal struct {
	// LineOff, if set, is called with each line that leaves the main screen,
	// top first, before it is gone: scrolled off the top of the screen or of
	// a scroll region, wiped by a clear-screen (ED 2, ED 0 from the home
	// position) or a reset (RIS), or cut off by a resize. Blank lines are
	// reported too. Lines of the alternate screen are never reported; see
	// AltWipe.
	LineOff func(Line)

	// AltWipe, if set, is called while the alternate screen is showing,
	// just before its contents go: cleared (ED 2, ED 0 from home), left
	// (the program exits full-screen mode) or reset. The Terminal still
	// shows the old contents, so the callback can read them with AppendRow.
	AltWipe func()

	// Callbacks may read the Terminal (AppendRow, Cursor, ...) but must not
	// Write, Resize or Close it.

	cols, rows int
	main, alt  screen
	scr        *screen
	cur        cursor
	top, bot   int // scroll region, rows top..bot inclusive
	autowrap   bool
	insert     bool
	newline    bool // LNM: LF also returns the carriage
	hidden     bool // cursor hidden (DECTCEM off)
	tabs       []bool
	stamp      int64
	last       rune // last printed character, for REP

	// parser
	state   pstate
	inter   byte // first intermediate byte of an escape or CSI sequence
	priv    byte // CSI private marker: '?', '>', '<', '=' or 0
	np      int  // number of CSI parameters started
	params  [maxParams]int32
	sub     uint32 // bit i: params[i] followed a ':' (a sub-parameter)
	utf     [utf8.UTFMax]byte
	nutf    int
	strDone bool   // in a string, the last byte was ESC (maybe ST follows)
	seq     []byte // the unfinished sequence's bytes, for Dump (see keep)
	seqLost bool   // seq outgrew maxSeq

	text []byte  // scratch for LineOff
	tmp  []*line // scratch for scrolling
}

// cell is one character cell.
type cell struct {
	ch rune // 0: blank; wideTail: right half of a wide character
	style
}

const wideTail rune = -1

type style struct {
	fg, bg color
	attr   attr
}

// color is 0 for the default, colorIndexed|n for palette entry n, or
// colorRGB|0xRRGGBB.
type color uint32

const (
	colorIndexed color = 1 << 24
	colorRGB     color = 2 << 24
	colorKind    color = 0xff << 24
)

type attr uint16

const (
	attrBold attr = 1 << iota
	attrFaint
	attrItalic
	attrUnderline
	attrBlink
	attrInverse
	attrInvisible
	attrStrike
)

// line is a row. Only cells[:used] are stored; every cell from used on is
// fill, a blank that may have a background colour. Clearing the end of a
// row therefore costs nothing however wide the row is, which bounds the
// work any input can cause per byte.
type line struct {
	cells   []cell
	used    int
	fill    cell
	wrapped bool
	stamp   int64
}

// upTo stores cells[:n], writing fill into the cells not stored yet.
func (l *line) upTo(n int) {
	for i := l.used; i < n; i++ {
		l.cells[i] = l.fill
	}
	l.used = max(l.used, n)
}

// at returns cell x.
func (l *line) at(x int) cell {
	if x < l.used {
		return l.cells[x]
	}
	return l.fill
}

type charset uint8

const (
	csASCII charset = iota
	csGraphics
)

// cursor is the cursor and everything DECSC saves with it.
type cursor struct {
	x, y     int
	pen      style
	wrapNext bool // the last column was written: the next character wraps
	origin   bool // DECOM: rows count from the scroll region's top
	g        [2]charset
	gl       int // 0: G0 is in use, 1: G1 (after SO)
}

type screen struct {
	lines    []*line
	saved    cursor
	hasSaved bool
}

// New returns a Terminal of cols x rows cells, clamped to 1..MaxCols and
// 1..MaxRows, showing an empty main screen.
func New(cols, rows int) *Terminal {
	t := &Terminal{}
	t.cols, t.rows = clampSize(cols, rows)
	t.main.lines = newLines(t.cols, t.rows)
	// The alternate screen is made when a program first asks for it.
	t.scr = &t.main
	t.reset()
	return t
}

func clampSize(cols, rows int) (int, int) {
	return max(1, min(cols, MaxCols)), max(1, min(rows, MaxRows))
}

func newLines(cols, rows int) []*line {
	ls := make([]*line, rows)
	cells := make([]cell, cols*rows)
	for i := range ls {
		ls[i] = &line{cells: cells[i*cols : (i+1)*cols : (i+1)*cols]}
	}
	return ls
}

// reset sets the modes, the cursor and the tab stops to their power-on
// values. It does not touch the screens' contents.
func (t *Terminal) reset() {
	t.cur = cursor{}
	t.top, t.bot = 0, t.rows-1
	t.autowrap, t.insert, t.newline, t.hidden = true, false, false, false
	t.main.hasSaved, t.alt.hasSaved = false, false
	t.resetTabs(0)
	t.state = ground
}

func (t *Terminal) resetTabs(from int) {
	if cap(t.tabs) >= t.cols {
		t.tabs = t.tabs[:t.cols]
	} else {
		t.tabs = append(t.tabs[:cap(t.tabs)], make([]bool, t.cols-cap(t.tabs))...)
	}
	for i := from; i < t.cols; i++ {
		t.tabs[i] = i > 0 && i%8 == 0
	}
}

// SetStamp sets the stamp that rows changed from now on carry (Line.Stamp).
// reel's screen-text extractor stamps rows with the event time.
func (t *Terminal) SetStamp(s int64) { t.stamp = s }

// Size returns the terminal's size in cells.
func (t *Terminal) Size() (cols, rows int) { return t.cols, t.rows }

// AltScreen reports whether the alternate screen (a full-screen program's)
// is showing.
func (t *Terminal) AltScreen() bool { return t.scr == &t.alt }

// Cursor returns the cursor's column and row, from 0.
func (t *Terminal) Cursor() (x, y int) { return t.cur.x, t.cur.y }

// Ground reports whether the terminal is between sequences: not inside an
// escape sequence, a control string or a multi-byte character.
func (t *Terminal) Ground() bool { return t.state == ground && t.nutf == 0 }

// CursorVisible reports whether the cursor is shown (DECTCEM).
func (t *Terminal) CursorVisible() bool { return !t.hidden }

// AppendRow appends the text of row y (0 at the top) of the screen showing
// to dst, as Line.Text has it, and returns the extended slice.
func (t *Terminal) AppendRow(dst []byte, y int) []byte {
	return appendText(dst, t.scr.lines[y])
}

// RowInfo returns whether row y (0 at the top) of the screen showing
// continues on the next row, and its stamp; see Line.
func (t *Terminal) RowInfo(y int) (wrapped bool, stamp int64) {
	l := t.scr.lines[y]
	return l.wrapped, l.stamp
}

// Row returns row y (0 at the top) of the screen showing. Its Text is a new
// slice.
func (t *Terminal) Row(y int) Line {
	l := t.scr.lines[y]
	return Line{Text: appendText(nil, l), Wrapped: l.wrapped, Stamp: l.stamp}
}

// Lines returns the text of the screen showing, one string per row, with
// trailing blanks removed from each row and blank rows removed from the
// end.
func (t *Terminal) Lines() []string {
	out := make([]string, 0, t.rows)
	var buf []byte
	for y := range t.rows {
		buf = t.AppendRow(buf[:0], y)
		out = append(out, strings.TrimRight(string(buf), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func appendText(dst []byte, l *line) []byte {
	n := l.used
	for n > 0 && (l.cells[n-1].ch == 0 || l.cells[n-1].ch == ' ') {
		n--
	}
	dst = appendCells(dst, l.cells[:n])
	if l.wrapped { // a full row: its blanks at the end count
		for range len(l.cells) - n {
			dst = append(dst, ' ')
		}
	}
	return dst
}

func appendCells(dst []byte, cells []cell) []byte {
	for _, c := range cells {
		switch {
		case c.ch == 0:
			dst = append(dst, ' ')
		case c.ch == wideTail:
		case c.ch < utf8.RuneSelf:
			dst = append(dst, byte(c.ch))
		default:
			dst = utf8.AppendRune(dst, c.ch)
		}
	}
	return dst
}

// lineOff reports l to LineOff.
func (t *Terminal) lineOff(l *line) {
	if t.LineOff == nil {
		return
	}
	t.text = appendText(t.text[:0], l)
	t.LineOff(Line{Text: t.text, Wrapped: l.wrapped, Stamp: l.stamp})
}

// Resize changes the size of both screens, clamped as in New. Contents are
// kept, not reflowed: rows are cut or padded on the right; when the screen
// gets shorter, rows leave from the top as far as needed to keep the
// cursor's row (reported to LineOff on the main screen), then from the
// bottom. The scroll region is reset.
func (t *Terminal) Resize(cols, rows int) {
	cols, rows = clampSize(cols, rows)
	if cols == t.cols && rows == t.rows {
		return
	}
	for _, s := range []*screen{&t.main, &t.alt} {
		if s.lines == nil {
			continue
		}
		if s == t.scr {
			if n := t.cur.y - (rows - 1); n > 0 {
				for _, l := range s.lines[:n] {
					if s == &t.main {
						t.lineOff(l)
					}
				}
				s.lines = append(s.lines[:0], s.lines[n:]...)
				t.cur.y -= n
			}
		}
		if len(s.lines) > rows {
			s.lines = s.lines[:rows]
		}
		for len(s.lines) < rows {
			s.lines = append(s.lines, &line{stamp: t.stamp})
		}
		for _, l := range s.lines {
			if len(l.cells) < cols && l.fill != (cell{}) {
				// New columns are blank, whatever the fill.
				l.upTo(len(l.cells))
				l.fill = cell{}
			}
			if len(l.cells) > cols {
				l.cells = l.cells[:cols]
				l.used = min(l.used, cols)
				l.wrapped = false
				fixWide(l.cells)
			} else if len(l.cells) < cols {
				l.cells = append(l.cells, make([]cell, cols-len(l.cells))...)
			}
		}
		s.saved.x, s.saved.y = min(s.saved.x, cols-1), min(s.saved.y, rows-1)
	}
	old := t.cols
	t.cols, t.rows = cols, rows
	if cols > old {
		t.resetTabs(old)
	} else {
		t.tabs = t.tabs[:cols]
	}
	t.top, t.bot = 0, rows-1
	t.cur.x, t.cur.y = min(t.cur.x, cols-1), min(t.cur.y, rows-1)
	t.cur.wrapNext = false
}

// fixWide blanks halves of wide characters that lost their other half.
func fixWide(cs []cell) {
	for i := range cs {
		switch {
		case cs[i].ch == wideTail && (i == 0 || cs[i-1].ch == wideTail || cs[i-1].ch == 0 || runeWidth(cs[i-1].ch) != 2):
			cs[i].ch = 0
		case cs[i].ch > 0x1000 && (i == len(cs)-1 || cs[i+1].ch != wideTail) && runeWidth(cs[i].ch) == 2:
			cs[i].ch = 0
		}
	}
}

// blank is an erased cell: no character, the pen's background (xterm's
// background colour erase).
func (t *Terminal) blank() cell { return cell{style: style{bg: t.cur.pen.bg}} }

func (t *Terminal) clearCells(l *line, from, to int) {
	b := t.blank()
	cs := l.cells
	from, to = max(from, 0), min(to, len(cs))
	if from >= to {
		return
	}
	l.stamp = t.stamp
	if from < l.used && cs[from].ch == wideTail && from > 0 {
		cs[from-1].ch = 0 // the left half of a wide character cut in two
	}
	if to == len(cs) { // to the end of the row: no cell to store
		l.upTo(from)
		l.used, l.fill = from, b
		return
	}
	l.upTo(to)
	for i := from; i < to; i++ {
		cs[i] = b
	}
	if to < l.used && cs[to].ch == wideTail {
		cs[to].ch = 0
	}
}

func (t *Terminal) clearLine(l *line) {
	t.clearCells(l, 0, len(l.cells))
	l.wrapped = false
}

// put prints one character of width w at the cursor.
func (t *Terminal) put(r rune, w int) {
	if w == 0 {
		t.combine(r)
		return
	}
	if w > t.cols {
		r, w = ' ', 1
	}
	if t.cur.wrapNext {
		t.wrap()
	}
	if w == 2 && t.cur.x == t.cols-1 {
		if !t.autowrap {
			return
		}
		l := t.scr.lines[t.cur.y]
		t.clearCells(l, t.cur.x, t.cur.x+1)
		t.wrap()
	}
	l := t.scr.lines[t.cur.y]
	if t.insert {
		t.insertCells(l, t.cur.x, w)
	}
	cs := l.cells
	x := t.cur.x
	l.upTo(x + w)
	if cs[x].ch == wideTail && x > 0 {
		cs[x-1].ch = 0
	}
	cs[x] = cell{ch: r, style: t.cur.pen}
	if w == 2 {
		cs[x+1] = cell{ch: wideTail, style: t.cur.pen}
	}
	if e := x + w; e < l.used && cs[e].ch == wideTail {
		cs[e].ch = 0
	}
	l.stamp = t.stamp
	t.last = r
	t.cur.x += w
	if t.cur.x >= t.cols {
		t.cur.x = t.cols - 1
		t.cur.wrapNext = t.autowrap
	}
}

// combine puts a zero-width character on the character before the cursor:
// a combining mark that composes with it (e and U+0301 make é) replaces it
// with the composed character; anything else (a mark with no precomposed
// form, a joiner, a variation selector) is dropped, so a cell holds one
// character.
func (t *Terminal) combine(r rune) {
	x := t.cur.x
	if !t.cur.wrapNext {
		x--
	}
	l := t.scr.lines[t.cur.y]
	if x < 0 || x >= l.used {
		return
	}
	if l.cells[x].ch == wideTail && x > 0 {
		x--
	}
	prev := l.cells[x].ch
	if prev <= 0 {
		return
	}
	var buf [2 * utf8.UTFMax]byte
	pair := utf8.AppendRune(utf8.AppendRune(buf[:0], prev), r)
	composed := norm.NFC.Append(nil, pair...)
	c, n := utf8.DecodeRune(composed)
	if n == len(composed) && c != utf8.RuneError && runeWidth(c) == runeWidth(prev) {
		l.cells[x].ch = c
		l.stamp = t.stamp
	}
}

// putASCII prints a run of printable ASCII bytes: put's loop, one row at a
// time.
func (t *Terminal) putASCII(s []byte) {
	if t.insert || t.cur.g[t.cur.gl] != csASCII || !t.autowrap {
		for _, b := range s {
			t.putByte(b)
		}
		return
	}
	pen := t.cur.pen
	for len(s) > 0 {
		if t.cur.wrapNext {
			t.wrap()
		}
		l := t.scr.lines[t.cur.y]
		cs := l.cells
		x := t.cur.x
		n := min(len(s), t.cols-x)
		if x < l.used && cs[x].ch == wideTail && x > 0 {
			cs[x-1].ch = 0
		}
		if e := x + n; e < l.used && cs[e].ch == wideTail {
			cs[e].ch = 0
		}
		l.upTo(x)
		row := cs[x : x+n]
		for i, b := range s[:n] {
			row[i] = cell{ch: rune(b), style: pen}
		}
		l.used = max(l.used, x+n)
		l.stamp = t.stamp
		t.last = rune(s[n-1])
		s = s[n:]
		t.cur.x += n
		if t.cur.x >= t.cols {
			t.cur.x = t.cols - 1
			t.cur.wrapNext = true
		}
	}
}

// putByte prints a printable ASCII byte through the character set in use.
func (t *Terminal) putByte(b byte) {
	r := rune(b)
	if t.cur.g[t.cur.gl] == csGraphics && b >= 0x5f && b <= 0x7e {
		r = decGraphics[b-0x5f]
	}
	t.put(r, 1)
}

// wrap moves to the start of the next row, marking the row left as
// continued.
func (t *Terminal) wrap() {
	t.scr.lines[t.cur.y].wrapped = true
	t.cur.x = 0
	t.cur.wrapNext = false
	t.index()
}

// index moves the cursor down a row, scrolling the region up when the
// cursor is on its bottom row.
func (t *Terminal) index() {
	t.cur.wrapNext = false
	switch {
	case t.cur.y == t.bot:
		t.scrollUp(1)
	case t.cur.y < t.rows-1:
		t.cur.y++
	}
}

func (t *Terminal) reverseIndex() {
	t.cur.wrapNext = false
	switch {
	case t.cur.y == t.top:
		t.scrollDown(1)
	case t.cur.y > 0:
		t.cur.y--
	}
}

// scrollUp scrolls the region up n rows; rows leaving the main screen go to
// LineOff.
func (t *Terminal) scrollUp(n int) {
	t.deleteLines(t.top, n, t.scr == &t.main)
}

func (t *Terminal) scrollDown(n int) {
	t.insertLines(t.top, n)
}

// deleteLines removes n rows at y, moving the rows below it in the region
// up and filling the bottom of the region with blank rows.
func (t *Terminal) deleteLines(y, n int, report bool) {
	bot := t.bot
	if y < t.top || y > bot {
		return
	}
	n = min(n, bot-y+1)
	if n <= 0 {
		return
	}
	ls := t.scr.lines
	if report {
		for _, l := range ls[y : y+n] {
			t.lineOff(l)
		}
	}
	t.tmp = append(t.tmp[:0], ls[y:y+n]...)
	copy(ls[y:], ls[y+n:bot+1])
	for i, l := range t.tmp {
		t.clearLine(l)
		ls[bot-n+1+i] = l
	}
}

// insertLines inserts n blank rows at y, moving the rows below it in the
// region down; rows pushed past the region's bottom are lost.
func (t *Terminal) insertLines(y, n int) {
	bot := t.bot
	if y < t.top || y > bot {
		return
	}
	n = min(n, bot-y+1)
	if n <= 0 {
		return
	}
	ls := t.scr.lines
	t.tmp = append(t.tmp[:0], ls[bot-n+1:bot+1]...)
	copy(ls[y+n:bot+1], ls[y:bot+1-n])
	for i, l := range t.tmp {
		t.clearLine(l)
		ls[y+i] = l
	}
}

// insertCells shifts the row right by n cells from x, blanking the gap.
func (t *Terminal) insertCells(l *line, x, n int) {
	cs := l.cells
	l.upTo(len(cs))
	n = min(n, len(cs)-x)
	copy(cs[x+n:], cs[x:len(cs)-n])
	b := t.blank()
	for i := x; i < x+n; i++ {
		cs[i] = b
	}
	fixWide(cs)
	l.stamp = t.stamp
}

// deleteCells shifts the row left by n cells at x, blanking the end.
func (t *Terminal) deleteCells(l *line, x, n int) {
	cs := l.cells
	l.upTo(len(cs))
	n = min(n, len(cs)-x)
	copy(cs[x:], cs[x+n:])
	b := t.blank()
	for i := len(cs) - n; i < len(cs); i++ {
		cs[i] = b
	}
	fixWide(cs)
	l.stamp = t.stamp
}

// wipe reports the whole screen showing as about to be lost.
func (t *Terminal) wipe() {
	if t.scr == &t.alt {
		if t.AltWipe != nil {
			t.AltWipe()
		}
		return
	}
	for _, l := range t.main.lines {
		t.lineOff(l)
	}
}

// eraseDisplay is ED.
func (t *Terminal) eraseDisplay(mode int32) {
	t.cur.wrapNext = false
	ls := t.scr.lines
	switch mode {
	case 0:
		if t.cur.x == 0 && t.cur.y == 0 {
			t.wipe()
		}
		t.clearCells(ls[t.cur.y], t.cur.x, t.cols)
		ls[t.cur.y].wrapped = false
		for _, l := range ls[t.cur.y+1:] {
			t.clearLine(l)
		}
	case 1:
		for _, l := range ls[:t.cur.y] {
			t.clearLine(l)
		}
		t.clearCells(ls[t.cur.y], 0, t.cur.x+1)
	case 2:
		t.wipe()
		for _, l := range ls {
			t.clearLine(l)
		}
	}
}

// eraseLine is EL.
func (t *Terminal) eraseLine(mode int32) {
	t.cur.wrapNext = false
	l := t.scr.lines[t.cur.y]
	switch mode {
	case 0:
		t.clearCells(l, t.cur.x, t.cols)
		l.wrapped = false
	case 1:
		t.clearCells(l, 0, t.cur.x+1)
	case 2:
		t.clearLine(l)
	}
}

// moveTo puts the cursor at column x, row y of the screen, clamped.
func (t *Terminal) moveTo(x, y int) {
	t.cur.x = max(0, min(x, t.cols-1))
	t.cur.y = max(0, min(y, t.rows-1))
	t.cur.wrapNext = false
}

// moveToOrigin puts the cursor at x, y counted as CUP does: from the scroll
// region's top in origin mode, and then kept inside the region.
func (t *Terminal) moveToOrigin(x, y int) {
	if t.cur.origin {
		y = max(t.top, min(y+t.top, t.bot))
	}
	t.moveTo(x, y)
}

// moveUp and moveDown stop at the region's margins when the cursor is
// inside the region.
func (t *Terminal) moveUp(n int) {
	lim := 0
	if t.cur.y >= t.top {
		lim = t.top
	}
	t.moveTo(t.cur.x, max(lim, t.cur.y-n))
}

func (t *Terminal) moveDown(n int) {
	lim := t.rows - 1
	if t.cur.y <= t.bot {
		lim = t.bot
	}
	t.moveTo(t.cur.x, min(lim, t.cur.y+n))
}

func (t *Terminal) tab(n int) {
	x := t.cur.x
	for ; n > 0 && x < t.cols-1; n-- {
		for x++; x < t.cols-1 && !t.tabs[x]; x++ {
		}
	}
	t.cur.x = x
	t.cur.wrapNext = false
}

func (t *Terminal) backTab(n int) {
	x := t.cur.x
	for ; n > 0 && x > 0; n-- {
		for x--; x > 0 && !t.tabs[x]; x-- {
		}
	}
	t.cur.x = x
	t.cur.wrapNext = false
}

func (t *Terminal) saveCursor() {
	t.scr.saved = t.cur
	t.scr.hasSaved = true
}

func (t *Terminal) restoreCursor() {
	if !t.scr.hasSaved {
		t.cur = cursor{}
		return
	}
	c := t.scr.saved
	c.x, c.y = min(c.x, t.cols-1), min(c.y, t.rows-1)
	t.cur = c
}

// setAlt switches between the main and the alternate screen. clear erases
// the alternate screen on the way in; save saves and restores the cursor
// (mode 1049).
func (t *Terminal) setAlt(on, clear, save bool) {
	if on == (t.scr == &t.alt) {
		return
	}
	if on {
		if save {
			t.saveCursor()
		}
		t.scr = &t.alt
		if t.alt.lines == nil {
			t.alt.lines = newLines(t.cols, t.rows)
		}
		if clear {
			for _, l := range t.alt.lines {
				t.clearLine(l)
			}
		}
	} else {
		if t.AltWipe != nil {
			t.AltWipe()
		}
		t.scr = &t.main
		if save {
			t.restoreCursor()
		}
	}
	t.cur.wrapNext = false
}

// fullReset is RIS: both screens cleared, everything to its power-on value.
func (t *Terminal) fullReset() {
	t.wipe()
	if t.scr == &t.alt {
		t.scr = &t.main
		t.wipe()
	}
	t.cur.pen = style{}
	for _, s := range []*screen{&t.main, &t.alt} {
		for _, l := range s.lines {
			t.clearLine(l)
		}
	}
	t.reset()
}

// softReset is DECSTR.
func (t *Terminal) softReset() {
	x, y := t.cur.x, t.cur.y
	t.cur = cursor{x: x, y: y}
	t.top, t.bot = 0, t.rows-1
	t.insert, t.hidden, t.autowrap = false, false, true
	t.scr.hasSaved = false
}
