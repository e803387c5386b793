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
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
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
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testRecorder is reel's recorder, in process, reached through a proxy
// the test can cut.
type testRecorder struct {
	store *memstore.Store
	srv   *recorder.Server
	proxy *testutil.Proxy
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
	p := testutil.StartProxy(t, ln.Addr().String())
	t.Cleanup(func() {
		p.Cut()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		st.Close()
	})
	return &testRecorder{store: st, srv: srv, proxy: p, addr: p.Addr}
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
	var infos []store.Info
	live := false
	testutil.WaitForSeen(t, testutil.DefaultWait, fmt.Sprintf("%d finished recordings", n), func() bool {
		infos, live = nil, false
		for info, err := range r.store.List(context.Background(), store.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			live = live || info.Status == store.StatusLive
			infos = append(infos, info)
		}
		return len(infos) >= n && !live
	}, func() string { return fmt.Sprintf("%d recordings (live: %v)", len(infos), live) })
	if len(infos) > n {
		t.Fatalf("%d recordings stored, want %d", len(infos), n)
	}
	var out []stored
	for _, info := range infos {
		out = append(out, readStored(t, r.store, info))
	}
	return out
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
	logs    *testutil.Buffer
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
	testutil.NeedTool(t, "ssh")
	dir := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: dir, user: u.Username, logs: &testutil.Buffer{}}
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

// startTerminal runs the OpenSSH client with args on a pty of the given
// size, as a user at a terminal.
func (e *testEnv) startTerminal(cols, rows uint16, args ...string) *testutil.Terminal {
	e.t.Helper()
	return testutil.StartTerminal(e.t, cols, rows, exec.Command("ssh", args...))
}

func currentUserName(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}
