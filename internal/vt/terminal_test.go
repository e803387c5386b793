package vt

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScreen(t *testing.T) {
	tests := []struct {
		name       string
		cols, rows int
		in         string
		want       []string
		x, y       int
	}{
		{"plain", 10, 3, "ab\r\ncd", []string{"ab", "cd"}, 2, 1},
		{"wrap", 5, 3, "abcdefgh", []string{"abcde", "fgh"}, 3, 1},
		{"pending wrap at the edge", 5, 3, "abcde", []string{"abcde"}, 4, 0},
		{"CR after the edge stays on the row", 5, 3, "abcde\rX", []string{"Xbcde"}, 1, 0},
		{"progress bar with CR", 20, 2, "  0%\r 50%\r100%\r\n", []string{"100%"}, 0, 1},
		{"backspace overwrite", 10, 1, "abc\b\bX", []string{"aXc"}, 2, 0},
		{"tabs", 20, 1, "a\tb\tc", []string{"a       b       c"}, 17, 0},
		{"scroll", 4, 2, "1\r\n2\r\n3\r\n4", []string{"3", "4"}, 1, 1},
		{"cursor position and erase", 10, 3, "xxxxxxxxxx\r\nyyyyyyyyyy\x1b[1;3H\x1b[K\x1b[2;5H\x1b[1K", []string{"xx", "     yyyyy"}, 4, 1},
		{"erase display below", 5, 3, "aaaaa\r\nbbbbb\r\nccccc\x1b[2;3H\x1b[J", []string{"aaaaa", "bb"}, 2, 1},
		{"insert and delete chars", 10, 1, "abcdef\x1b[1;2H\x1b[2@XY\x1b[1;8H\x1b[P", []string{"aXYbcde"}, 7, 0},
		{"insert mode", 10, 1, "abc\x1b[1;1H\x1b[4hXY\x1b[4l", []string{"XYabc"}, 2, 0},
		{"scroll region", 5, 4, "top\r\n1\r\n2\r\nbot\x1b[2;3r\x1b[3;1H\r\nnew", []string{"top", "2", "new", "bot"}, 3, 2},
		{"insert and delete lines", 5, 4, "a\r\nb\r\nc\r\nd\x1b[2;1H\x1b[L\x1b[4;1H\x1b[M", []string{"a", "", "b"}, 0, 3},
		{"reverse index at the top scrolls down", 5, 3, "a\r\nb\x1b[H\x1bMz", []string{"z", "a", "b"}, 1, 0},
		{"wide characters", 6, 2, "日本語x", []string{"日本語", "x"}, 1, 1},
		{"wide character does not split at the edge", 5, 2, "abcd日", []string{"abcd", "日"}, 2, 1},
		{"overwriting half a wide character blanks it", 6, 1, "日本\x1b[1;2Hx", []string{" x本"}, 2, 0},
		{"combining marks compose", 5, 1, "e\u0301xa\u0308\u0301", []string{"éxä"}, 3, 0},
		{"a mark with nothing to compose with is dropped", 5, 1, "\u0301q\u0353", []string{"q"}, 1, 0},
		{"DEC line drawing", 5, 1, "\x1b(0lqqk\x1b(Bx", []string{"┌──┐x"}, 4, 0},
		{"SO/SI switch to G1", 5, 1, "\x1b)0a\x0eq\x0fq", []string{"a─q"}, 3, 0},
		{"OSC title and DCS are skipped", 10, 1, "\x1b]0;title\x07a\x1bP1$r\x1b\\b\x1b]8;;http://x\x1b\\c", []string{"abc"}, 3, 0},
		{"queries are ignored", 10, 1, "a\x1b[6n\x1b[c\x1b[>c\x1b]11;?\x07b", []string{"ab"}, 2, 0},
		{"REP repeats the last character", 10, 1, "ab\x1b[3b", []string{"abbbb"}, 5, 0},
		{"autowrap off overwrites the last column", 4, 2, "\x1b[?7labcdef", []string{"abcf"}, 3, 0},
		{"origin mode", 5, 4, "\x1b[2;3r\x1b[?6h\x1b[1;1Hx\x1b[9;1Hy", []string{"", "x", "y"}, 1, 2},
		{"save and restore cursor", 10, 2, "ab\x1b7\x1b[2;5Hcd\x1b8e", []string{"abe", "    cd"}, 3, 0},
		{"invalid UTF-8", 5, 1, "a\xffb", []string{"a\ufffdb"}, 3, 0},
		{"CAN aborts a sequence", 5, 1, "\x1b[3\x18x", []string{"x"}, 1, 0},
		{"DECALN is ignored", 3, 2, "a\x1b#8", []string{"a"}, 1, 0},
		{"RIS clears", 5, 2, "abc\x1b[31m\x1bcx", []string{"x"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term := New(tt.cols, tt.rows)
			term.WriteString(tt.in)
			if diff := cmp.Diff(tt.want, term.Lines()); diff != "" {
				t.Errorf("screen (-want +got):\n%s", diff)
			}
			if x, y := term.Cursor(); x != tt.x || y != tt.y {
				t.Errorf("cursor at %d,%d, want %d,%d", x, y, tt.x, tt.y)
			}
		})
	}
}

// Every split of the input across writes gives the same screen: escape
// sequences and UTF-8 characters may be cut anywhere.
func TestSplitWrites(t *testing.T) {
	in := "\x1b[1;31mré\x1b]0;t\x07d日本\x1b[0m\r\n\x1b(0q\x1b(Bz\xe2\x9c\x93"
	whole := New(10, 3)
	whole.WriteString(in)
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			term := New(10, 3)
			term.WriteString(in[:i])
			term.WriteString(in[i:j])
			term.WriteString(in[j:])
			if diff := cmp.Diff(whole.Lines(), term.Lines()); diff != "" {
				t.Fatalf("split at %d, %d (-whole +split):\n%s", i, j, diff)
			}
			if string(term.Dump()) != string(whole.Dump()) {
				t.Fatalf("split at %d, %d: dump %q, want %q", i, j, term.Dump(), whole.Dump())
			}
		}
	}
}

func TestLineOff(t *testing.T) {
	term := New(5, 3)
	var got []string
	term.LineOff = func(l Line) {
		got = append(got, fmt.Sprintf("%q wrapped=%v stamp=%d", l.Text, l.Wrapped, l.Stamp))
	}
	term.SetStamp(1)
	term.WriteString("one\r\n")
	term.SetStamp(2)
	term.WriteString("abcdefg\r\n")
	term.SetStamp(3)
	term.WriteString("x\r\n")
	// Leaves: "one" (when "x\r\n" scrolls), then "abcde" wrapped.
	term.SetStamp(4)
	term.WriteString("\x1b[H\x1b[2J") // clear: the rest leaves
	term.WriteString("\x1b[?1049hfull\x1b[2J\x1b[?1049l")
	want := []string{
		`"one" wrapped=false stamp=1`,
		`"abcde" wrapped=true stamp=2`,
		`"fg" wrapped=false stamp=2`,
		`"x" wrapped=false stamp=3`,
		`"" wrapped=false stamp=3`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines off (-want +got):\n%s", diff)
	}
}

func TestAltScreen(t *testing.T) {
	term := New(10, 3)
	var wiped []string
	term.AltWipe = func() {
		wiped = append(wiped, strings.Join(term.Lines(), "|"))
	}
	term.LineOff = func(l Line) { t.Errorf("line %q reported off the main screen", l.Text) }
	term.WriteString("$ vim\x1b[?1049h\x1b[H\x1b[2Jedit me")
	if !term.AltScreen() {
		t.Fatal("not on the alternate screen after 1049h")
	}
	term.WriteString("\x1b[2J\x1b[Hagain")
	term.WriteString("\x1b[?1049l")
	if term.AltScreen() {
		t.Fatal("still on the alternate screen after 1049l")
	}
	if diff := cmp.Diff([]string{"$ vim"}, term.Lines()); diff != "" {
		t.Errorf("main screen after the full-screen program (-want +got):\n%s", diff)
	}
	if x, y := term.Cursor(); x != 5 || y != 0 {
		t.Errorf("cursor at %d,%d after 1049l, want 5,0 (restored)", x, y)
	}
	want := []string{"", "edit me", "again"} // the clear on entry, the ED 2, the exit
	if diff := cmp.Diff(want, wiped); diff != "" {
		t.Errorf("AltWipe saw (-want +got):\n%s", diff)
	}
}

func TestResize(t *testing.T) {
	term := New(10, 4)
	var off []string
	term.LineOff = func(l Line) { off = append(off, string(l.Text)) }
	term.WriteString("1\r\n2\r\n3\r\n4 long")
	term.Resize(6, 2) // the cursor is on the last row: the top rows leave
	if diff := cmp.Diff([]string{"3", "4 long"}, term.Lines()); diff != "" {
		t.Errorf("after shrinking (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1", "2"}, off); diff != "" {
		t.Errorf("lines off (-want +got):\n%s", diff)
	}
	if x, y := term.Cursor(); x != 5 || y != 1 {
		t.Errorf("cursor at %d,%d, want 5,1", x, y)
	}
	term.Resize(8, 3)
	term.WriteString("\r\nnext row")
	if diff := cmp.Diff([]string{"3", "4 long", "next row"}, term.Lines()); diff != "" {
		t.Errorf("after growing (-want +got):\n%s", diff)
	}
	term.Resize(1<<20, 1<<20) // a hostile size is clamped
	if c, r := term.Size(); c != MaxCols || r != MaxRows {
		t.Errorf("size %dx%d, want %dx%d", c, r, MaxCols, MaxRows)
	}
}

// replay writes a terminal's dump to a fresh terminal of its size.
func replay(t *Terminal) *Terminal {
	cols, rows := t.Size()
	fresh := New(cols, rows)
	fresh.Write(t.Dump())
	return fresh
}

func TestDumpReplays(t *testing.T) {
	tests := []struct{ name, in string }{
		{"colours and attributes", "\x1b[1;3;4;31;42mbold\x1b[0m \x1b[38;5;208mindexed\x1b[38;2;1;2;3;48:2::4:5:6mrgb\x1b[7minverse\x1b[0m\r\nplain"},
		{"pending wrap", "\x1b[2;1H0123456789"},
		{"soft wrap", "0123456789abcdef"},
		{"alternate screen over a shell", "$ top\x1b7\x1b[5;5H\x1b8\x1b[?1049h\x1b[H\x1b[2J\x1b[44m top \x1b[0m\x1b[3;2H"},
		{"scroll region, origin, modes", "\x1b[2;4r\x1b[?6h\x1b[2;3Hx\x1b[4h\x1b[?25l\x1b[?7l\x1b[33m"},
		{"tab stops and charsets", "\x1b[3g\x1b[5G\x1bH\x1b[1G\x1b(0\x1b)0\x0e"},
		{"wide characters", "日本語\x1b[1;10H✓x"},
		{"coloured blanks", "\x1b[41m\x1b[2K\x1b[0mx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term := New(10, 5)
			term.WriteString(tt.in)
			again := replay(term)
			checkSame(t, term, again)
			// Output after the dump lands as it would have.
			more := "\x1bD\x1bMzz\tq\r\nline"
			term.WriteString(more)
			again.WriteString(more)
			checkSame(t, term, again)
		})
	}
}

// checkSame fails unless b shows what a shows, the same way.
func checkSame(t *testing.T, a, b *Terminal) {
	t.Helper()
	if diff := cmp.Diff(a.Lines(), b.Lines()); diff != "" {
		t.Errorf("screen (-original +replayed):\n%s", diff)
	}
	ax, ay := a.Cursor()
	bx, by := b.Cursor()
	if ax != bx || ay != by || a.AltScreen() != b.AltScreen() || a.CursorVisible() != b.CursorVisible() {
		t.Errorf("cursor %d,%d alt=%v visible=%v; replayed %d,%d alt=%v visible=%v",
			ax, ay, a.AltScreen(), a.CursorVisible(), bx, by, b.AltScreen(), b.CursorVisible())
	}
	if da, db := a.Dump(), b.Dump(); string(da) != string(db) {
		t.Errorf("dumps differ:\noriginal %q\nreplayed %q", da, db)
	}
}

func BenchmarkWrite(b *testing.B) {
	var plain, colour strings.Builder
	for i := 0; plain.Len() < 1<<20; i++ {
		fmt.Fprintf(&plain, "2026-01-01T00:00:%02d INFO request id=%d path=/api/v1/things status=200\r\n", i%60, i)
		fmt.Fprintf(&colour, "-rw-r--r-- 1 root root %6d Jan  1 \x1b[01;34mdir%d\x1b[0m \x1b[32mfile\x1b[0m\r\n", i, i)
	}
	for _, in := range []struct{ name, data string }{{"plain", plain.String()}, {"colour", colour.String()}} {
		b.Run(in.name, func(b *testing.B) {
			term := New(100, 30)
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				term.WriteString(in.data)
			}
		})
	}
}

// BenchmarkHostile measures the worst work per byte: sequences that each
// touch a whole screen of the largest size (scroll by 65535 rows, clear,
// reset, repeat, insert), mixed with text. A recording made of them
// should not stall indexing.
func BenchmarkHostile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	alpha := []string{"\x1b[", "65535", ";", "b", "@", "S", "T", "L", "M", "\x1b[?1049h", "\x1b[?1049l", "\x1b#8",
		"\x1b[2J", "x", "日", "\r\n", "\x1b]0;", "\x07", "\x1bc", "\x1b[1;1r", "\x1b[?6h", "\x1b[4h", "\t", "\x1b[99I", "\x1b[41m", "\x1b[K"}
	var in []byte
	for len(in) < 1<<20 {
		in = append(in, alpha[r.IntN(len(alpha))]...)
	}
	term := New(MaxCols, MaxRows)
	term.LineOff = func(Line) {}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		term.Write(in)
	}
}
