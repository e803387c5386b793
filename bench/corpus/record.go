package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/reel-rec/reel/internal/asciicast"
)

var errSkipped = errors.New("skipped")

// A kind of session: the programs it needs and the script that drives them.
type kind struct {
	need  []string // every one must be installed
	alt   []string // or, instead of need[0], one of these
	scale float64  // recorded times are real times times scale
	run   func(s *session) error
}

var kinds = map[string]kind{
	"shell": {need: []string{"bash"}, scale: 1, run: runShell},
	"top":   {need: []string{"top"}, scale: 15, run: runTop},
	"vim":   {need: []string{"vim"}, alt: []string{"vi"}, scale: 1, run: runVim},
	"logs":  {need: []string{"tail"}, scale: 5, run: runLogs},
	"bulk":  {need: []string{"bash", "seq", "yes", "head"}, scale: 1, run: runBulk},
}

// session is one program running on a pty while it is recorded.
type session struct {
	dir    string // scratch working directory, the program's HOME
	master *os.File
	tty    *os.File // the pty's slave end, until the program has it
	cmd    *exec.Cmd
	prog   string // the program found for need[0] (vim or vi)
	rnd    *rand.Rand

	mu      sync.Mutex
	enc     *asciicast.Encoder
	start   time.Time
	scale   float64
	offset  float64 // think time added to the recorded clock
	out     bytes.Buffer
	changed chan struct{}
	done    chan struct{}
}

// record runs one kind of session and writes its recording to file. It
// returns the file's size.
func record(k kind, file string, cols, rows int) (int64, error) {
	prog := ""
	for i, p := range k.need {
		path, err := exec.LookPath(p)
		if err != nil && i == 0 {
			for _, a := range k.alt {
				if path, err = exec.LookPath(a); err == nil {
					break
				}
			}
		}
		if err != nil {
			log.Printf("corpus: skipping %s: %s is not installed", filepath.Base(filepath.Dir(file)), p)
			return 0, errSkipped
		}
		if i == 0 {
			prog = path
		}
	}
	dir, err := os.MkdirTemp("", "corpus-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := &session{dir: dir, prog: prog, rnd: rand.New(rand.NewPCG(1, 2)), scale: k.scale,
		enc: asciicast.NewEncoder(f), changed: make(chan struct{}, 1), done: make(chan struct{})}
	h := asciicast.Header{Width: cols, Height: rows, Timestamp: 1767225600,
		Env:     map[string]string{"TERM": "xterm-256color", "SHELL": "/bin/bash"},
		SrcNode: "bench-node.example.ts.net", SrcNodeID: "nBENCH", SSHUser: "alice", LocalUser: "alice",
		ConnectionID: "bench-" + filepath.Base(filepath.Dir(file)), Command: filepath.Base(prog)}
	if err := s.enc.WriteHeader(h); err != nil {
		return 0, err
	}
	if err := s.startPty(cols, rows); err != nil {
		return 0, err
	}
	runErr := k.run(s)
	s.finish()
	if runErr != nil {
		return 0, runErr
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	st, err := os.Stat(file)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (s *session) startPty(cols, rows int) error {
	master, tty, err := pty.Open()
	if err != nil {
		return err
	}
	if err := pty.Setsize(master, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		return err
	}
	s.master, s.tty = master, tty
	go s.read()
	return nil
}

// start runs the program on the pty.
func (s *session) startCmd(args []string, env ...string) error {
	tty := s.tty
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append([]string{"HOME=" + s.dir, "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"PATH=" + os.Getenv("PATH"), "USER=alice", "LOGNAME=alice"}, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err := cmd.Start()
	tty.Close() // the program has it now; its exit ends the reads
	s.tty = nil
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.start = time.Now()
	s.cmd = cmd
	s.mu.Unlock()
	return nil
}

// read records everything the program prints, one event per read, until
// the pty closes. A character split between two reads is carried over, as
// asciinema does.
func (s *session) read() {
	defer close(s.done)
	buf := make([]byte, 32<<10)
	var carry []byte
	for {
		n, err := s.master.Read(buf)
		if n > 0 {
			data := append(carry, buf[:n]...)
			cut := len(data)
			for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
				if utf8.RuneStart(data[i]) {
					if !utf8.FullRune(data[i:]) {
						cut = i
					}
					break
				}
			}
			carry = append([]byte(nil), data[cut:]...)
			s.emit(string(data[:cut]))
		}
		if err != nil {
			return
		}
	}
}

func (s *session) now() float64 {
	if s.start.IsZero() {
		return s.offset
	}
	return time.Since(s.start).Seconds()*s.scale + s.offset
}

func (s *session) emit(data string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if data != "" {
		s.enc.WriteEvent(asciicast.Event{Time: s.now(), Code: asciicast.Output, Data: data})
	}
	s.out.WriteString(data)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// think adds d seconds of idle time to the recorded clock.
func (s *session) think(d float64) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// resize changes the pty's size (the program gets SIGWINCH) and records it.
func (s *session) resize(cols, rows int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := pty.Setsize(s.master, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		return err
	}
	return s.enc.WriteEvent(asciicast.Event{Time: s.now(), Code: asciicast.Resize, Data: fmt.Sprintf("%dx%d", cols, rows)})
}

// count returns how many times sub has appeared in the output.
func (s *session) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.out.String(), sub)
}

// waitCount waits until sub has appeared n times in the output.
func (s *session) waitCount(sub string, n int) error {
	deadline := time.After(30 * time.Second)
	for s.count(sub) < n {
		select {
		case <-s.changed:
		case <-s.done:
			if s.count(sub) >= n {
				return nil
			}
			return fmt.Errorf("program ended before %q appeared %d times", sub, n)
		case <-deadline:
			return fmt.Errorf("%q did not appear %d times within 30s; output ends %q", sub, n, tail(s.out.String()))
		}
	}
	return nil
}

func tail(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 300 {
		return s[len(s)-300:]
	}
	return s
}

// typeText types text as a person would: one key at a time, with the
// recorded clock advancing 50 to 200 ms per key.
func (s *session) typeText(text string) error {
	for _, r := range text {
		if _, err := io.WriteString(s.master, string(r)); err != nil {
			return err
		}
		s.think(0.05 + 0.15*s.rnd.Float64())
		time.Sleep(time.Millisecond) // keys arrive apart, as typed keys do
	}
	return nil
}

// finish waits for the program to end and for its output to be recorded.
func (s *session) finish() {
	if s.tty != nil { // the program never started
		s.tty.Close()
	}
	if s.cmd != nil {
		exited := make(chan struct{})
		go func() { s.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-exited
		}
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	s.master.Close()
	<-s.done
}
