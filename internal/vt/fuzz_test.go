package vt

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var rep = regexp.MustCompile(`\x1b\[[0-9;:]*b`)

// FuzzTerminal feeds arbitrary output: nothing panics or hangs, the screen
// and a row's text stay in bounds, and the dump replayed into a fresh
// terminal reproduces the state (screen text, cursor, alternate screen,
// and the dump itself), even in the middle of a sequence: the rest of the
// output then lands the same on both (unless it holds REP, whose character
// a dump does not carry).
func FuzzTerminal(f *testing.F) {
	for _, s := range []string{
		"hello\r\nworld", "\x1b[2;4r\x1b[?6h\x1b[3;1Hx\x1b[?1049h\x1b[41mz", "日本語\x1b[1;10H✓", "\x1b[?7l0123456789abc",
		"\x1b(0lqk\x0e\x1b)0q", "\x1b[3g\x1bH\x1b[4h\x1b[20h", "\x1b[38:2::1:2:3m\x1b[4:0m\x1b]0;t\x07\x1bP\x1b\\",
		"\x1b[99999999999999999999b\x1b[65535S\x1b[65535@", "\x1b7\x1b[?1049h\x1b[5;5H\x1b8\x1b[?1049l",
	} {
		f.Add([]byte(s), uint8(3), uint8(10), uint8(5), uint8(0))
	}
	files, _ := filepath.Glob("testdata/*.cast")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		for i, part := range strings.Split(string(b), "\n") {
			if i > 0 && i%40 == 0 {
				f.Add([]byte(part), uint8(len(part)/2), uint8(80), uint8(24), uint8(i))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, split, cols, rows, resize uint8) {
		term := New(int(cols%120)+1, int(rows%40)+1)
		term.LineOff = func(l Line) {
			if len(l.Text) > 4*MaxCols {
				t.Fatalf("line of %d bytes", len(l.Text))
			}
		}
		term.AltWipe = func() { term.Lines() }
		cut := min(int(split), len(data))
		if resize%4 == 1 {
			term.Write(data[:cut/2])
			term.Resize(int(resize%50)+1, int(resize%20)+1)
			term.Write(data[cut/2 : cut])
		} else {
			term.Write(data[:cut])
		}
		again := replay(term)
		checkSame(t, term, again)
		term.Write(data[cut:])
		if !rep.Match(data[cut:]) {
			again.Write(data[cut:])
			checkSame(t, term, again)
		}
		c, r := term.Size()
		if x, y := term.Cursor(); x < 0 || x >= c || y < 0 || y >= r {
			t.Fatalf("cursor %d,%d outside %dx%d", x, y, c, r)
		}
		if n := len(term.Lines()); n > r {
			t.Fatalf("%d lines on a %d-row screen", n, r)
		}
		checkSame(t, term, replay(term))
	})
}
