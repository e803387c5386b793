package sshserver

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newUserKeysEnv is newEnv with no central keys file: the client key is
// looked for in the ~/.ssh/authorized_keys of a home made for the test,
// which a passwd file made for the test gives the current user.
func newUserKeysEnv(t *testing.T, policyText string) (*testEnv, *testHome) {
	t.Helper()
	h := newTestHome(t)
	var f *fakeUserDB
	e := newEnv(t, policyText, func(s *Server) {
		f = newFakeUserDB(t, fmt.Sprintf("%s:x:%d:%d::%s:/bin/sh\n", currentUserName(t), os.Getuid(), os.Getgid(), h.dir),
			"", "passwd: files\n")
		s.users = f.db
		s.AuthorizedKeysFile = ""
		s.NoUserKeys = false
	})
	return e, h
}

// keyLine is the client key's authorized_keys line with options.
func (e *testEnv) keyLine(options string) string {
	line := authLine(e.signer.PublicKey()) + " test\n"
	if options != "" {
		line = options + " " + line
	}
	return line
}

// TestKeyOptionsWithOpenSSH: the options of a key in the user's
// authorized_keys, as the real OpenSSH client meets them.
func TestKeyOptionsWithOpenSSH(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format("200601021504") + "Z"
	future := time.Now().Add(time.Hour).UTC().Format("200601021504") + "Z"
	for _, tc := range []struct {
		name       string
		options    string
		args       []string // after the target
		tty        bool     // ssh -tt
		wantCode   int
		wantOut    string // in stdout
		notOut     string // not in stdout
		wantStderr string
		wantLog    string
	}{
		{name: "no options", args: []string{"echo in"}, wantOut: "in"},
		{name: "from this address", options: `from="127.0.0.1"`, args: []string{"echo in"}, wantOut: "in"},
		{name: "from this network", options: `from="10.0.0.0/8,127.0.0.0/8"`, args: []string{"echo in"}, wantOut: "in"},
		{name: "from another network", options: `from="10.0.0.0/8"`, args: []string{"echo in"},
			wantCode: 255, wantStderr: "Permission denied", wantLog: "may not log in from 127.0.0.1"},
		{name: "from anywhere but here", options: `from="!127.0.0.1,*"`, args: []string{"echo in"},
			wantCode: 255, wantStderr: "Permission denied", wantLog: "may not log in from 127.0.0.1"},
		{name: "forced command", options: `command="echo forced; echo original=$SSH_ORIGINAL_COMMAND"`,
			args: []string{"echo asked-for"}, wantOut: "forced\noriginal=echo asked-for\n", notOut: "\nasked-for"},
		{name: "forced command for a shell", options: `command="echo forced; echo original=${SSH_ORIGINAL_COMMAND-unset}"`,
			tty: true, wantOut: "original=unset"},
		{name: "pty", args: []string{"tty"}, tty: true, wantOut: "/dev/pts/"},
		{name: "no-pty", options: "no-pty", args: []string{"tty"}, tty: true, wantCode: 255, // -tt: ssh gives up without a pty
			notOut: "/dev/pts/", wantStderr: "PTY allocation request failed", wantLog: "pty refused"},
		{name: "restrict", options: "restrict", args: []string{"tty"}, tty: true, wantCode: 255, // -tt: ssh gives up without a pty
			notOut: "/dev/pts/", wantStderr: "PTY allocation request failed", wantLog: "pty refused"},
		{name: "restrict then pty", options: "restrict,pty", args: []string{"tty"}, tty: true, wantOut: "/dev/pts/"},
		{name: "expired", options: `expiry-time="` + past + `"`, args: []string{"echo in"},
			wantCode: 255, wantStderr: "Permission denied", wantLog: "the key expired"},
		{name: "not expired yet", options: `expiry-time="` + future + `"`, args: []string{"echo in"}, wantOut: "in"},
		{name: "unsupported option", options: `environment="X=1"`, args: []string{"echo in"},
			wantCode: 255, wantStderr: "Permission denied", wantLog: "option environment is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := startRecorder(t)
			e, h := newUserKeysEnv(t, policyFor([]netip.AddrPort{rec.addr}, ""))
			h.writeKeys(t, e.keyLine(tc.options))
			var args []string
			if tc.tty {
				args = append(args, "-tt")
			}
			args = append(append(args, e.target()), tc.args...)
			stdout, stderr, code := e.runSSH("exit\n", e.sshArgs(args...)...)
			stdout = strings.ReplaceAll(stdout, "\r\n", "\n")
			if code != tc.wantCode || !strings.Contains(stdout, tc.wantOut) || tc.notOut != "" && strings.Contains(stdout, tc.notOut) ||
				!strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q and without %q, stderr with %q",
					code, stdout, stderr, tc.wantCode, tc.wantOut, tc.notOut, tc.wantStderr)
			}
			if !strings.Contains(e.logs.String(), tc.wantLog) {
				t.Errorf("reel ssh did not log %q", tc.wantLog)
			}
		})
	}
}

// TestForcedCommandRecorded: the recording of a session whose key forces
// a command says so: the command run, and what the client asked for.
func TestForcedCommandRecorded(t *testing.T) {
	rec := startRecorder(t)
	e, h := newUserKeysEnv(t, policyFor([]netip.AddrPort{rec.addr}, ""))
	h.writeKeys(t, e.keyLine(`restrict,command="echo forced"`))
	if stdout, stderr, code := e.runSSH("", e.sshArgs(e.target(), "rm -rf ~/work")...); code != 0 || stdout != "forced\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	got := rec.finished(t, 1)[0]
	h0 := got.header
	if h0.Command != "echo forced" || string(h0.Extra["forcedCommand"]) != `"echo forced"` ||
		string(h0.Extra["originalCommand"]) != `"rm -rf ~/work"` || string(h0.Extra["sshKeyOptions"]) != `"restrict,command=\"echo forced\""` {
		t.Errorf("header: %s", strings.SplitN(got.raw, "\n", 2)[0])
	}
	if !strings.Contains(got.data("o"), "forced") {
		t.Errorf("output not recorded: %q", got.raw)
	}
}

// TestFIFOAuthorizedKeys: a FIFO in place of ~/.ssh/authorized_keys
// does not block the login (nor leave a goroutine behind: goleak runs at
// the end), and once the file is fixed the key works.
func TestFIFOAuthorizedKeys(t *testing.T) {
	e, h := newUserKeysEnv(t, policyFor(nil, ""))
	if err := syscall.Mkfifo(h.keysPath(), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, stderr, code := e.runSSH("", e.sshArgs(e.target(), "true")...); code != 255 || !strings.Contains(stderr, "Permission denied") {
			t.Fatalf("with a FIFO: exit %d, stderr %q; want the login refused", code, stderr)
		}
	}
	if !strings.Contains(e.logs.String(), "not a regular file") {
		t.Errorf("the FIFO was not logged:\n%s", e.logs.String())
	}
	os.Remove(h.keysPath())
	h.writeKeys(t, e.keyLine(""))
	if stdout, stderr, code := e.runSSH("", e.sshArgs(e.target(), "echo in")...); code != 0 || stdout != "in\n" {
		t.Errorf("with the file fixed: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
