// Command vtcompare compares reel's terminal emulator (internal/vt) with
// the Go emulators it could have used instead, for correctness and speed.
// It is a module of its own so that the others never enter reel's go.mod.
//
//	cd bench/vtcompare && go run . -corpus /tmp/corpus
//
// Correctness, 1: the output of real programs in internal/vt/testdata (bash,
// top, vim, recorded by bench/corpus) is played into each emulator and its
// screen compared, row by row, with tmux's at the checkpoints of the
// *.golden files (internal/vt's known answers).
//
// Correctness, 2: 30 short outputs that each exercise one behaviour
// (wrapping, erasing, regions, wide characters, character sets, modes) are
// played into tmux live (it must be installed) and into each emulator.
// tmux is a reference, not the truth: where it departs from xterm (HPR is
// not implemented; after a pending wrap its cursor sits past the edge, so
// BS lands one column further right; overwriting half a wide character
// keeps the other half; capture-pane shows DEC line-drawing characters as
// the letters that select them) reel follows xterm.
//
// Speed: each emulator is fed the output events of every kind of recording
// in the corpus (up to -mib MiB each, the median of -runs runs, one
// goroutine), in MB of output per second.
//
// The candidates: github.com/charmbracelet/x/vt v0.1.0 (maintained, the
// one reel's issue named), and github.com/hinshun/vt10x (a port of st,
// last changed in 2022).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	cvt "github.com/charmbracelet/x/vt"
	"github.com/hinshun/vt10x"
	"golang.org/x/text/unicode/norm"

	"github.com/reel-rec/reel/internal/asciicast"
	reelvt "github.com/reel-rec/reel/internal/vt"
)

// emulator is what the comparison needs of one.
type emulator struct {
	name string
	new  func(cols, rows int) screen
}

type screen interface {
	Write(p []byte) (int, error)
	Lines() []string
	Close()
}

var emulators = []emulator{
	{"reel internal/vt", func(c, r int) screen { return reelScreen{reelvt.New(c, r)} }},
	{"charmbracelet/x/vt v0.1.0", newCharm},
	{"hinshun/vt10x", func(c, r int) screen {
		return &vt10xScreen{vt10x.New(vt10x.WithSize(c, r)), c, r}
	}},
}

type reelScreen struct{ *reelvt.Terminal }

func (reelScreen) Close() {}

type charmScreen struct {
	e          *cvt.Emulator
	done       chan struct{}
	cols, rows int
}

func newCharm(cols, rows int) screen {
	e := cvt.NewEmulator(cols, rows)
	s := &charmScreen{e: e, done: make(chan struct{}), cols: cols, rows: rows}
	// Its replies to queries go to a pipe: without a reader, a query
	// blocks Write for ever.
	go func() { io.Copy(io.Discard, e); close(s.done) }()
	return s
}

func (s *charmScreen) Write(p []byte) (int, error) {
	n, err := s.e.Write(p)
	s.e.ClearScrollback() // keeps its 10,000-line history from costing O(n) per line
	return n, err
}

func (s *charmScreen) Lines() []string {
	var out []string
	for y := range s.e.Height() {
		var b strings.Builder
		for x := 0; x < s.e.Width(); {
			c := s.e.CellAt(x, y)
			w := 1
			switch {
			case c == nil || c.Content == "":
				b.WriteByte(' ')
			default:
				b.WriteString(c.Content)
				w = max(1, c.Width)
			}
			x += w
		}
		out = append(out, b.String())
	}
	return trim(out)
}

func (s *charmScreen) Close() { s.e.Close(); <-s.done }

type vt10xScreen struct {
	t          vt10x.Terminal
	cols, rows int
}

func (s *vt10xScreen) Write(p []byte) (int, error) { return s.t.Write(p) }

func (s *vt10xScreen) Lines() []string {
	var out []string
	for y := range s.rows {
		var b strings.Builder
		for x := range s.cols {
			r := s.t.Cell(x, y).Char
			if r == 0 {
				r = ' '
			}
			b.WriteRune(r)
		}
		out = append(out, b.String())
	}
	return trim(out)
}

func (s *vt10xScreen) Close() {}

func trim(rows []string) []string {
	for i := range rows {
		rows[i] = strings.TrimRight(rows[i], " ")
	}
	for len(rows) > 0 && rows[len(rows)-1] == "" {
		rows = rows[:len(rows)-1]
	}
	return rows
}

func main() {
	testdata := flag.String("testdata", "../../internal/vt/testdata", "directory of *.cast recordings with *.golden screens from tmux")
	corpus := flag.String("corpus", "", "corpus made by bench/corpus, for the speed figures (optional)")
	mib := flag.Int("mib", 16, "MiB of each kind of recording to feed")
	runs := flag.Int("runs", 3, "runs of each speed measurement (the median is reported)")
	flag.Parse()
	fmt.Printf("# cd bench/vtcompare && go run . %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("# %s, GOMAXPROCS=%d\n\n", runtime.Version(), runtime.GOMAXPROCS(0))
	correctness(*testdata)
	edgeCases()
	if *corpus != "" {
		speed(*corpus, int64(*mib)<<20, *runs)
	}
}

type recording struct {
	cols, rows int
	outputs    [][]byte
	outBytes   int64
}

func read(path string) (recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return recording{}, err
	}
	defer f.Close()
	dec := asciicast.NewDecoder(bufio.NewReader(f))
	h, err := dec.Header()
	if err != nil {
		return recording{}, fmt.Errorf("%s: %w", path, err)
	}
	rec := recording{cols: h.Width, rows: h.Height}
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return rec, nil
		}
		if err != nil {
			return recording{}, fmt.Errorf("%s: %w", path, err)
		}
		if ev.Code == asciicast.Output {
			rec.outputs = append(rec.outputs, []byte(ev.Data))
			rec.outBytes += int64(len(ev.Data))
		}
	}
}

// correctness compares each emulator's screens with tmux's.
func correctness(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.cast"))
	fmt.Println("Rows that differ from tmux's screen, at the checkpoints of the known answers:")
	fmt.Printf("%-28s", "")
	for _, f := range files {
		fmt.Printf(" %14s", filepath.Base(f))
	}
	fmt.Println()
	for _, em := range emulators {
		fmt.Printf("%-28s", em.name)
		for _, f := range files {
			rec, err := read(f)
			if err != nil {
				log.Fatal(err)
			}
			golden, err := os.ReadFile(strings.TrimSuffix(f, ".cast") + ".golden")
			if err != nil {
				log.Fatal(err)
			}
			bad, total := diffRows(em, rec, string(golden))
			fmt.Printf(" %7d of %4d", bad, total)
		}
		fmt.Println()
	}
	fmt.Println()
}

// diffRows plays rec into the emulator and counts the rows that differ from
// the golden screens.
func diffRows(em emulator, rec recording, golden string) (bad, total int) {
	s := em.new(rec.cols, rec.rows)
	defer s.Close()
	done := 0
	for _, block := range strings.Split(golden, "== after ")[1:] {
		head, body, _ := strings.Cut(block, "\n")
		n, _ := strconv.Atoi(strings.TrimSuffix(head, " events"))
		for ; done < n; done++ {
			s.Write(rec.outputs[done])
		}
		want := trim(strings.Split(strings.TrimSuffix(body, "\n"), "\n"))
		got := s.Lines()
		for i := range max(len(want), len(got)) {
			total++
			if i >= len(want) || i >= len(got) || want[i] != got[i] {
				bad++
			}
		}
	}
	return bad, total
}

// speed feeds each emulator the corpus's output.
func speed(dir string, limit int64, runs int) {
	kinds, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("MB of output per second, one goroutine (median of runs):")
	fmt.Printf("%-28s", "")
	var recs [][]recording
	for _, k := range kinds {
		files, _ := filepath.Glob(filepath.Join(dir, k.Name(), "*.cast"))
		sort.Strings(files)
		var rs []recording
		var size int64
		for _, f := range files {
			if size >= limit {
				break
			}
			r, err := read(f)
			if err != nil {
				log.Fatal(err)
			}
			rs = append(rs, r)
			size += r.outBytes
		}
		if len(rs) > 0 {
			recs = append(recs, rs)
			fmt.Printf(" %9s", k.Name())
		}
	}
	fmt.Println()
	for _, em := range emulators {
		fmt.Printf("%-28s", em.name)
		for _, rs := range recs {
			var out int64
			for _, r := range rs {
				out += r.outBytes
			}
			var times []time.Duration
			for range runs {
				start := time.Now()
				for _, r := range rs {
					s := em.new(r.cols, r.rows)
					for _, o := range r.outputs {
						s.Write(o)
					}
					s.Close()
				}
				times = append(times, time.Since(start))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			fmt.Printf(" %9.1f", float64(out)/1e6/times[len(times)/2].Seconds())
		}
		fmt.Println()
	}
}

// cases are short outputs that exercise one behaviour each.
var cases = []struct {
	name       string
	cols, rows int
	in         string
}{
	{"wrap", 5, 3, "abcdefgh"},
	{"pending wrap then CR", 5, 3, "abcde\rX"},
	{"progress bar", 20, 2, "  0%\r 50%\r100%\r\n"},
	{"tabs", 20, 1, "a\tb\tc"},
	{"erase in line", 10, 3, "xxxxxxxxxx\r\nyyyyyyyyyy\x1b[1;3H\x1b[K\x1b[2;5H\x1b[1K"},
	{"insert/delete chars", 10, 1, "abcdef\x1b[1;2H\x1b[2@XY\x1b[1;8H\x1b[P"},
	{"insert mode", 10, 1, "abc\x1b[1;1H\x1b[4hXY\x1b[4l"},
	{"scroll region", 5, 4, "top\r\n1\r\n2\r\nbot\x1b[2;3r\x1b[3;1H\r\nnew"},
	{"insert/delete lines", 5, 4, "a\r\nb\r\nc\r\nd\x1b[2;1H\x1b[L\x1b[4;1H\x1b[M"},
	{"reverse index", 5, 3, "a\r\nb\x1b[H\x1bMz"},
	{"wide characters", 6, 2, "日本語x"},
	{"wide char at the edge", 5, 2, "abcd日"},
	{"half a wide char", 6, 1, "日本\x1b[1;2Hx"},
	{"DEC line drawing", 5, 1, "\x1b(0lqqk\x1b(Bx"},
	{"SO/SI", 5, 1, "\x1b)0a\x0eq\x0fq"},
	{"OSC and DCS skipped", 10, 1, "\x1b]0;title\x07a\x1bP1$r\x1b\\b"},
	{"REP", 10, 1, "ab\x1b[3b"},
	{"autowrap off", 4, 2, "\x1b[?7labcdef"},
	{"origin mode", 5, 4, "\x1b[2;3r\x1b[?6h\x1b[1;1Hx\x1b[9;1Hy"},
	{"save/restore cursor", 10, 2, "ab\x1b7\x1b[2;5Hcd\x1b8e"},
	{"alt screen 1049", 10, 3, "$ vim\x1b[?1049h\x1b[H\x1b[2Jedit\x1b[?1049lX"},
	{"ECH", 10, 1, "abcdefgh\x1b[1;3H\x1b[3X"},
	{"CHA/VPA/HPR", 10, 3, "\x1b[5Ga\x1b[3db\x1b[2ac"},
	{"scroll up/down", 5, 3, "1\r\n2\r\n3\x1b[S\x1b[2T"},
	{"backspace at the edge", 5, 1, "abcde\b\bX"},
	{"CAN in a sequence", 5, 1, "\x1b[3\x18x"},
	{"combining mark", 5, 1, "e\u0301x"},
	{"emoji", 6, 1, "a😀b"},
	{"SGR colon colours", 10, 1, "\x1b[38:2::1:2:3mrgb\x1b[0m"},
	{"newline at the bottom of a region", 5, 4, "\x1b[1;2r\x1b[2;1Hx\nY\nZ"},
}

// edgeCases compares each emulator with tmux on the cases, live.
func edgeCases() {
	if _, err := exec.LookPath("tmux"); err != nil {
		fmt.Println("(tmux is not installed: edge cases skipped)")
		return
	}
	dir, err := os.MkdirTemp("", "vtcompare-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "conf")
	os.WriteFile(conf, []byte("set -g status off\n"), 0o644)
	sock := filepath.Join(dir, "sock")
	defer exec.Command("tmux", "-S", sock, "kill-server").Run()
	fmt.Printf("Edge cases where the screen differs from tmux's (%d cases):\n", len(cases))
	wrong := make([][]string, len(emulators))
	// A session that stays, so the server does not exit between cases.
	if out, err := exec.Command("tmux", "-S", sock, "-f", conf, "new-session", "-d", "-s", "keep", "sleep 1000").CombinedOutput(); err != nil {
		log.Fatalf("tmux: %v: %s", err, out)
	}
	for i, c := range cases {
		file := filepath.Join(dir, fmt.Sprint(i))
		os.WriteFile(file, []byte(c.in), 0o644)
		session := fmt.Sprint("c", i)
		run := func(args ...string) string {
			out, err := exec.Command("tmux", append([]string{"-S", sock, "-f", conf}, args...)...).CombinedOutput()
			if err != nil {
				log.Fatalf("tmux %v: %v: %s", args, err, out)
			}
			return string(out)
		}
		run("new-session", "-d", "-x", fmt.Sprint(c.cols), "-y", fmt.Sprint(c.rows), "-s", session,
			fmt.Sprintf("stty -echo -opost; cat %s; tmux -S %s wait-for -S %s; sleep 100", file, sock, session))
		run("wait-for", session)
		want := trim(strings.Split(strings.TrimRight(run("capture-pane", "-p", "-t", session), "\n"), "\n"))
		run("kill-session", "-t", session)
		for e, em := range emulators {
			s := em.new(c.cols, c.rows)
			s.Write([]byte(c.in))
			// Compared in NFC: a mark kept apart or composed looks the same.
			if got := s.Lines(); norm.NFC.String(strings.Join(got, "\n")) != norm.NFC.String(strings.Join(want, "\n")) {
				wrong[e] = append(wrong[e], fmt.Sprintf("%s (tmux %q, got %q)", c.name, want, got))
			}
			s.Close()
		}
	}
	for e, em := range emulators {
		fmt.Printf("%-28s %d wrong\n", em.name, len(wrong[e]))
		for _, w := range wrong[e] {
			fmt.Printf("    %s\n", w)
		}
	}
	fmt.Println()
}
