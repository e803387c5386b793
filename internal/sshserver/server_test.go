package sshserver

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/testutil"
)

func TestExecIsRecorded(t *testing.T) {
	rec := startRecorder(t)
	e := newEnv(t, policyFor([]netip.AddrPort{rec.addr}, ""))
	stdout, stderr, code := e.runSSH("", e.sshArgs(e.target(), `printf 'hello\n'; echo oops >&2; exit 3`)...)
	if stdout != "hello\n" || !strings.Contains(stderr, "oops") || code != 3 {
		t.Fatalf("stdout %q, stderr %q, exit %d; want hello, oops, 3", stdout, stderr, code)
	}
	got := rec.finished(t, 1)[0]
	h := got.header
	want := map[string]any{
		"command":      `printf 'hello\n'; echo oops >&2; exit 3`,
		"sshUser":      e.user,
		"localUser":    e.user,
		"srcNode":      "127.0.0.1",
		"hostname":     `"testhost"`,
		"sender":       `"reel ssh"`,
		"fingerprint":  `"` + ssh.FingerprintSHA256(e.signer.PublicKey()) + `"`,
		"connectionID": len(h.ConnectionID) == 16,
	}
	gotFields := map[string]any{
		"command":      h.Command,
		"sshUser":      h.SSHUser,
		"localUser":    h.LocalUser,
		"srcNode":      h.SrcNode,
		"hostname":     string(h.Extra["hostname"]),
		"sender":       string(h.Extra["sender"]),
		"fingerprint":  string(h.Extra["sshKeyFingerprint"]),
		"connectionID": true,
	}
	if diff := cmp.Diff(want, gotFields); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(string(h.Extra["srcAddr"]), `"127.0.0.1:`) {
		t.Errorf("srcAddr = %s", h.Extra["srcAddr"])
	}
	if out := got.data("o"); !strings.Contains(out, "hello\n") || !strings.Contains(out, "oops\n") {
		t.Errorf("recorded output %q lacks stdout and stderr", out)
	}
	if got.status != "complete" {
		t.Errorf("status %q", got.status)
	}
}

func TestInteractiveShell(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ruleExtra   string
		wantInput   bool
		wantHeaderI bool
	}{
		{"output only", "", false, false},
		{"input recording", `"inputRecording": true,`, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := startRecorder(t)
			e := newEnv(t, policyFor([]netip.AddrPort{rec.addr}, tc.ruleExtra))
			// A shell whose prompt is predictable, on a 100x30 terminal.
			tm := e.startTerminal(100, 30, e.sshArgs("-tt", e.target(), "PS1='$ ' exec sh -i")...)
			tm.Expect("$ ")
			tm.ExpectShellSize(30, 100)
			tm.Resize(120, 40)
			tm.ExpectShellSize(40, 120)
			// A password prompt: echo off, then read. The prompt is
			// printed from parts, so that waiting for it cannot be
			// satisfied by the echo of the typed line, before "stty
			// -echo" has run.
			tm.Send(`stty -echo; printf 'Pass''word: '; read pw; stty echo; echo; echo "got ${#pw} chars"` + "\r")
			tm.Expect("Password: ")
			tm.Send("hunter2\r")
			tm.Expect("got 7 chars")
			tm.Send(`echo "typed-"visibly` + "\r")
			tm.Expect("typed-visibly\r\n")
			tm.Send("exit 0\r")
			if code := tm.Wait(); code != 0 {
				t.Fatalf("ssh exit %d; terminal:\n%s", code, tm.Output())
			}
			got := rec.finished(t, 1)[0]
			if got.header.Width != 100 || got.header.Height != 30 || got.header.Env["TERM"] != "xterm-256color" {
				t.Errorf("header: %dx%d TERM=%q, want 100x30 xterm-256color", got.header.Width, got.header.Height, got.header.Env["TERM"])
			}
			var resizes []string
			for _, ev := range got.events {
				if ev.Code == "r" {
					resizes = append(resizes, ev.Data)
				}
			}
			if diff := cmp.Diff([]string{"120x40"}, resizes); diff != "" {
				t.Errorf("resize events (-want +got):\n%s", diff)
			}
			out := got.data("o")
			for _, s := range []string{"size:30 100", "size:40 120", "Password: ", "got 7 chars"} {
				if !strings.Contains(out, s) {
					t.Errorf("recorded output lacks %q", s)
				}
			}
			if strings.Contains(got.raw, "hunter2") {
				t.Errorf("the password typed with echo off is in the recording:\n%s", got.raw)
			}
			in := got.data("i")
			if tc.wantInput != strings.Contains(in, `echo "typed-"visibly`+"\r") {
				t.Errorf("recorded input %q; want typed commands recorded: %v", in, tc.wantInput)
			}
			if !tc.wantInput && in != "" {
				t.Errorf("input recorded without the policy asking: %q", in)
			}
			if tc.wantHeaderI != (string(got.header.Extra["inputRecorded"]) == "true") {
				t.Errorf("header inputRecorded = %s, want %v", got.header.Extra["inputRecorded"], tc.wantHeaderI)
			}
		})
	}
}

func TestExitSignal(t *testing.T) {
	e := newEnv(t, policyFor(nil, ""))
	_, stderr, code := e.runSSH("", e.sshArgs(e.target(), "kill -TERM $$")...)
	// OpenSSH exits 255 on exit-signal and does not print it in batch
	// mode; use the Go client to see the signal itself.
	if code != 255 {
		t.Errorf("ssh exit %d (stderr %q), want 255 for a signal", code, stderr)
	}
	c := e.goClient()
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run("kill -TERM $$")
	ee, ok := err.(*ssh.ExitError)
	if !ok || ee.Signal() != "TERM" {
		t.Fatalf("Run: %v, want exit signal TERM", err)
	}
}

func TestSignalFromClient(t *testing.T) {
	e := newEnv(t, policyFor(nil, ""))
	c := e.goClient()
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(`trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done`); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := s.Signal(ssh.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	if ee, ok := err.(*ssh.ExitError); !ok || ee.ExitStatus() != 7 {
		t.Fatalf("Wait: %v, want exit status 7", err)
	}
}

// goClient connects with x/crypto/ssh, for what OpenSSH cannot do from
// the command line (sending signals).
func (e *testEnv) goClient() *ssh.Client {
	e.t.Helper()
	c, err := ssh.Dial("tcp", e.addr.String(), &ssh.ClientConfig{
		User:            e.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestSFTPAndSCP(t *testing.T) {
	testutil.NeedTool(t, "sftp")
	testutil.NeedTool(t, "scp")
	rec := startRecorder(t)
	e := newEnv(t, policyFor([]netip.AddrPort{rec.addr}, ""))
	if findSFTPServer("") == "" {
		testutil.SkipOrFail(t, "no sftp-server installed (make test-deps installs openssh-sftp-server)")
	}
	src := filepath.Join(e.dir, "src.bin")
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(e.addr.Port())
	opts := e.sshArgs()
	opts = opts[:len(opts)-2] // drop "-p PORT": sftp and scp take -P
	for _, tc := range []struct {
		name string
		prog string
		args []string
		dst  string
	}{
		{"sftp put", "sftp", []string{"-b", "-"}, "sftp-put.bin"},
		{"scp upload (sftp protocol)", "scp", []string{src, e.target() + ":" + filepath.Join(e.dir, "scp-up.bin")}, "scp-up.bin"},
		{"scp -O upload (scp protocol)", "scp", []string{"-O", src, e.target() + ":" + filepath.Join(e.dir, "scp-legacy-up.bin")}, "scp-legacy-up.bin"},
		{"scp -O download", "scp", []string{"-O", e.target() + ":" + src, filepath.Join(e.dir, "scp-legacy-down.bin")}, "scp-legacy-down.bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(append([]string{}, opts...), "-P", port), tc.args...)
			stdin := ""
			if tc.prog == "sftp" {
				args = append(args, e.target())
				stdin = fmt.Sprintf("put %s %s\n", src, filepath.Join(e.dir, tc.dst))
			}
			cmd := exec.Command(tc.prog, args...)
			cmd.Stdin = strings.NewReader(stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tc.prog, err, out)
			}
			got, err := os.ReadFile(filepath.Join(e.dir, tc.dst))
			if err != nil || string(got) != string(data) {
				t.Fatalf("transferred file: %d bytes, %v; want the %d bytes sent", len(got), err, len(data))
			}
		})
	}
	recs := rec.finished(t, 4)
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, string(r.header.Extra["subsystem"])+"|"+strings.Fields(r.header.Command + " -")[0])
	}
	// sftp sessions are recorded as a header only; legacy scp runs a
	// command like any other.
	want := []string{`"sftp"|-`, `"sftp"|-`, `|scp`, `|scp`}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("recordings (-want +got):\n%s", diff)
	}
	for _, r := range recs[:2] {
		if len(r.events) != 0 {
			t.Errorf("sftp recording has %d events, want the header only", len(r.events))
		}
	}
}

func TestFailClosedRecorderDown(t *testing.T) {
	e := newEnv(t, policyFor([]netip.AddrPort{testutil.DeadAddr(t), testutil.DeadAddr(t)}, `"enforceRecorder": true,`))
	marker := filepath.Join(e.dir, "ran")
	_, stderr, code := e.runSSH("", e.sshArgs(e.target(), "touch "+marker)...)
	if code != 1 || !strings.Contains(stderr, "must be recorded, but no recorder could be reached") {
		t.Errorf("exit %d, stderr %q; want 1 and the refusal", code, stderr)
	}
	if strings.Count(stderr, "connection refused") != 2 {
		t.Errorf("stderr does not list both attempts: %q", stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although the session was refused")
	}
}

func TestFailOpenRecorderDownNotesGap(t *testing.T) {
	rec := startRecorder(t)
	dead := testutil.DeadAddr(t)
	e := newEnv(t, policyFor([]netip.AddrPort{dead}, ""))
	stdout, _, code := e.runSSH("", e.sshArgs(e.target(), "echo ran unrecorded")...)
	if code != 0 || stdout != "ran unrecorded\n" {
		t.Fatalf("exit %d, stdout %q: a fail-open session must run", code, stdout)
	}
	if !strings.Contains(e.logs.String(), "RECORDING FAILED TO START") {
		t.Errorf("no loud log line:\n%s", e.logs.String())
	}
	// The recorder is back (the policy now points at it): the next
	// recording says what was missed, once.
	writePolicy(t, e, policyFor([]netip.AddrPort{rec.addr}, ""))
	for range 2 {
		if _, _, code := e.runSSH("", e.sshArgs(e.target(), "true")...); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
	recs := rec.finished(t, 2)
	var gaps []gap
	if err := json.Unmarshal(recs[0].header.Extra["recordingGaps"], &gaps); err != nil {
		t.Fatalf("first recording's header has no recordingGaps: %v\n%s", err, recs[0].raw)
	}
	if len(gaps) != 1 || gaps[0].Command != "echo ran unrecorded" || !strings.Contains(gaps[0].Reason, dead.String()) ||
		gaps[0].SSHUser != e.user || gaps[0].What != "session not recorded: no recorder reachable" {
		t.Errorf("gaps = %+v", gaps)
	}
	if g := recs[1].header.Extra["recordingGaps"]; g != nil {
		t.Errorf("the second recording repeats the gap: %s", g)
	}
}

func writePolicy(t *testing.T, e *testEnv, text string) {
	t.Helper()
	if err := os.WriteFile(e.polPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.holder.Reload(); err != nil {
		t.Fatal(err)
	}
}

func TestRecorderLostMidSession(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enforce bool
	}{
		{"fail closed", true},
		{"fail open", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := startRecorder(t)
			extra := ""
			if tc.enforce {
				extra = `"enforceRecorder": true,`
			}
			e := newEnv(t, policyFor([]netip.AddrPort{rec.addr}, extra))
			after := filepath.Join(e.dir, "after")
			tm := e.startTerminal(80, 24, e.sshArgs("-tt", e.target(),
				fmt.Sprintf("echo started; read x; echo continued; touch %s; echo done", after))...)
			tm.Expect("started")
			rec.proxy.Cut() // the recorder is gone
			if tc.enforce {
				tm.Expect("The policy requires recording: the session is ended.")
				if code := tm.Wait(); code != 1 {
					t.Errorf("ssh exit %d, want 1", code)
				}
				// The server logs the end of the session once its process
				// has been waited for: nothing of it runs any more.
				e.logs.WaitFor(t, `msg="session end"`)
				if _, err := os.Stat(after); err == nil {
					t.Error("the command went on after the recording was lost")
				}
				return
			}
			// Type only once the server has noticed the loss, so that the
			// session goes on past it.
			e.logs.WaitFor(t, "RECORDING LOST")
			tm.Send("go on\r")
			tm.Expect("done")
			if code := tm.Wait(); code != 0 {
				t.Errorf("ssh exit %d, want 0", code)
			}
			if _, err := os.Stat(after); err != nil {
				t.Error("the fail-open session did not go on")
			}
			if !strings.Contains(e.logs.String(), "RECORDING LOST") {
				t.Errorf("no loud log line:\n%s", e.logs.String())
			}
			if p := e.srv.gaps.pending(); len(p.gaps) != 1 || !strings.Contains(p.gaps[0].What, "lost mid-session") {
				t.Errorf("gap log: %+v", p.gaps)
			}
		})
	}
}

func TestFailover(t *testing.T) {
	rec := startRecorder(t)
	dead := testutil.DeadAddr(t)
	e := newEnv(t, policyFor([]netip.AddrPort{dead, rec.addr}, `"enforceRecorder": true,`))
	stdout, _, code := e.runSSH("", e.sshArgs(e.target(), "echo via failover")...)
	if code != 0 || stdout != "via failover\n" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	got := rec.finished(t, 1)[0]
	if !strings.Contains(got.data("o"), "via failover") {
		t.Errorf("output not recorded on the live recorder: %q", got.raw)
	}
	if !strings.Contains(e.logs.String(), "recording started after failover") {
		t.Errorf("failover not logged:\n%s", e.logs.String())
	}
}

func TestBufferFull(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enforce bool
	}{
		{"fail closed", true},
		{"fail open", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stalled := testutil.StartStalledRecorder(t)
			extra := ""
			if tc.enforce {
				extra = `"enforceRecorder": true,`
			}
			e := newEnv(t, policyFor([]netip.AddrPort{stalled}, extra), func(s *Server) {
				s.Recording.BufferSize = 64 << 10
				s.Recording.RoomWait = 100 * time.Millisecond
				s.FinishTimeout = 200 * time.Millisecond
			})
			// 20 MB of output: far more than the recorder takes.
			stdout, stderr, code := e.runSSH("", e.sshArgs(e.target(), "head -c 20000000 /dev/zero | tr '\\0' x; echo; echo end")...)
			if tc.enforce {
				if code != 1 || !strings.Contains(stderr, "buffer full") || strings.Contains(stdout, "end") {
					t.Errorf("exit %d, %d bytes out, stderr %q; want the session ended", code, len(stdout), stderr)
				}
				return
			}
			if code != 0 || len(stdout) != 20000000+5 {
				t.Errorf("exit %d, %d bytes out; want the whole output", code, len(stdout))
			}
			if !strings.Contains(e.logs.String(), "RECORDING LOST") {
				t.Errorf("no loud log line")
			}
		})
	}
}

// TestSlowRecorderPacesSession: a recorder that works but takes output
// slower than the program writes it slows the session down; it does not
// end it under fail closed, and every byte reaches the recorder.
func TestSlowRecorderPacesSession(t *testing.T) {
	slow := testutil.StartSlowRecorder(t)
	e := newEnv(t, policyFor([]netip.AddrPort{slow.Addr}, `"enforceRecorder": true,`), func(s *Server) {
		s.Recording.BufferSize = 64 << 10 // 1/32 of the output
	})
	const size = 2 << 20
	stdout, stderr, code := e.runSSH("", e.sshArgs(e.target(), fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo; echo end", size))...)
	if code != 0 || len(stdout) != size+5 {
		t.Fatalf("exit %d, %d bytes out, stderr %q; want the whole output", code, len(stdout), stderr)
	}
	testutil.WaitFor(t, "the upload to end", func() bool { return len(slow.Uploads()) == 1 })
	_, events, _ := strings.Cut(string(slow.Uploads()[0]), "\n") // the header names the command
	if got := strings.Count(events, "x"); got != size {
		t.Errorf("the recorder got %d of the %d x's", got, size)
	}
}

func TestPolicy(t *testing.T) {
	rec := startRecorder(t)
	e := newEnv(t, `{"ssh": [{"action": "accept", "src": ["nobody-else"], "dst": ["*"], "users": ["*"]}]}`)
	if _, stderr, code := e.runSSH("", e.sshArgs(e.target(), "true")...); code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("login not admitted by the policy: exit %d, stderr %q", code, stderr)
	}
	// Admit and record; a long session keeps its decision when the
	// policy changes under it.
	writePolicy(t, e, policyFor([]netip.AddrPort{rec.addr}, ""))
	tm := e.startTerminal(80, 24, e.sshArgs("-tt", e.target(), "echo first; read x; echo second")...)
	tm.Expect("first")
	writePolicy(t, e, `{"ssh": [{"action": "reject", "src": ["*"], "dst": ["*"]}]}`)
	if _, _, code := e.runSSH("", e.sshArgs(e.target(), "true")...); code != 255 {
		t.Errorf("new login after the reload: exit %d, want refused", code)
	}
	tm.Send("x\r")
	tm.Expect("second")
	if code := tm.Wait(); code != 0 {
		t.Errorf("the running session was disturbed by the reload: exit %d", code)
	}
	if got := rec.finished(t, 1)[0].data("o"); !strings.Contains(got, "second") {
		t.Errorf("recording lacks the end of the session: %q", got)
	}
}

func TestNoForwarding(t *testing.T) {
	e := newEnv(t, policyFor(nil, ""))
	_, stderr, code := e.runSSH("", e.sshArgs("-W", "127.0.0.1:9", e.target())...)
	if code != 255 || !strings.Contains(stderr, "forwarding failed") {
		t.Errorf("ssh -W: exit %d, stderr %q; want it refused", code, stderr)
	}
	c := e.goClient()
	defer c.Close()
	if conn, err := c.Dial("tcp", e.addr.String()); err == nil || !strings.Contains(err.Error(), "prohibited") {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("direct-tcpip channel: %v, want administratively prohibited", err)
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forwarding (tcpip-forward) was accepted")
	}
}

func TestNonRootServesOnlyItself(t *testing.T) {
	s := &Server{self: &localUser{Name: "alice"}}
	if _, err := s.resolveUser("bob"); err == nil || !strings.Contains(err.Error(), `serves only "alice"`) {
		t.Errorf("resolveUser(bob) = %v", err)
	}
}
