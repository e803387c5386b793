package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/testutil"
)

// walkthroughMarker precedes the README's code block that
// TestREADMEWalkthrough runs.
const walkthroughMarker = "<!-- walkthrough"

// readmeWalkthrough returns the commands of the README's walkthrough
// block, one per element: a line, or a line with its here-document.
func readmeWalkthrough(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+walkthroughMarker)
	if !ok {
		t.Fatalf("README.md has no %q block", walkthroughMarker)
	}
	_, rest, _ = strings.Cut(rest, "\n```sh\n")
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatal("the README's walkthrough block does not end")
	}
	heredoc := regexp.MustCompile(`<<'?(\w+)'?`)
	var cmds []string
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		cmd := lines[i]
		if m := heredoc.FindStringSubmatch(cmd); m != nil {
			for i++; i < len(lines); i++ {
				cmd += "\n" + lines[i]
				if lines[i] == m[1] {
					break
				}
			}
		}
		if strings.TrimSpace(cmd) != "" {
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// TestREADMEWalkthrough runs the README's quick-start walkthrough as
// written — a recorder with its web UI, reel ssh, a key, a session with
// the real OpenSSH client, reel ls, reel play, the UI's address and
// one-time password, and stopping them — with the reel the tests run.
// Before the servers are stopped it does what the README asks a person
// to do in a browser, over HTTP: log in with the printed one-time
// password, choose a password, find the session in the list and by its
// screen text, and play it. Three things differ from a person at a
// terminal: the addresses 127.0.0.1:8080 and :2222 become free ports the
// test picks, the UI's default 127.0.0.1:8443 another one (REEL_UI_LISTEN
// in the shell's environment), and, like a person who reads the output,
// the test waits after each command for it to end and after a server
// started in the background for it to listen.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "ssh", "ssh-keygen"} {
		testutil.NeedTool(t, tool)
	}
	reelExe(t) // on PATH for the shell
	recAddr, sshAddr, uiAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, sshPort, _ := net.SplitHostPort(sshAddr)
	subst := strings.NewReplacer("127.0.0.1:8080", recAddr, "127.0.0.1:2222", sshAddr, "-p 2222", "-p "+sshPort)
	cmds := readmeWalkthrough(t)
	for _, want := range []string{"127.0.0.1:8080", "--ui ", "127.0.0.1:2222", "-p 2222", "reel ls", "reel play", "ssh -tt", "grep -A1 '^reel:' serve.log", "kill %1 %2"} {
		if !strings.Contains(strings.Join(cmds, "\n"), want) {
			t.Fatalf("the walkthrough no longer has %q; update this test with it", want)
		}
	}

	// The shell reads the commands from a pipe on descriptor 3, so that
	// ssh, reading its standard input, cannot swallow the next command.
	dir := t.TempDir()
	script, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("bash", "--noprofile", "--norc", "/dev/fd/3")
	sh.Dir = dir
	sh.Env = append(os.Environ(), "HOME="+dir, "SSH_AUTH_SOCK=", "REEL_UI_LISTEN="+uiAddr, "REEL_INDEX=", "TSRECORDER_UI=")
	sh.ExtraFiles = []*os.File{script}
	out := new(testutil.Buffer)
	sh.Stdout, sh.Stderr = out, out
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its jobs too, for the cleanup
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	script.Close()
	exited := make(chan struct{})
	go func() { sh.Wait(); close(exited) }()
	t.Cleanup(func() {
		feed.Close()
		syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("the walkthrough's output:\n%s", out.String())
		}
	})
	running := func() bool {
		select {
		case <-exited:
			return false
		default:
			return true
		}
	}

	w := bufio.NewWriter(feed)
	for i, cmd := range cmds {
		cmd = subst.Replace(cmd)
		if strings.HasPrefix(cmd, "kill %1 %2") {
			readmeUI(t, "http://"+uiAddr, out.String())
		}
		t.Logf("$ %s", cmd)
		marker := fmt.Sprintf("__walkthrough_step_%d_", i)
		fmt.Fprintf(w, "%s\necho %s$?__\n", cmd, marker)
		if err := w.Flush(); err != nil {
			t.Fatalf("the shell is gone: %v", err)
		}
		done := regexp.MustCompile(marker + `(\d+)__`)
		testutil.WaitForSeen(t, testutil.DefaultWait, "the walkthrough's command "+strconv.Quote(cmd)+" to end",
			func() bool { return done.MatchString(out.String()) || !running() }, out.String)
		m := done.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("the shell exited during %q", cmd)
		}
		if m[1] != "0" {
			t.Fatalf("%q failed with exit status %s", cmd, m[1])
		}
		if strings.HasSuffix(strings.TrimSpace(strings.SplitN(cmd, "#", 2)[0]), "&") {
			addr := recAddr
			if strings.Contains(cmd, "reel ssh") {
				addr = sshAddr
			}
			testutil.WaitForSeen(t, testutil.DefaultWait, cmd+" to listen on "+addr, func() bool {
				if !running() {
					t.Fatalf("the shell exited")
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil
			}, func() string { return out.String() + logs(dir) })
			if strings.Contains(cmd, " --ui ") {
				testutil.WaitForSeen(t, testutil.DefaultWait, "the recorder to print where its UI is", func() bool {
					return strings.Contains(logs(dir), "reel: the web UI is at http://"+uiAddr+"/")
				}, func() string { return logs(dir) })
			}
		}
	}
	feed.Close()
	testutil.Recv(t, "the walkthrough's shell to exit", exited)
	if code := sh.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the walkthrough's shell exited with %d", code)
	}

	got := out.String()
	if n := strings.Count(got, "hello from a recorded session"); n < 2 {
		t.Errorf("the session's output is shown %d times, want 2 (ssh, then reel play)", n)
	}
	if !regexp.MustCompile(`(?m)^KEY +START +DURATION +USER +COMMAND +SIZE +STATUS\n\S+/\S+\.cast .* echo hello from a recorded session +\S+ +(complete|live)$`).MatchString(got) {
		t.Errorf("reel ls does not list the session")
	}
	// kill %1 %2 stopped both servers.
	for _, addr := range []string{recAddr, sshAddr} {
		testutil.WaitForSeen(t, testutil.DefaultWait, "nothing to listen on "+addr+" after kill %1 %2", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		}, func() string { return logs(dir) })
	}
}

// logs returns the walkthrough's server logs.
func logs(dir string) string {
	var b strings.Builder
	for _, f := range []string{"serve.log", "ssh.log"} {
		data, _ := os.ReadFile(dir + "/reel-demo/" + f)
		fmt.Fprintf(&b, "--- %s:\n%s", f, data)
	}
	return b.String()
}

// readmeUI does, over HTTP, what the README asks a person to do in a
// browser: log in as admin with the one-time password the walkthrough
// printed, choose a password, find the session in the list and by its
// screen text, and play it.
func readmeUI(t *testing.T, base, printed string) {
	t.Helper()
	m := otpRE.FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("the walkthrough printed no one-time password:\n%s", printed)
	}
	c := newUIClient(t, base)
	c.firstLogin(m[1])
	list := c.waitPage("/", "the session in the UI's list", func(b string) bool { return strings.Contains(b, "echo hello from a recorded session") })
	rec := recLinkRE.FindStringSubmatch(list)
	if rec == nil {
		t.Fatalf("no link to the session in the list:\n%s", list)
	}
	hits := c.waitPage("/search?q="+url.QueryEscape("hello from"), "the session by its screen text", func(b string) bool { return strings.Contains(b, rec[1]+"?q=") })
	if !regexp.MustCompile(`#t=0:0\d\.\d">0:0\d<`).MatchString(hits) {
		t.Errorf("the hit has no moment:\n%s", hits)
	}
	if code, _, cast := c.get(rec[1] + "/cast"); code != 200 || !strings.Contains(cast, "hello from a recorded session") {
		t.Errorf("playing the session: %d\n%s", code, cast)
	}
}
