package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// sshE2E is a "reel ssh" process with a client key for one local user.
type sshE2E struct {
	t        *testing.T
	dir      string
	proc     *reelProc
	addr     string
	logs     *testutil.Buffer
	user     string
	keyPath  string
	pubLine  string // "ssh-ed25519 AAAA..."
	policy   string // path of the policy file
	keysFile string
}

// sshPolicy is a policy admitting everyone as any non-root user or root,
// recorded by recorders (none: not recorded), with extra rule fields.
func sshPolicy(recorders []string, extra string) string {
	recs, rec := "", ""
	if len(recorders) > 0 {
		q := make([]string, len(recorders))
		for i, r := range recorders {
			q[i] = fmt.Sprintf("%q", r)
		}
		recs = fmt.Sprintf(`"recorders": {"tag:rec": [%s]},`, strings.Join(q, ", "))
		rec = `"recorder": ["tag:rec"],`
	}
	return fmt.Sprintf(`{
	// written by ssh_e2e_test.go
	%s
	"ssh": [{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*", "root"], %s %s}],
}
`, recs, rec, extra)
}

// startReelSSH starts "reel ssh" with the policy text, serving loginUser
// with a fresh client key from the --authorized-keys file.
func startReelSSH(t *testing.T, policyText, loginUser string, extra ...string) *sshE2E {
	t.Helper()
	testutil.NeedTool(t, "ssh")
	dir := t.TempDir()
	e := &sshE2E{t: t, dir: dir, user: loginUser}
	e.policy = filepath.Join(dir, "policy.hujson")
	if err := os.WriteFile(e.policy, []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	e.keyPath = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(e.keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	e.pubLine = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	e.keysFile = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(e.keysFile, []byte(loginUser+" "+e.pubLine+" e2e\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start(append([]string{"--policy", e.policy, "--statedir", filepath.Join(dir, "state"),
		"--authorized-keys", e.keysFile, "--no-user-keys", "--hostname", "e2ehost", "--policy-interval", "100ms",
		"--log-level", "debug"}, extra...)...)
	return e
}

// start runs "reel ssh --listen ADDR ARGS..." on a free port and waits
// until it listens. At the end of the test it is stopped with SIGTERM,
// which it must obey.
func (e *sshE2E) start(args ...string) {
	e.t.Helper()
	e.addr = freeAddr(e.t)
	p := startReel(e.t, append([]string{"ssh", "--listen", e.addr}, args...)...)
	e.proc, e.logs = p, p.logs
	// Cleanups run last first: this one before startReel's kill.
	e.t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(testutil.DefaultWait):
			e.t.Errorf("reel ssh did not stop on SIGTERM within %v", testutil.DefaultWait)
		}
	})
	waitListening(e.t, p, e.addr)
}

func (e *sshE2E) port() string {
	_, p, _ := net.SplitHostPort(e.addr)
	return p
}

// opts are the OpenSSH client options, without the port.
func (e *sshE2E) opts() []string {
	return []string{"-F", "/dev/null", "-i", e.keyPath, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

func (e *sshE2E) sshArgs(extra ...string) []string {
	return append(append(e.opts(), "-p", e.port()), extra...)
}

func (e *sshE2E) target() string { return e.user + "@127.0.0.1" }

// run runs the OpenSSH client and returns its output and exit code.
func (e *sshE2E) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = strings.NewReader("")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("ssh: %v", err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// castFile is one recording stored by reel serve.
type castFile struct {
	info   store.Info
	raw    string
	header asciicast.Header
	events []asciicast.Event
}

func (c castFile) data(code string) string {
	var b strings.Builder
	for _, e := range c.events {
		if e.Code == code {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

// waitCasts waits until dst holds n recordings, none live, and returns
// them oldest first.
func waitCasts(t *testing.T, dst string, n int) []castFile {
	t.Helper()
	var infos []store.Info
	live := false
	testutil.WaitForSeen(t, testutil.DefaultWait, fmt.Sprintf("%d finished recordings in %s", n, dst), func() bool {
		infos, live = nil, false
		st, err := fsstore.OpenReadOnly(dst)
		if err != nil {
			return false
		}
		defer st.Close()
		for info, err := range st.List(context.Background(), store.Filter{}) {
			if err != nil {
				return false
			}
			live = live || info.Status == store.StatusLive
			infos = append(infos, info)
		}
		return len(infos) >= n && !live
	}, func() string { return fmt.Sprintf("%d recordings (live: %v)", len(infos), live) })
	if len(infos) > n {
		t.Fatalf("%d recordings in %s, want %d", len(infos), dst, n)
	}
	st, err := fsstore.OpenReadOnly(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []castFile
	for _, info := range infos {
		out = append(out, readCast(t, st, info))
	}
	return out
}

func readCast(t *testing.T, st store.Store, info store.Info) castFile {
	t.Helper()
	r, err := st.Open(context.Background(), info.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	c := castFile{info: info, raw: string(b)}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if err := c.header.UnmarshalJSON([]byte(lines[0])); err != nil {
		t.Fatalf("%s: header: %v", info.Key, err)
	}
	for _, l := range lines[1:] {
		var ev asciicast.Event
		if err := ev.UnmarshalJSON([]byte(l)); err != nil {
			t.Fatalf("%s: event %.100q: %v", info.Key, l, err)
		}
		c.events = append(c.events, ev)
	}
	return c
}

// startPTY runs the OpenSSH client with args on a pty of the given size.
func (e *sshE2E) startPTY(cols, rows uint16, args ...string) *testutil.Terminal {
	e.t.Helper()
	return testutil.StartTerminal(e.t, cols, rows, exec.Command("ssh", args...))
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestSSHRecordsToReelServe: the real OpenSSH client (ssh -tt, ssh host
// cmd, sftp, scp) against "reel ssh", recording to a real "reel serve".
func TestSSHRecordsToReelServe(t *testing.T) {
	dst := t.TempDir()
	srv := startServe(t, dst)
	e := startReelSSH(t, sshPolicy([]string{srv.addr}, ""), currentUser(t))

	// A command without a pty: output, exit status.
	stdout, stderr, code := e.run(e.sshArgs(e.target(), "echo to-stdout; echo to-stderr >&2; exit 5")...)
	if stdout != "to-stdout\n" || !strings.Contains(stderr, "to-stderr") || code != 5 {
		t.Fatalf("exec: stdout %q stderr %q exit %d", stdout, stderr, code)
	}

	// An interactive shell on a terminal: resize, a password read with
	// echo off, a command typed with echo on.
	c := e.startPTY(90, 25, e.sshArgs("-tt", e.target(), "PS1='$ ' exec sh -i")...)
	c.Expect("$ ")
	c.ExpectShellSize(25, 90)
	c.Resize(132, 43)
	c.ExpectShellSize(43, 132)
	// The prompt is printed from parts, so that waiting for it cannot be
	// satisfied by the echo of the typed line, before "stty -echo" ran.
	c.Send(`stty -echo; printf 'Pass''word: '; read pw; stty echo; echo; echo "len ${#pw}"` + "\r")
	c.Expect("Password: ")
	c.Send("s3cr3t-pa55\r")
	c.Expect("len 11")
	c.Send("exit\r")
	if code := c.Wait(); code != 0 {
		t.Fatalf("interactive ssh exit %d:\n%s", code, c.Output())
	}

	// File transfer.
	src := filepath.Join(e.dir, "payload")
	payload := bytes.Repeat([]byte("payload line\n"), 5000)
	os.WriteFile(src, payload, 0o644)
	sftp := exec.Command(testutil.NeedTool(t, "sftp"), append(append(e.opts(), "-P", e.port(), "-b", "-"), e.target())...)
	sftp.Stdin = strings.NewReader(fmt.Sprintf("put %s %s\n", src, filepath.Join(e.dir, "via-sftp")))
	if out, err := sftp.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	scp := exec.Command(testutil.NeedTool(t, "scp"), append(append(e.opts(), "-P", e.port(), "-O"), src, e.target()+":"+filepath.Join(e.dir, "via-scp"))...)
	if out, err := scp.CombinedOutput(); err != nil {
		t.Fatalf("scp: %v\n%s", err, out)
	}
	for _, f := range []string{"via-sftp", "via-scp"} {
		if got, _ := os.ReadFile(filepath.Join(e.dir, f)); !bytes.Equal(got, payload) {
			t.Errorf("%s: %d bytes arrived, want %d", f, len(got), len(payload))
		}
	}

	casts := waitCasts(t, dst, 4)
	exe, shell, sftpRec, scpRec := casts[0], casts[1], casts[2], casts[3]
	for _, c := range casts {
		if c.info.Status != store.StatusComplete {
			t.Errorf("%s: status %s (%s)", c.info.Key, c.info.Status, c.info.Reason)
		}
		if c.header.SSHUser != e.user || c.header.LocalUser != e.user || len(c.header.ConnectionID) != 16 ||
			string(c.header.Extra["hostname"]) != `"e2ehost"` || !strings.HasPrefix(string(c.header.Extra["sshKeyFingerprint"]), `"SHA256:`) {
			t.Errorf("%s: header %s", c.info.Key, strings.SplitN(c.raw, "\n", 2)[0])
		}
	}
	if exe.header.Command != "echo to-stdout; echo to-stderr >&2; exit 5" || !strings.Contains(exe.data("o"), "to-stdout\n") {
		t.Errorf("exec recording:\n%s", exe.raw)
	}
	if shell.header.Width != 90 || shell.header.Height != 25 || shell.header.Env["TERM"] != "xterm-256color" {
		t.Errorf("shell header: %dx%d %v", shell.header.Width, shell.header.Height, shell.header.Env)
	}
	var resizes []string
	for _, ev := range shell.events {
		if ev.Code == "r" {
			resizes = append(resizes, ev.Data)
		}
	}
	if diff := cmp.Diff([]string{"132x43"}, resizes); diff != "" {
		t.Errorf("resize events (-want +got):\n%s", diff)
	}
	for _, s := range []string{"size:25 90", "size:43 132", "Password: ", "len 11"} {
		if !strings.Contains(shell.data("o"), s) {
			t.Errorf("shell recording lacks %q", s)
		}
	}
	if strings.Contains(shell.raw, "s3cr3t") {
		t.Error("the password typed with echo off is in the recording")
	}
	if in := shell.data("i"); in != "" {
		t.Errorf("input recorded without the policy asking: %q", in)
	}
	if string(sftpRec.header.Extra["subsystem"]) != `"sftp"` || len(sftpRec.events) != 0 {
		t.Errorf("sftp recording:\n%s", sftpRec.raw)
	}
	if !strings.HasPrefix(scpRec.header.Command, "scp -t ") {
		t.Errorf("scp recording command %q", scpRec.header.Command)
	}
}

// TestSSHInputRecording: with inputRecording, typed commands are recorded,
// a password typed with echo off is not.
func TestSSHInputRecording(t *testing.T) {
	dst := t.TempDir()
	srv := startServe(t, dst)
	e := startReelSSH(t, sshPolicy([]string{srv.addr}, `"inputRecording": true,`), currentUser(t))
	c := e.startPTY(80, 24, e.sshArgs("-tt", e.target(), "PS1='$ ' exec sh -i")...)
	c.Expect("$ ")
	c.Send(`echo "typed-"in-clear` + "\r")
	c.Expect("typed-in-clear\r\n")
	// A marker computed by the shell after "stty -echo": the echo of
	// the typed line cannot show it.
	c.Send(`stty -echo; echo "ready-$((6*7))"; read pw; stty echo; echo "len ${#pw}"` + "\r")
	c.Expect("ready-42")
	c.Send("hunter2-secret\r")
	c.Expect("len 14")
	c.Send("exit\r")
	if code := c.Wait(); code != 0 {
		t.Fatalf("interactive ssh exit %d:\n%s", code, c.Output())
	}
	cast := waitCasts(t, dst, 1)[0]
	if in := cast.data("i"); !strings.Contains(in, `echo "typed-"in-clear`+"\r") {
		t.Errorf("typed command not recorded as input: %q", in)
	}
	if strings.Contains(cast.raw, "hunter2") {
		t.Error("the password typed with echo off is in the recording")
	}
	if string(cast.header.Extra["inputRecorded"]) != "true" {
		t.Error("header does not say input is recorded")
	}
}

// TestSSHFailClosed: enforceRecorder, with the recorder down at the
// start, then killed (kill -9) in the middle of a session.
func TestSSHFailClosed(t *testing.T) {
	dst := t.TempDir()
	addr := freeAddr(t) // nothing listens yet
	e := startReelSSH(t, sshPolicy([]string{addr}, `"enforceRecorder": true,`), currentUser(t))
	marker := filepath.Join(e.dir, "ran")
	_, stderr, code := e.run(e.sshArgs(e.target(), "touch "+marker)...)
	if code != 1 || !strings.Contains(stderr, "must be recorded, but no recorder could be reached") || !strings.Contains(stderr, addr) {
		t.Errorf("recorder down: exit %d, stderr %q; want 1 and a clear message", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although no recorder was reachable")
	}

	srv := startServeOn(t, addr, dst)
	after := filepath.Join(e.dir, "after")
	c := e.startPTY(80, 24, e.sshArgs("-tt", e.target(), "echo running; read x; touch "+after)...)
	c.Expect("running")
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.wait()
	c.Expect("the session is ended")
	if code := c.Wait(); code != 1 {
		t.Errorf("ssh exit %d after the recorder died, want 1", code)
	}
	// "session end" is logged once the session's process has been waited
	// for: nothing of it runs any more.
	e.logs.WaitFor(t, `msg="session end"`)
	if _, err := os.Stat(after); err == nil {
		t.Error("the session went on after its recorder died")
	}
}

// TestSSHFailOpen: without enforceRecorder, sessions run when the recorder
// is down or dies, the server logs it, and the next recording's header
// notes the gaps.
func TestSSHFailOpen(t *testing.T) {
	dst := t.TempDir()
	addr := freeAddr(t)
	e := startReelSSH(t, sshPolicy([]string{addr}, ""), currentUser(t))
	if out, _, code := e.run(e.sshArgs(e.target(), "echo unrecorded-1")...); code != 0 || out != "unrecorded-1\n" {
		t.Fatalf("recorder down: exit %d, out %q; want the session to run", code, out)
	}

	srv := startServeOn(t, addr, dst)
	c := e.startPTY(80, 24, e.sshArgs("-tt", e.target(), "echo part-one; read x; echo part-two")...)
	c.Expect("part-one")
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.wait()
	// Type only once reel ssh has noticed the loss, so that the session
	// goes on past it.
	e.logs.WaitFor(t, "RECORDING LOST")
	c.Send("x\r")
	c.Expect("part-two")
	if code := c.Wait(); code != 0 {
		t.Errorf("fail-open session ended with %d", code)
	}
	for _, s := range []string{"RECORDING FAILED TO START", "RECORDING LOST"} {
		if !strings.Contains(e.logs.String(), s) {
			t.Errorf("reel ssh did not log %q", s)
		}
	}

	// Each gap is noted in the header of the next recording that starts:
	// the refused start in the one the kill cut, the loss in the next.
	startServeOn(t, addr, dst)
	if _, _, code := e.run(e.sshArgs(e.target(), "echo recorded-again")...); code != 0 {
		t.Fatal("session after the recorder came back failed")
	}
	casts := waitCasts(t, dst, 2)
	type gapNote struct{ What, Reason, Command, SSHUser string }
	gapsOf := func(c castFile) []gapNote {
		var g []gapNote
		if err := json.Unmarshal(c.header.Extra["recordingGaps"], &g); err != nil {
			t.Fatalf("no recordingGaps in the header: %v\n%s", err, strings.SplitN(c.raw, "\n", 2)[0])
		}
		return g
	}
	if g := gapsOf(casts[0]); len(g) != 1 || g[0].Command != "echo unrecorded-1" || !strings.Contains(g[0].What, "not recorded") ||
		!strings.Contains(g[0].Reason, addr) {
		t.Errorf("gaps in the first recording: %+v", g)
	}
	if g := gapsOf(casts[1]); len(g) != 1 || !strings.Contains(g[0].What, "lost mid-session") || g[0].SSHUser != e.user ||
		g[0].Command != "echo part-one; read x; echo part-two" {
		t.Errorf("gaps in the second recording: %+v", g)
	}
	if casts[0].info.Status != store.StatusInterrupted {
		t.Errorf("the recording cut by the kill is %s, want interrupted", casts[0].info.Status)
	}
}

// TestSSHFailover: the first recorder is dead, the second records.
func TestSSHFailover(t *testing.T) {
	dst := t.TempDir()
	srv := startServe(t, dst)
	dead := freeAddr(t)
	e := startReelSSH(t, sshPolicy([]string{dead, srv.addr}, `"enforceRecorder": true,`), currentUser(t))
	if out, _, code := e.run(e.sshArgs(e.target(), "echo failed-over")...); code != 0 || out != "failed-over\n" {
		t.Fatalf("exit %d, out %q", code, out)
	}
	if c := waitCasts(t, dst, 1)[0]; !strings.Contains(c.data("o"), "failed-over") {
		t.Errorf("recording: %s", c.raw)
	}
	if !strings.Contains(e.logs.String(), "recording started after failover") {
		t.Error("failover not logged")
	}
}

// TestSSHPolicyReload: SIGHUP and file changes reload the policy; running
// sessions go on; a bad policy is rejected and the old one stays.
func TestSSHPolicyReload(t *testing.T) {
	dst := t.TempDir()
	srv := startServe(t, dst)
	e := startReelSSH(t, sshPolicy([]string{srv.addr}, ""), currentUser(t))
	c := e.startPTY(80, 24, e.sshArgs("-tt", e.target(), "echo long-session; read x; echo still-here")...)
	c.Expect("long-session")

	// A bad policy: logged, the old one stays.
	os.WriteFile(e.policy, []byte(`{"ssh": [{"action": "acept"}]}`), 0o644)
	e.proc.cmd.Process.Signal(syscall.SIGHUP)
	e.logs.WaitFor(t, "new policy rejected")
	if _, _, code := e.run(e.sshArgs(e.target(), "true")...); code != 0 {
		t.Errorf("login after a bad policy: exit %d, want the old policy in force", code)
	}
	// A policy that rejects everyone: new logins fail, the running
	// session goes on.
	os.WriteFile(e.policy, []byte(`{"ssh": [{"action": "reject", "src": ["*"], "dst": ["*"]}]}`), 0o644)
	e.proc.cmd.Process.Signal(syscall.SIGHUP)
	e.logs.WaitFor(t, `msg="policy: reloaded"`)
	if _, stderr, code := e.run(e.sshArgs(e.target(), "true")...); code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("login after the reject policy: exit %d %q", code, stderr)
	}
	c.Send("x\r")
	c.Expect("still-here")
	if code := c.Wait(); code != 0 {
		t.Errorf("the running session was dropped by the reload: exit %d", code)
	}
}

// TestSSHRunsAsLocalUser: reel ssh run as root switches to the login's
// local user, whose own ~/.ssh/authorized_keys it reads. It creates a
// throwaway user, so it runs only as root.
func TestSSHRunsAsLocalUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a throwaway user; a non-root reel ssh serves only its own user")
	}
	testutil.NeedTool(t, "useradd")
	name := fmt.Sprintf("reelt%d", os.Getpid()%100000)
	home := filepath.Join(t.TempDir(), "home")
	if out, err := exec.Command("useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", "--remove", name).Run() })

	dst := t.TempDir()
	srv := startServe(t, dst)
	e := startReelSSH(t, sshPolicy([]string{srv.addr}, ""), name)
	os.Chmod(filepath.Dir(home), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(home)), 0o755)
	out, stderr, code := e.run(e.sshArgs(e.target(), `id -un; echo "$HOME"; tty || true`)...)
	if code != 0 || !strings.HasPrefix(out, name+"\n"+home+"\n") {
		t.Fatalf("exit %d, out %q, stderr %q; want to run as %s", code, out, stderr, name)
	}
	// Without the central file, the user's own authorized_keys.
	sshDir := filepath.Join(home, ".ssh")
	os.MkdirAll(sshDir, 0o700)
	os.WriteFile(filepath.Join(sshDir, "authorized_keys"), []byte(e.pubLine+"\n"), 0o600)
	u, _ := user.Lookup(name)
	var uid, gid int
	fmt.Sscan(u.Uid, &uid)
	fmt.Sscan(u.Gid, &gid)
	os.Chown(sshDir, uid, gid)
	os.Chown(filepath.Join(sshDir, "authorized_keys"), uid, gid)
	os.WriteFile(e.keysFile, nil, 0o644) // the central file no longer lists the key
	e2 := startReelSSHWithKey(t, e, sshPolicy([]string{srv.addr}, ""))
	if out, stderr, code := e2.run(e2.sshArgs(e2.target(), "id -un")...); code != 0 || out != name+"\n" {
		t.Errorf("with ~/.ssh/authorized_keys: exit %d, out %q, stderr %q", code, out, stderr)
	}
	casts := waitCasts(t, dst, 2)
	for _, c := range casts {
		if c.header.LocalUser != name || c.header.SSHUser != name {
			t.Errorf("recording users: sshUser %q localUser %q, want %q", c.header.SSHUser, c.header.LocalUser, name)
		}
	}
}

// startReelSSHWithKey starts another reel ssh that reads users' own
// authorized_keys, for the user and client key of e.
func startReelSSHWithKey(t *testing.T, e *sshE2E, policyText string) *sshE2E {
	t.Helper()
	e2 := &sshE2E{t: t, dir: e.dir, user: e.user, keyPath: e.keyPath, pubLine: e.pubLine}
	e2.policy = filepath.Join(e.dir, "policy2.hujson")
	if err := os.WriteFile(e2.policy, []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	e2.start("--policy", e2.policy, "--statedir", filepath.Join(e.dir, "state2"))
	return e2
}

func TestSSHUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no policy", []string{"ssh", "--statedir", "x"}, "--policy is required"},
		{"no state dir", []string{"ssh", "--policy", "p"}, "--statedir is required"},
		{"both spellings", []string{"ssh", "--policy", "p", "--statedir", "x", "--state-dir", "y"}, "give only one of them"},
		{"bad tag", []string{"ssh", "--policy", "p", "--statedir", "x", "--tag", "prod"}, `--tag "prod": want tag:NAME`},
		{"small buffer", []string{"ssh", "--policy", "p", "--statedir", "x", "--record-buffer", "1KiB"}, "--record-buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
			if code := dispatch(context.Background(), env, tc.args); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
		})
	}
}

// TestSSHStateDirSpellings: --statedir is the flag (as reel serve's);
// the old --state-dir still works, with a warning, and is not in --help.
func TestSSHStateDirSpellings(t *testing.T) {
	run := func(args ...string) (code int, stdout, stderr string) {
		var out, errb bytes.Buffer
		env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		return dispatch(context.Background(), env, args), out.String(), errb.String()
	}
	for _, flag := range []string{"--statedir", "--state-dir"} {
		t.Run(flag, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			// A policy that does not exist: reel ssh takes the flags and
			// stops at the policy.
			code, _, stderr := run("ssh", "--policy", filepath.Join(state, "nosuch.hujson"), flag, state)
			if code != 1 || !strings.Contains(stderr, "nosuch.hujson") {
				t.Fatalf("exit %d, stderr %q; want 1 and the missing policy", code, stderr)
			}
			if deprecated := strings.Contains(stderr, "--state-dir is deprecated; use --statedir"); deprecated != (flag == "--state-dir") {
				t.Errorf("stderr %q: deprecation warning shown: %v", stderr, deprecated)
			}
		})
	}
	code, help, _ := run("ssh", "--help")
	if code != 0 || !strings.Contains(help, "-statedir") || strings.Contains(help, "state-dir") {
		t.Errorf("--help: exit %d; want --statedir and no --state-dir in:\n%s", code, help)
	}
}
