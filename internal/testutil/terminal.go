package testutil

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
)

// Terminal runs a program on a pty, as a user at a terminal: the test
// types with Send and waits for the screen with Expect.
type Terminal struct {
	t      testing.TB
	master *os.File
	cmd    *exec.Cmd
	out    Buffer
	read   chan struct{}
	exit   chan int
}

// StartTerminal starts cmd (not yet started) on a new pty of the given
// size, in its own session with the pty as controlling terminal. The
// program is killed at the end of the test.
func StartTerminal(t testing.TB, cols, rows uint16, cmd *exec.Cmd) *Terminal {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Cols: cols, Rows: rows}); err != nil {
		t.Fatalf("pty size: %v", err)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		tty.Close()
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	tty.Close()
	tm := &Terminal{t: t, master: master, cmd: cmd, read: make(chan struct{}), exit: make(chan int, 1)}
	go func() {
		defer close(tm.read)
		io.Copy(&tm.out, master)
	}()
	go func() {
		cmd.Wait()
		tm.exit <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		master.Close()
		<-tm.read
	})
	return tm
}

// Output returns everything the terminal has shown so far, escape
// sequences included.
func (tm *Terminal) Output() string { return tm.out.String() }

// Expect waits until the terminal has shown s. s should be something only
// the awaited state can print: never a string that also appears in the
// echo of what the test typed.
func (tm *Terminal) Expect(s string) {
	tm.t.Helper()
	WaitForSeen(tm.t, DefaultWait, "the terminal to show "+strconv.Quote(s),
		func() bool { return tm.out.Contains(s) }, tm.out.String)
}

// ExpectCount waits until the terminal has shown s at least n times.
func (tm *Terminal) ExpectCount(s string, n int) {
	tm.t.Helper()
	WaitForSeen(tm.t, DefaultWait, strconv.Itoa(n)+" times "+strconv.Quote(s),
		func() bool { return strings.Count(tm.out.String(), s) >= n }, tm.out.String)
}

// Send types s.
func (tm *Terminal) Send(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// Resize changes the terminal's size; the kernel sends the program
// SIGWINCH.
func (tm *Terminal) Resize(cols, rows uint16) {
	tm.t.Helper()
	if err := pty.Setsize(tm.master, &pty.Winsize{Cols: cols, Rows: rows}); err != nil {
		tm.t.Fatal(err)
	}
}

// Wait waits for the program to exit and returns its exit code.
func (tm *Terminal) Wait() int {
	tm.t.Helper()
	return Recv(tm.t, "the program on the terminal to exit; it shows:\n"+tm.out.String(), tm.exit)
}
