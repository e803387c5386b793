package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// quickstartStep is one command of a documented walkthrough, with the
// body of its here-document if it has one.
type quickstartStep struct {
	text string // the lines, joined with "\n"
	line int    // where it starts in the document
}

// quickstartSteps extracts the commands of the code block that follows
// the "<!-- quickstart" marker in a Markdown document: one step per
// command line, comment and blank lines left out.
func quickstartSteps(t *testing.T, doc string) []quickstartStep {
	t.Helper()
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	for l, ok := next(); !strings.HasPrefix(l, "<!-- quickstart"); l, ok = next() {
		if !ok {
			t.Fatalf("%s: no <!-- quickstart --> marker", doc)
		}
	}
	if l, _ := next(); !strings.HasPrefix(l, "```") {
		t.Fatalf("%s:%d: the quickstart marker is not followed by a code block", doc, n)
	}
	var steps []quickstartStep
	for {
		l, ok := next()
		if !ok {
			t.Fatalf("%s: the quickstart code block does not end", doc)
		}
		switch {
		case strings.HasPrefix(l, "```"):
			return steps
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
			continue
		}
		st := quickstartStep{text: l, line: n}
		if _, tag, ok := strings.Cut(l, "<<'"); ok {
			end, _, _ := strings.Cut(tag, "'")
			for {
				body, ok := next()
				if !ok {
					t.Fatalf("%s:%d: here-document not ended by %s", doc, st.line, end)
				}
				st.text += "\n" + body
				if body == end {
					break
				}
			}
		}
		steps = append(steps, st)
	}
}

// TestSSHQuickstartDoc runs the walkthrough of docs/ssh.md ("Try it on
// one machine") as written: each command typed into an interactive bash
// on a terminal, one after the other, as a user who is not root (a
// throwaway user when the test runs as root), with the real OpenSSH
// client. Only the two port numbers are changed, to free ones. Between
// steps it waits for what a person would see: the prompt (with exit
// status 0), the servers listening, the recording stored.
func TestSSHQuickstartDoc(t *testing.T) {
	for _, tool := range []string{"bash", "ssh", "ssh-keygen"} {
		testutil.NeedTool(t, tool)
	}
	steps := quickstartSteps(t, filepath.Join("..", "..", "docs", "ssh.md"))

	recAddr, sshAddr := freeAddr(t), freeAddr(t)
	_, sshPort, _ := net.SplitHostPort(sshAddr)
	for i := range steps {
		for _, r := range [][2]string{{"127.0.0.1:8080", recAddr}, {"127.0.0.1:2222", sshAddr}, {"-p 2222", "-p " + sshPort}} {
			steps[i].text = strings.ReplaceAll(steps[i].text, r[0], r[1])
		}
		if strings.Contains(steps[i].text, "8080") || strings.Contains(steps[i].text, "2222") {
			t.Fatalf("docs/ssh.md:%d: a port the test does not know how to replace: %s", steps[i].line, steps[i].text)
		}
	}

	base := t.TempDir()
	bin := filepath.Join(base, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	reel := filepath.Join(bin, "reel")
	copyExecutable(t, reelExe(t), reel)
	// The servers the walkthrough starts, if it does not get to stop them.
	t.Cleanup(func() { killWhere(t, "reel", runs(reel)) })

	home := filepath.Join(base, "home")
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + home,
		"PS1=[rdy$((6*7)) $?]$ ", "LC_ALL=C"}
	bash := []string{"bash", "--norc", "--noprofile", "--noediting", "-i"}
	var cmd *exec.Cmd
	user := currentUser(t)
	if os.Geteuid() == 0 {
		// The walkthrough is for a user who is not root.
		testutil.NeedTool(t, "runuser")
		user = throwawayUser(t, home)
		for d := base; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // t.TempDir's directories are 0700: let the user reach its home
		}
		cmd = exec.Command("runuser", append([]string{"-u", user, "--", "env", "-i"}, append(env, bash...)...)...)
	} else {
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(bash[0], bash[1:]...)
		cmd.Env = env
	}
	cmd.Dir = home
	tm := testutil.StartTerminal(t, 200, 50, cmd)

	prompts := 0
	waitPrompt := func(st quickstartStep) {
		t.Helper()
		prompts++
		tm.ExpectCount("[rdy42 ", prompts)
		out := tm.Output()
		if last := out[strings.LastIndex(out, "[rdy42 "):]; !strings.HasPrefix(last, "[rdy42 0]") {
			t.Fatalf("docs/ssh.md:%d: %s\nfailed (the prompt shows the exit status); terminal:\n%s", st.line, st.text, out)
		}
	}
	waitPrompt(quickstartStep{text: "(bash starting)"})
	var sawSSH, sawLs, sawKill bool
	for _, st := range steps {
		before := len(tm.Output())
		tm.Send(strings.ReplaceAll(st.text, "\n", "\r") + "\r")
		switch {
		case strings.HasSuffix(st.text, "&"):
			addr := flagValue(t, st, "--listen")
			testutil.WaitForSeen(t, testutil.DefaultWait, fmt.Sprintf("docs/ssh.md:%d to listen on %s", st.line, addr), func() bool {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil
			}, tm.Output)
			waitPrompt(st)
		case strings.HasPrefix(st.text, "ssh -tt"):
			sawSSH = true
			// A command or two in the session, then exit. The marker is
			// computed, so that its echo cannot be mistaken for it.
			tm.Send(`echo "demo-$((6*7))-$(id -un)"` + "\r")
			tm.Expect("demo-42-" + user)
			tm.Send("exit\r")
			waitPrompt(st)
			// A person reads the next line a moment later; the test waits
			// for the recording to be stored complete.
			waitRecorded(t, filepath.Join(home, "reel-demo", "recordings"), tm)
		case strings.HasPrefix(st.text, "reel ls"):
			sawLs = true
			waitPrompt(st)
			out := tm.Output()[before:]
			if !strings.Contains(out, "complete") || !strings.Contains(out, user) {
				t.Errorf("docs/ssh.md:%d: %s does not list a complete recording of %q:\n%s", st.line, st.text, user, out)
			}
		case strings.HasPrefix(st.text, "kill "):
			sawKill = true
			waitPrompt(st)
			testutil.WaitForSeen(t, testutil.DefaultWait, "the servers to exit", func() bool {
				return len(processes(runs(reel))) == 0
			}, tm.Output)
		default:
			waitPrompt(st)
		}
	}
	if !sawSSH || !sawLs || !sawKill {
		t.Fatalf("the walkthrough lacks a step: ssh -tt %v, reel ls %v, kill %v", sawSSH, sawLs, sawKill)
	}
	tm.Send("exit\r")
	tm.Wait()
}

// flagValue returns the value of flag in a step's command line.
func flagValue(t *testing.T, st quickstartStep, flag string) string {
	t.Helper()
	f := strings.Fields(st.text)
	for i := range f[:len(f)-1] {
		if f[i] == flag {
			return f[i+1]
		}
	}
	t.Fatalf("docs/ssh.md:%d: no %s in %s", st.line, flag, st.text)
	return ""
}

// waitRecorded waits until dst holds one recording, stored complete.
func waitRecorded(t *testing.T, dst string, tm *testutil.Terminal) {
	t.Helper()
	testutil.WaitForSeen(t, testutil.DefaultWait, "the session's recording to be stored complete in "+dst, func() bool {
		st, err := fsstore.OpenReadOnly(dst)
		if err != nil {
			return false
		}
		defer st.Close()
		n := 0
		for info, err := range st.List(context.Background(), store.Filter{}) {
			if err != nil || info.Status != store.StatusComplete {
				return false
			}
			n++
		}
		return n == 1
	}, tm.Output)
}

// throwawayUser creates a local user with the given home directory, and
// removes it at the end of the test.
func throwawayUser(t *testing.T, home string) string {
	t.Helper()
	testutil.NeedTool(t, "useradd")
	testutil.NeedTool(t, "userdel")
	name := fmt.Sprintf("reelq%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// userdel refuses while the user has processes: end them first.
		out, err := exec.Command("id", "-u", name).Output()
		if err != nil {
			t.Errorf("id -u %s: %v", name, err)
			return
		}
		uid := strings.TrimSpace(string(out))
		killWhere(t, "the processes of "+name, func(pid string) bool {
			status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
			if err != nil {
				return false
			}
			for line := range strings.Lines(string(status)) {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
					return f[1] == uid
				}
			}
			return false
		})
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	return name
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// runs matches the processes that run the executable exe.
func runs(exe string) func(pid string) bool {
	return func(pid string) bool {
		p, err := os.Readlink(filepath.Join("/proc", pid, "exe"))
		return err == nil && p == exe
	}
}

// processes returns the live processes (not zombies) that match picks,
// by pid.
func processes(match func(pid string) bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil || isZombie(stat) || !match(e.Name()) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// killWhere kills every live process that match picks (by its pid) and
// waits until none is left.
func killWhere(t *testing.T, what string, match func(pid string) bool) {
	t.Helper()
	for _, pid := range processes(match) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	testutil.WaitForSeen(t, testutil.DefaultWait, what+" to exit", func() bool { return len(processes(match)) == 0 },
		func() string { return fmt.Sprint(processes(match)) })
}

// isZombie reports whether a /proc/PID/stat line is of a zombie (state Z).
func isZombie(stat []byte) bool {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
