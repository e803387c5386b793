package sshserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// needTool returns the path of an external program the test needs. It
// skips without it, except in CI, where a missing peer is a failure.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (run scripts/test-deps.sh): %v", name, err)
		}
		t.Skipf("%s is not installed (run scripts/test-deps.sh)", name)
	}
	return p
}

// testRecorder is reel's recorder, in process, reached through a proxy
// the test can cut.
type testRecorder struct {
	store *memstore.Store
	srv   *recorder.Server
	proxy *tcpProxy
	addr  netip.AddrPort // the proxy's address
}

func startRecorder(t *testing.T) *testRecorder {
	t.Helper()
	st := memstore.New(memstore.Options{})
	srv := &recorder.Server{Store: st, AckInterval: 50 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	p := startProxy(t, ln.Addr().String())
	t.Cleanup(func() {
		p.cut()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		st.Close()
	})
	return &testRecorder{store: st, srv: srv, proxy: p, addr: p.addr}
}

// tcpProxy forwards connections to a backend; cut drops them all and
// refuses new ones, like a recorder that died.
type tcpProxy struct {
	ln      net.Listener
	addr    netip.AddrPort
	backend string

	mu    sync.Mutex
	conns []net.Conn
	dead  bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, backend string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String()), backend: backend}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.dead {
				p.mu.Unlock()
				c.Close()
				b.Close()
				continue
			}
			p.conns = append(p.conns, c, b)
			p.wg.Add(2)
			p.mu.Unlock()
			go func() { defer p.wg.Done(); io.Copy(b, c); b.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, b); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	p.dead = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// stored is one recording as stored.
type stored struct {
	status store.Status
	raw    string
	header asciicast.Header
	events []asciicast.Event
}

// output returns the data of the events with the code, joined.
func (s stored) data(code string) string {
	var b strings.Builder
	for _, e := range s.events {
		if e.Code == code {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

// finished waits until n recordings are stored and none is live, and
// returns them in the order they started.
func (r *testRecorder) finished(t *testing.T, n int) []stored {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var infos []store.Info
		live := false
		for info, err := range r.store.List(context.Background(), store.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			if info.Status == store.StatusLive {
				live = true
			}
			infos = append(infos, info)
		}
		if len(infos) >= n && !live {
			if len(infos) > n {
				t.Fatalf("%d recordings stored, want %d", len(infos), n)
			}
			var out []stored
			for _, info := range infos {
				out = append(out, readStored(t, r.store, info))
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %d finished recordings: have %d (live: %v)", n, len(infos), live)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readStored(t *testing.T, st store.Store, info store.Info) stored {
	t.Helper()
	rd, err := st.Open(context.Background(), info.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	s := stored{status: info.Status, raw: string(b)}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return s
	}
	if err := s.header.UnmarshalJSON([]byte(lines[0])); err != nil {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	for _, l := range lines[1:] {
		var e asciicast.Event
		if err := e.UnmarshalJSON([]byte(l)); err != nil {
			t.Fatalf("recording %s (%s, %q, %d bytes): event %.200q (%d bytes): %v", info.Key, info.Status, info.Reason, len(b), l, len(l), err)
		}
		s.events = append(s.events, e)
	}
	return s
}

// testEnv is a reel ssh server in process, with a client key authorized
// for the current user.
type testEnv struct {
	t       *testing.T
	dir     string
	srv     *Server
	addr    netip.AddrPort
	user    string
	keyPath string
	signer  ssh.Signer
	polPath string
	holder  *policy.Holder
	logs    *syncBuffer
}

// policyFor writes a policy admitting the current user, recorded by the
// given recorders (none: not recorded) with the given rule options.
func policyFor(recorders []netip.AddrPort, ruleExtra string) string {
	var addrs []string
	for _, a := range recorders {
		addrs = append(addrs, fmt.Sprintf("%q", a.String()))
	}
	rec := ""
	recs := ""
	if len(addrs) > 0 {
		recs = fmt.Sprintf(`"recorders": {"tag:rec": [%s]},`, strings.Join(addrs, ", "))
		rec = `"recorder": ["tag:rec"],`
	}
	return fmt.Sprintf(`{
	%s
	"ssh": [{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*", "root"], %s %s}],
}`, recs, rec, ruleExtra)
}

func newEnv(t *testing.T, policyText string, mods ...func(*Server)) *testEnv {
	t.Helper()
	needTool(t, "ssh")
	dir := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: dir, user: u.Username, logs: &syncBuffer{}}
	e.polPath = filepath.Join(dir, "policy.hujson")
	if err := os.WriteFile(e.polPath, []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.holder, err = policy.Load(e.polPath); err != nil {
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
	if e.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "authorized_keys")
	line := e.user + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(e.signer.PublicKey()))) + " test key\n"
	if err := os.WriteFile(keys, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	hostKeys, err := LoadHostKeys(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = &Server{
		HostKeys:           hostKeys,
		Policy:             e.holder.Get,
		AuthorizedKeysFile: keys,
		NoUserKeys:         true, // never read real users' files in tests
		Hostname:           "testhost",
		Recording:          &sender.Client{AckTimeout: 2 * time.Second},
		Log:                slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FinishTimeout:      5 * time.Second,
	}
	for _, m := range mods {
		m(e.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = netip.MustParseAddrPort(ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("reel ssh logs:\n%s", e.logs.String())
		}
	})
	return e
}

// sshArgs returns the arguments for the OpenSSH client to reach the
// server as the current user, then extra.
func (e *testEnv) sshArgs(extra ...string) []string {
	args := []string{"-F", "/dev/null", "-i", e.keyPath, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-p", fmt.Sprint(e.addr.Port())}
	args = append(args, extra...)
	return args
}

func (e *testEnv) target() string { return e.user + "@127.0.0.1" }

// runSSH runs the OpenSSH client with args and returns its output and
// exit code.
func (e *testEnv) runSSH(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("ssh: %v", err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// terminal runs the OpenSSH client on a pty, as a user at a terminal.
type terminal struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	out    syncBuffer
	read   chan struct{}
	exit   chan int
}

func (e *testEnv) startTerminal(cols, rows uint32, args ...string) *terminal {
	e.t.Helper()
	master, tty, err := openPTY()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := setWinsize(master, cols, rows); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	tty.Close()
	tm := &terminal{t: e.t, master: master, cmd: cmd, read: make(chan struct{}), exit: make(chan int, 1)}
	go func() {
		defer close(tm.read)
		io.Copy(&tm.out, master)
	}()
	go func() {
		cmd.Wait()
		tm.exit <- cmd.ProcessState.ExitCode()
	}()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		master.Close()
		<-tm.read
	})
	return tm
}

// expect waits until the terminal has shown s.
func (tm *terminal) expect(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(tm.out.String(), s) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("terminal did not show %q; it shows:\n%s", s, tm.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *terminal) send(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *terminal) resize(cols, rows uint32) {
	tm.t.Helper()
	// The kernel sends SIGWINCH to ssh, which sends a window-change.
	if err := setWinsize(tm.master, cols, rows); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *terminal) wait() int {
	tm.t.Helper()
	select {
	case code := <-tm.exit:
		return code
	case <-time.After(20 * time.Second):
		tm.t.Fatalf("ssh did not exit; terminal:\n%s", tm.out.String())
	}
	return -1
}

// fakeRecorder is a v2 recorder that accepts uploads and acks them but
// never reads their bodies: a recorder too slow for the session.
func startStalledRecorder(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/record" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodPost {
			return
		}
		http.NewResponseController(w).Flush()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				io.WriteString(w, `{"ack":0}`+"\n")
				http.NewResponseController(w).Flush()
			}
		}
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

func deadAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}
