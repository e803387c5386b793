package vt

import (
	"unicode"

	"golang.org/x/text/width"
)

// runeWidth is the number of columns r takes: 0 for combining marks and
// other zero-width characters, 2 for East Asian wide and fullwidth ones
// (which include most emoji), 1 otherwise. Ambiguous-width characters are
// narrow, as in xterm's default.
func runeWidth(r rune) int {
	if r < 0x300 {
		return 1
	}
	if r == 0x200B || r == 0x200C || r == 0x200D || r == 0x2060 || r == 0xFEFF ||
		r >= 0x1160 && r <= 0x11FF || // Hangul vowels and final consonants
		unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) {
		return 0
	}
	if r < 0x1100 {
		return 1
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// decGraphics maps the bytes 0x5f..0x7e to the characters DEC's special
// graphics set shows for them (ESC ( 0): the line-drawing characters of
// top, mc, tmux borders.
var decGraphics = [...]rune{
	' ', // _ blank
	'◆', '▒', '␉', '␌', '␍', '␊', '°', '±', '␤', '␋', '┘', '┐', '┌', '└', '┼', '⎺',
	'⎻', '─', '⎼', '⎽', '├', '┤', '┴', '┬', '│', '≤', '≥', 'π', '≠', '£', '·',
}
