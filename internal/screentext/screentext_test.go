package screentext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

// line is a line of output with its time, for comparisons.
type line struct {
	T    float64
	Text string
}

func lines(chunks []Chunk) []line {
	var out []line
	for _, c := range chunks {
		texts := strings.Split(strings.TrimSuffix(c.Text, "\n"), "\n")
		for i, text := range texts {
			out = append(out, line{c.Times[i], text})
		}
	}
	return out
}

type ev struct {
	t    float64
	code string
	data string
}

func run(t *testing.T, cols, rows int, opt Options, events []ev) []Chunk {
	t.Helper()
	var chunks []Chunk
	x := New(asciicast.Header{Width: cols, Height: rows}, opt, func(c Chunk) { chunks = append(chunks, c) })
	for _, e := range events {
		if err := x.Event(asciicast.Event{Time: e.t, Code: e.code, Data: e.data}); err != nil {
			t.Fatal(err)
		}
	}
	x.Close()
	checkChunks(t, chunks, opt)
	return chunks
}

// checkChunks checks what every chunk promises.
func checkChunks(t *testing.T, chunks []Chunk, opt Options) {
	t.Helper()
	maxBytes := opt.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	for i, c := range chunks {
		n := strings.Count(c.Text, "\n")
		if n == 0 || n != len(c.Times) || !strings.HasSuffix(c.Text, "\n") {
			t.Fatalf("chunk %d: %d lines, %d times: %q", i, n, len(c.Times), c.Text)
		}
		last := c.Text[:len(c.Text)-1]
		last = last[strings.LastIndexByte(last, '\n')+1:]
		if len(c.Text)-len(last)-1 >= maxBytes {
			t.Fatalf("chunk %d: %d bytes before its last line, the limit is %d", i, len(c.Text)-len(last)-1, maxBytes)
		}
		for _, tm := range c.Times {
			if tm < c.Start || tm > c.End {
				t.Fatalf("chunk %d: line time %g outside %g..%g", i, tm, c.Start, c.End)
			}
		}
		if strings.ContainsAny(c.Text, "\x1b\r") {
			t.Fatalf("chunk %d: control characters in %q", i, c.Text)
		}
	}
}

func TestShellLinesCountOnce(t *testing.T) {
	events := []ev{{0, "o", "$ "}}
	for i, c := range "ls -l" {
		events = append(events, ev{1 + 0.1*float64(i), "i", string(c)}, ev{1 + 0.1*float64(i), "o", string(c)})
	}
	events = append(events,
		ev{2, "o", "\r\nfile1\r\nfile2\r\n$ "},
		ev{40, "o", "cat notes\r\nline a\r\nline b\r\nline c\r\nline d\r\n$ "}, // a new bucket: the screen is taken first
		ev{41, "i", "secret typed text"},
		ev{70, "o", "exit\r\n"},
	)
	got := lines(run(t, 20, 4, Options{}, events))
	want := []line{
		// At the boundary before t=40, the screen as it was.
		{1.4, "$ ls -l"}, {2, "file1"}, {2, "file2"}, {2, "$"},
		// Lines that then scroll off are not taken again, except the
		// prompt, which changed.
		{40, "$ cat notes"}, {40, "line a"},
		// At the boundary before t=70.
		{40, "line b"}, {40, "line c"}, {40, "line d"}, {40, "$"},
		// At the end: "$ exit" is new; the others are still there.
		{70, "$ exit"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestWrappedLinesJoined(t *testing.T) {
	long := "alpha beta gamma delta epsilon"
	got := lines(run(t, 10, 3, Options{}, []ev{
		{1, "o", long + "\r\n"},     // 3 rows: scrolls one row off the top
		{2, "o", "x\r\ny\r\nz\r\n"}, // the rest scrolls off
	}))
	want := []line{{1, long}, {2, "x"}, {2, "y"}, {2, "z"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestFullScreen(t *testing.T) {
	events := []ev{{0, "o", "$ top\r\n\x1b[?1049h"}}
	for s := 1; s <= 70; s++ {
		events = append(events, ev{float64(s), "o", fmt.Sprintf(
			"\x1b[H\x1b[2Jtop - 10:00:%02d up 1 day\r\n  PID USER  COMMAND\r\n    1 root  systemd\r\n  %3d root  worker", s%60, s%3)})
	}
	events = append(events, ev{71, "o", "\x1b[?1049l$ "})
	got := lines(run(t, 30, 6, Options{}, events))
	// Each clear takes the screen; a line already taken in this
	// full-screen session is not taken again.
	var want []line
	for s := 1; s <= 70; s++ {
		if s <= 60 { // 61..70 show the same clock text as 1..10
			want = append(want, line{float64(s), fmt.Sprintf("top - 10:00:%02d up 1 day", s%60)})
		}
		if s == 1 {
			want = append(want, line{1, "PID USER  COMMAND"}, line{1, "1 root  systemd"})
		}
		if s <= 3 {
			want = append(want, line{float64(s), fmt.Sprintf("%d root  worker", s%3)})
		}
	}
	want = append(want, line{0, "$ top"}, line{71, "$"})
	for i := range want {
		want[i].Text = strings.TrimSpace(want[i].Text)
	}
	for i := range got {
		got[i].Text = strings.TrimSpace(got[i].Text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestKubernetesResize(t *testing.T) {
	var chunks []Chunk
	h := asciicast.Header{Width: 20, Height: 5, Kubernetes: &asciicast.Kubernetes{PodName: "p"}}
	x := New(h, Options{}, func(c Chunk) { chunks = append(chunks, c) })
	// Tailscale's Kubernetes recorder writes "ROWSxCOLS".
	if err := x.Event(asciicast.Event{Time: 0, Code: "r", Data: "5x60"}); err != nil {
		t.Fatal(err)
	}
	x.Event(asciicast.Event{Time: 1, Code: "o", Data: "\x1b[1;50Hx"}) // column 50 exists only if 60 is the width
	x.Close()
	if diff := cmp.Diff([]line{{1, strings.Repeat(" ", 49) + "x"}}, lines(chunks)); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// A live session that goes idle: Tick closes the bucket.
func TestTick(t *testing.T) {
	var chunks []Chunk
	x := New(asciicast.Header{Width: 20, Height: 3}, Options{}, func(c Chunk) { chunks = append(chunks, c) })
	x.OutputString(1, "$ make\r\nbuilding\r\n")
	x.Tick(29)
	if len(chunks) != 0 {
		t.Fatalf("chunk before the bucket ended: %+v", chunks)
	}
	x.Tick(31)
	if diff := cmp.Diff([]line{{1, "$ make"}, {1, "building"}}, lines(chunks)); diff != "" {
		t.Errorf("after the bucket ended (-want +got):\n%s", diff)
	}
	x.OutputString(32, "done\r\n")
	x.Close()
	if diff := cmp.Diff([]line{{1, "$ make"}, {1, "building"}, {32, "done"}}, lines(chunks)); diff != "" {
		t.Errorf("at the end (-want +got):\n%s", diff)
	}
}

// A malformed line is skipped; what follows it is read.
func TestMalformedLine(t *testing.T) {
	rec := `{"version":2,"width":20,"height":3}
[1,"o","before\r\n"]
[2,"o",
not json at all
[3,"o","after\r\n"]
`
	var chunks []Chunk
	if err := Extract(strings.NewReader(rec), Options{}, func(c Chunk) { chunks = append(chunks, c) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]line{{1, "before"}, {3, "after"}}, lines(chunks)); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestMaxBytes(t *testing.T) {
	var events []ev
	for i := range 500 {
		events = append(events, ev{float64(i) / 100, "o", fmt.Sprintf("log line number %d\r\n", i)})
	}
	chunks := run(t, 80, 24, Options{MaxBytes: 1000}, events)
	if len(chunks) < 9 {
		t.Errorf("%d chunks of at most 1000 bytes for ~10 KB of text", len(chunks))
	}
	if n := len(lines(chunks)); n != 500 {
		t.Errorf("%d lines, want 500", n)
	}
}

// readEvents reads a recording's events.
func readEvents(t *testing.T, path string) (asciicast.Header, []asciicast.Event) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := asciicast.NewDecoder(f)
	h, err := dec.Header()
	if err != nil {
		t.Fatal(err)
	}
	var evs []asciicast.Event
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return h, evs
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
}

// Real recordings (bench/corpus output, in internal/vt/testdata): the text
// is what was on the screen, and feeding events one by one gives what
// Extract gives.
func TestRealRecordings(t *testing.T) {
	tests := []struct {
		file  string
		want  []string // lines that must be there, once each
		never []string // text that must not be there
	}{
		{"bash.cast", []string{
			"downloading package-1.2.3.tar.gz 100%",
			"héllo wörld ✓ 日本語",
			strings.TrimSpace(strings.Repeat("", 0) + seq(1, 400)),
		}, []string{"\x1b", "01;34m", "downloading package-1.2.3.tar.gz  40%"}},
		{"vim.cast", []string{
			" 81 The fix: rotate logs hourly and alert at 80% volume usage.",
		}, []string{"[6n", "\x1bP"}},
		{"top.cast", nil, []string{"\x1b", "[39;49m"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("..", "vt", "testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var whole []Chunk
			if err := Extract(bytes.NewReader(data), Options{}, func(c Chunk) { whole = append(whole, c) }); err != nil {
				t.Fatal(err)
			}
			checkChunks(t, whole, Options{})
			h, evs := readEvents(t, path)
			var inc []Chunk
			x := New(h, Options{}, func(c Chunk) { inc = append(inc, c) })
			for _, e := range evs {
				x.Event(e)
			}
			x.Close()
			if diff := cmp.Diff(whole, inc); diff != "" {
				t.Errorf("event by event differs from Extract (-Extract +events):\n%s", diff)
			}
			var all strings.Builder
			for _, c := range whole {
				all.WriteString(c.Text)
			}
			text := "\n" + all.String()
			for _, w := range tt.want {
				if n := strings.Count(text, "\n"+w+"\n"); n != 1 {
					t.Errorf("line %q appears %d times, want once", w, n)
				}
			}
			for _, nv := range tt.never {
				if strings.Contains(text, nv) {
					t.Errorf("text holds %q", nv)
				}
			}
			if len(whole) == 0 {
				t.Error("no chunks")
			}
		})
	}
}

func seq(a, b int) string {
	var s []string
	for i := a; i <= b; i++ {
		s = append(s, fmt.Sprint(i))
	}
	return strings.Join(s, " ")
}

// A program that redraws the main screen in place (top does) is taken at
// bucket boundaries and at the end, not at every frame.
func TestRedrawInPlace(t *testing.T) {
	var events []ev
	for s := 0; s < 100; s++ {
		events = append(events, ev{float64(s), "o", fmt.Sprintf("\x1b[H\x1b[Ktop - up %d s\r\n\x1b[Kload %d\r\n\x1b[Kstatic row", s, s%2)})
	}
	got := lines(run(t, 30, 5, Options{}, events))
	var headers []line
	for _, l := range got {
		if strings.HasPrefix(l.Text, "top - ") {
			headers = append(headers, l)
		}
	}
	want := []line{{29, "top - up 29 s"}, {59, "top - up 59 s"}, {89, "top - up 89 s"}, {99, "top - up 99 s"}}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers taken (-want +got):\n%s", diff)
	}
}

func FuzzExtract(f *testing.F) {
	for _, name := range []string{"bash.cast", "vim.cast"} {
		if b, err := os.ReadFile(filepath.Join("..", "vt", "testdata", name)); err == nil {
			f.Add(b[:min(len(b), 4000)])
		}
	}
	f.Add([]byte(`{"version":2,"width":5,"height":2}` + "\n[1,\"o\",\"abcdefgh\\r\\n\"]\n[2,\"r\",\"3x1\"]\n[1.5,\"o\",\"\\u001b[?1049hxx\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var chunks []Chunk
		Extract(bytes.NewReader(data), Options{Span: 1, MaxBytes: 64}, func(c Chunk) { chunks = append(chunks, c) })
		checkChunks(t, chunks, Options{MaxBytes: 64})
	})
}

// BenchmarkExtract measures Extract on the real recordings in
// internal/vt/testdata, in MB of cast per second. bench/indexing measures
// the same on a full corpus.
func BenchmarkExtract(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("..", "vt", "testdata", "*.cast"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(file), ".cast"), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				Extract(bytes.NewReader(data), Options{}, func(Chunk) {})
			}
		})
	}
}
