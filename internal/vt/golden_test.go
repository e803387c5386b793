package vt

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

// The known answers come from tmux, a maintained terminal emulator: the
// output of real programs (testdata/*.cast, recorded by bench/corpus: bash
// with ls --color, cat, grep, git log, a wrapped line, a \r progress bar
// and wide characters; top redrawing in place; vim on the alternate screen
// answering its own queries) is played into a tmux pane of the same size
// and the pane captured at checkpoints. Regenerate with
//
//	go test ./internal/vt -run TestGolden -update
var update = flag.Bool("update", false, "regenerate testdata/*.golden with tmux")

// checkpoints are the numbers of output events after which the screen is
// compared: a quarter, half, three quarters and all of them.
func checkpoints(n int) []int {
	return []int{n / 4, n / 2, 3 * n / 4, n}
}

type recording struct {
	cols, rows int
	outputs    []string
}

func readCast(t *testing.T, path string) recording {
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
	rec := recording{cols: h.Width, rows: h.Height}
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Code {
		case asciicast.Output:
			rec.outputs = append(rec.outputs, ev.Data)
		case asciicast.Resize:
			t.Fatalf("%s: the golden recordings have no resizes (tmux reflows, reel does not)", path)
		}
	}
	return rec
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.cast")
	if len(files) == 0 {
		t.Fatal("no testdata/*.cast")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".cast")
		t.Run(name, func(t *testing.T) {
			rec := readCast(t, file)
			golden := strings.TrimSuffix(file, ".cast") + ".golden"
			if *update {
				writeGolden(t, rec, golden)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (regenerate with -update)", err)
			}
			term := New(rec.cols, rec.rows)
			var got bytes.Buffer
			done := 0
			for _, cp := range checkpoints(len(rec.outputs)) {
				for ; done < cp; done++ {
					term.WriteString(rec.outputs[done])
				}
				fmt.Fprintf(&got, "== after %d events\n", cp)
				for _, l := range term.Lines() {
					fmt.Fprintf(&got, "%s\n", l)
				}
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("screen differs from tmux's (-tmux +vt):\n%s", diff)
			}
		})
	}
}

// writeGolden plays the recording into tmux and captures the screen at
// each checkpoint.
func writeGolden(t *testing.T, rec recording, golden string) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("-update needs tmux")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	os.WriteFile(conf, []byte("set -g status off\nset -g escape-time 0\n"), 0o644)
	sock := filepath.Join(dir, "sock")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-S", sock, "-f", conf}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	var script strings.Builder
	script.WriteString("stty -echo -opost\n") // no echo of the answers tmux gives to queries; output as it is
	done := 0
	for i, cp := range checkpoints(len(rec.outputs)) {
		part := filepath.Join(dir, fmt.Sprintf("part%d", i))
		os.WriteFile(part, []byte(strings.Join(rec.outputs[done:cp], "")), 0o644)
		done = cp
		fmt.Fprintf(&script, "cat %s; tmux -S %s wait-for -S shown%d; tmux -S %s wait-for go%d\n", part, sock, i, sock, i)
	}
	script.WriteString("sleep 1000\n")
	sh := filepath.Join(dir, "play.sh")
	os.WriteFile(sh, []byte(script.String()), 0o755)
	tmux("new-session", "-d", "-x", fmt.Sprint(rec.cols), "-y", fmt.Sprint(rec.rows), "-s", "g", "sh "+sh)
	defer exec.Command("tmux", "-S", sock, "kill-server").Run()
	var out bytes.Buffer
	for i, cp := range checkpoints(len(rec.outputs)) {
		tmux("wait-for", fmt.Sprintf("shown%d", i))
		screen := strings.Split(strings.TrimRight(tmux("capture-pane", "-p", "-t", "g"), "\n"), "\n")
		fmt.Fprintf(&out, "== after %d events\n", cp)
		for len(screen) > 0 && strings.TrimRight(screen[len(screen)-1], " ") == "" {
			screen = screen[:len(screen)-1]
		}
		for _, l := range screen {
			fmt.Fprintf(&out, "%s\n", strings.TrimRight(l, " "))
		}
		tmux("wait-for", "-S", fmt.Sprintf("go%d", i))
	}
	if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
