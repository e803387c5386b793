package rfb_test

// Real peers for the tests: TigerVNC's Xvnc with xterm as the desktop,
// TigerVNC's vncviewer under Xvfb and noVNC in headless Chromium as the
// clients, reel's own recorder and store in process.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/rfb/rfbtest"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

const (
	userName = "alice"
	userPass = "alice-secret"
	bobPass  = "bob-secret" // bob may log in, but no rule admits him
)

type desk = rfbtest.Desktop

var (
	startX         = rfbtest.StartX
	startDesktop   = rfbtest.StartDesktop
	diffPixels     = rfbtest.DiffPixels
	maxChannelDiff = rfbtest.MaxChannelDiff
)

const vncPassword = rfbtest.VNCPassword

// rec is reel's recorder, in process, storing on disk.
type rec struct {
	srv  *recorder.Server
	st   *fsstore.Store
	addr netip.AddrPort
	ln   net.Listener
	dir  string
	done chan error
}

func startRecorder(t testing.TB) *rec {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.Open(dir, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := &rec{st: st, dir: dir, done: make(chan error, 1)}
	r.srv = &recorder.Server{Store: st, AckInterval: 50 * time.Millisecond}
	if r.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	r.addr = netip.MustParseAddrPort(r.ln.Addr().String())
	go func() { r.done <- r.srv.Serve(r.ln) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *rec) stop(t testing.TB) {
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	<-r.done
	r.st.Close()
	r.srv = nil
}

// desktops lists the store's desktop recordings.
func (r *rec) desktops(t testing.TB) []store.Info {
	t.Helper()
	st, err := fsstore.OpenReadOnly(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []store.Info
	for info, err := range st.List(context.Background(), store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if store.KindOf(info.Key) == store.KindDesktop {
			out = append(out, info)
		}
	}
	return out
}

// open reads the bytes of a recording as stored so far.
func (r *rec) read(t testing.TB, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastFrame rebuilds the last screen of a recording's bytes.
func lastFrame(t testing.TB, data []byte) (*desktop.Player, *desktop.Index) {
	t.Helper()
	ix, err := desktop.Scan(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if ix.Err != nil {
		t.Fatalf("recording: %v", ix.Err)
	}
	p, err := desktop.FrameAt(bytes.NewReader(data), ix, ix.Duration)
	if err != nil {
		t.Fatal(err)
	}
	return p, ix
}

// pki is a test CA and the proxy's certificate, signed by it, for
// 127.0.0.1.
type pki struct {
	caFile string
	cert   tls.Certificate
	caPool *x509.CertPool
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reel test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{cert: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.caFile = filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	return p
}

// proxy is reel vnc in process.
type proxy struct {
	srv    *rfb.Server
	addr   string
	wsAddr string
	pki    *pki
	logs   *testutil.Buffer
}

const recordingPolicy = `{
	"recorders": {"tag:rec": [%s]},
	"desktop": [
		{"action": "accept", "src": ["%s"], "dst": ["*"], "recorder": ["tag:rec"], "enforceRecorder": %t},
	],
}`

func startProxy(t testing.TB, d *desk, recorders []netip.AddrPort, enforce bool, configure func(*rfb.Server)) *proxy {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(userPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := bcrypt.GenerateFromPassword([]byte(bobPass), bcrypt.MinCost)
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("# test users\n"+userName+":"+string(hash)+"\nbob:"+string(bob)+"\n"), 0o600)
	var rs []string
	for _, r := range recorders {
		rs = append(rs, strconv.Quote(r.String()))
	}
	pol, err := policy.Parse("p.hujson", []byte(fmt.Sprintf(recordingPolicy, strings.Join(rs, ", "), userName, enforce)))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{pki: newPKI(t), logs: new(testutil.Buffer)}
	p.srv = &rfb.Server{
		Upstream: d.Addr, UpstreamPassword: vncPassword, Host: "lab",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{p.pki.cert}},
		Auth:      &rfb.UserFile{Path: users},
		Policy:    func() *policy.Policy { return pol },
		Recording: &sender.Client{AttemptTimeout: 5 * time.Second, AckTimeout: 5 * time.Second},
		Log:       slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(p.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr, p.wsAddr = ln.Addr().String(), wln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- p.srv.Serve(ln) }()
	go func() { done <- p.srv.ServeWebSocket(wln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.srv.Shutdown(ctx)
		<-done
		<-done
		if t.Failed() {
			t.Logf("reel vnc log:\n%s", p.logs.String())
		}
	})
	return p
}
