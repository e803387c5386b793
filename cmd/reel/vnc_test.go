package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/rfb/rfbtest"
	"github.com/reel-rec/reel/internal/testutil"
)

// testCert writes a self-signed CA certificate for 127.0.0.1 and its key.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// The real reel vnc and reel serve commands: a session through the proxy
// is recorded; kill -9 of the recorder mid-session ends the session
// (enforceRecorder), and after the recorder restarts the stored desktop
// recording is valid up to its last complete record, marked interrupted.
func TestVNCRecorderKilled(t *testing.T) {
	d := rfbtest.StartDesktop(t, 400, 300)
	dir := t.TempDir()
	dst := filepath.Join(dir, "recordings")
	serve := startServe(t, dst)

	certFile, keyFile, pool := testCert(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw-alice"), bcrypt.MinCost)
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600)
	vncpw := filepath.Join(dir, "vncpw")
	os.WriteFile(vncpw, []byte(rfbtest.VNCPassword+"\n"), 0o600)
	pol := filepath.Join(dir, "policy.hujson")
	os.WriteFile(pol, []byte(fmt.Sprintf(`{
		"recorders": {"tag:rec": [%q]},
		"desktop": [{"action": "accept", "src": ["alice"], "dst": ["lab"], "recorder": ["tag:rec"], "enforceRecorder": true}],
	}`, serve.addr)), 0o644)
	addr := freeAddr(t)
	vnc := startReel(t, "vnc", "--listen", addr, "--upstream", d.Addr, "--upstream-password-file", vncpw,
		"--policy", pol, "--users", users, "--tls-cert", certFile, "--tls-key", keyFile, "--host", "lab")
	waitListening(t, vnc, addr)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := rfb.NewClient(conn, rfb.ClientConfig{User: "alice", Password: "pw-alice", TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatalf("login: %v\n%s", err, vnc.logs.String())
	}
	ended := make(chan error, 1)
	go func() {
		c.RequestUpdate(false)
		for {
			if _, err := c.ReadMessage(); err != nil {
				ended <- err
				return
			}
			if err := c.RequestUpdate(true); err != nil {
				ended <- err
				return
			}
		}
	}()
	var key string
	var before *desktop.Index
	testutil.WaitForSeen(t, testutil.DefaultWait, "a desktop recording with two keyframes' worth of changes", func() bool {
		m, _ := filepath.Glob(filepath.Join(dst, "*", "*.desk"))
		if len(m) != 1 {
			return false
		}
		key = m[0]
		d.Must(t, "type", "abc ")
		b, _ := os.ReadFile(key)
		ix, err := desktop.Scan(bytes.NewReader(b))
		before = ix
		return err == nil && len(ix.Keyframes) >= 1 && ix.Records >= 5
	}, vnc.logs.String)

	serve.cmd.Process.Signal(syscall.SIGKILL)
	serve.wait()
	select {
	case err := <-ended:
		t.Logf("session ended: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("the session went on after its recorder was killed (enforceRecorder)\n%s", vnc.logs.String())
	}

	startServeOn(t, serve.addr, dst) // recovers the interrupted recording
	b, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := desktop.Scan(bytes.NewReader(b))
	if err != nil || ix.Err != nil || ix.Truncated {
		t.Fatalf("recovered recording: %v %+v", err, ix)
	}
	if ix.Records < before.Records || len(ix.Keyframes) == 0 || ix.Header.User != "alice" || ix.Header.Host != "lab" {
		t.Errorf("recovered recording has %d records (%d seen before the kill), header %+v", ix.Records, before.Records, ix.Header)
	}
	var st struct{ Status string }
	sb, err := os.ReadFile(key + ".status")
	if err != nil || json.Unmarshal(sb, &st) != nil || st.Status != "interrupted" {
		t.Errorf("status file: %s %v", sb, err)
	}
	if !strings.Contains(vnc.logs.String(), "ending the session") {
		t.Errorf("reel vnc did not log the end of the session:\n%s", vnc.logs.String())
	}
}

func TestVNCUsage(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.hujson")
	os.WriteFile(pol, []byte(`{}`), 0o644)
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("a:plain-text\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vnc"}, 2, "--upstream is required"},
		{[]string{"vnc", "--upstream", "h:1"}, 2, "--policy is required"},
		{[]string{"vnc", "--upstream", "h:1", "--policy", pol}, 2, "--users is required"},
		{[]string{"vnc", "--upstream", "nohostport", "--policy", pol, "--users", users}, 2, "want HOST:PORT"},
		{[]string{"vnc", "--upstream", "h:1", "--policy", pol, "--users", users, "--tls-cert", "c.pem"}, 2, "go together"},
		{[]string{"vnc", "--upstream", "h:1", "--policy", pol, "--users", users}, 1, "unknown hash"},
		{[]string{"help", "vnc"}, 0, "VeNCrypt"},
	} {
		res := reviewRun(t, nil, nil, tc.args...)
		if res.Code != tc.code || !strings.Contains(res.Stdout+res.Stderr, tc.want) {
			t.Errorf("%v: %+v, want code %d and %q", tc.args, res, tc.code, tc.want)
		}
	}
}

// reel ls shows a desktop recording's user, duration and desktop, finds
// it by --user, lists a node directory that holds only desktop
// recordings, and gives its kind and header in --json.
func TestLsDesktop(t *testing.T) {
	dst := t.TempDir()
	os.MkdirAll(filepath.Join(dst, "node1"), 0o755)
	var buf bytes.Buffer
	enc, err := desktop.NewEncoder(&buf, desktop.Header{Width: 8, Height: 8, Start: time.Unix(1764770000, 0), User: "alice", Host: "lab"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc.Keyframe(0, desktop.NewImage(8, 8))
	enc.Pointer(83*time.Second, 1, 1, 0)
	os.WriteFile(filepath.Join(dst, "node1", "2026-12-03T14-00-00.000000000Z.desk"), buf.Bytes(), 0o644)
	for _, args := range [][]string{
		{"ls", "--dst", dst},
		{"ls", "--dst", dst, "--user", "alice"},
		{"ls", "--dst", filepath.Join(dst, "node1")}, // a node's directory that holds only desktop recordings
	} {
		res := reviewRun(t, nil, nil, args...)
		if res.Code != 0 || !strings.Contains(res.Stdout, "node1/2026-12-03T14-00-00.000000000Z.desk") || !strings.Contains(res.Stdout, "alice") ||
			!strings.Contains(res.Stdout, "desktop lab") || !strings.Contains(res.Stdout, "1m23s") {
			t.Errorf("reel %s: %+v", strings.Join(args, " "), res)
		}
	}
	res := reviewRun(t, nil, nil, "ls", "--dst", dst, "--json")
	if res.Code != 0 || !strings.Contains(res.Stdout, `"kind":"desktop"`) || !strings.Contains(res.Stdout, `"desktop":{"format":"reel-desktop"`) {
		t.Errorf("reel ls --json: %+v", res)
	}
}

// TestVNCTailnetFlags: tailnet-mode mistakes are reported before reel vnc
// tries to join anything, and a tailnet-only proxy needs no --users
// (nobody logs in with a password there). Joining and serving are tested
// with real peers in internal/tailnet/e2e.
func TestVNCTailnetFlags(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.hujson")
	os.WriteFile(pol, []byte(`{}`), 0o644)
	base := []string{"vnc", "--upstream", "127.0.0.1:1", "--policy", pol}
	noKey := map[string]string{"TS_AUTHKEY_FILE": filepath.Join(dir, "no-such-authkey")}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"no statedir", []string{"--tailnet"}, nil, 2, "--tailnet needs --statedir"},
		{"plain listener needs users", []string{"--tailnet", "--statedir", dir, "--listen", "127.0.0.1:0"}, nil, 2, "--users is required for --listen and --websocket"},
		{"websocket needs users", []string{"--tailnet", "--statedir", dir, "--websocket", "127.0.0.1:0"}, nil, 2, "--users is required for --listen and --websocket"},
		{"REEL_VNC_LISTEN is a plain listener", []string{"--tailnet", "--statedir", dir}, map[string]string{"REEL_VNC_LISTEN": "127.0.0.1:0"}, 2, "--users is required"},
		{"tag without tag: prefix", []string{"--tailnet", "--statedir", dir, "--advertise-tags", "tag:ok,desk"}, nil, 2, `"desk" is not a tag`},
		{"no --users needed: the auth key is read", []string{"--tailnet", "--statedir", dir}, noKey, 1, "TS_AUTHKEY_FILE"},
		{"REEL_TAILNET turns it on", []string{"--statedir", dir}, map[string]string{"REEL_TAILNET": "1", "TS_AUTHKEY_FILE": noKey["TS_AUTHKEY_FILE"]}, 1, "TS_AUTHKEY_FILE"},
		{"without --tailnet --users is required", nil, nil, 2, "--users is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := reviewRun(t, nil, tc.env, append(base, tc.args...)...)
			if res.Code != tc.code || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", res.Code, res.Stderr, tc.code, tc.want)
			}
			if strings.Contains(res.Stderr, "joining the tailnet") {
				t.Errorf("reel vnc tried to join the tailnet: %s", res.Stderr)
			}
		})
	}
}
