package rfb_test

// Real peers for the tests: TigerVNC's Xvnc with xterm as the desktop,
// TigerVNC's vncviewer under Xvfb and noVNC in headless Chromium as the
// clients, reel's own recorder and store in process.

import (
	"bytes"
	"context"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"os/exec"
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
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

const (
	vncPassword = "vnc-pass"
	userName    = "alice"
	userPass    = "alice-secret"
	bobPass     = "bob-secret" // bob may log in, but no rule admits him
)

// startX starts an X server (Xvnc with args, or Xvfb) on a free display
// and returns the display (":N").
func startX(t testing.TB, prog string, args ...string) string {
	t.Helper()
	testutil.NeedTool(t, prog)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog, append([]string{"-displayfd", "3", "-nolisten", "tcp"}, args...)...)
	cmd.ExtraFiles = []*os.File{pw}
	var logb testutil.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(pr, 16))
		pr.Close()
		got <- strings.TrimSpace(string(b))
	}()
	select {
	case n := <-got:
		if n == "" {
			t.Fatalf("%s did not start:\n%s", prog, logb.String())
		}
		return ":" + n
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not report its display in 60 s:\n%s", prog, logb.String())
	}
	return ""
}

// vncPasswordFile writes a password file as vncpasswd does: the password
// DES-encrypted with VNC's fixed key.
func vncPasswordFile(t testing.TB, dir, password string) string {
	t.Helper()
	// VNC's d3des takes key bits in the opposite order to crypto/des.
	key := []byte{23, 82, 107, 6, 35, 78, 88, 7}
	for i, b := range key {
		key[i] = bits.Reverse8(b)
	}
	c, err := des.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	var pw [8]byte
	copy(pw[:], password)
	out := make([]byte, 8)
	c.Encrypt(out, pw[:])
	p := filepath.Join(dir, "passwd")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// desk is a running desktop: Xvnc serving RFB on addr, with an xterm.
type desk struct {
	display string
	addr    string
	w, h    int
}

func startDesktop(t testing.TB, w, h int) *desk {
	t.Helper()
	dir := t.TempDir()
	pw := vncPasswordFile(t, dir, vncPassword)
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	display := startX(t, "Xvnc", "-geometry", fmt.Sprintf("%dx%d", w, h), "-depth", "24",
		"-rfbport", port, "-interface", "127.0.0.1", "-SecurityTypes", "VncAuth", "-PasswordFile", pw,
		"-BlacklistThreshold", "1000000", "-nocursor", "-AlwaysShared", "-AcceptSetDesktopSize=0")
	d := &desk{display: display, addr: addr, w: w, h: h}
	testutil.NeedTool(t, "xterm")
	xt := exec.Command("xterm", "-display", display, "-geometry", "60x12+20+20", "-fa", "", "-fn", "fixed", "+sb", "-bg", "white", "-fg", "black", "-e", "sh", "-c", "PS1='$ ' exec sh")
	xt.Env = append(os.Environ(), "DISPLAY="+display)
	if err := xt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xt.Process.Kill(); xt.Wait() })
	testutil.WaitFor(t, "the xterm window", func() bool {
		out, _ := d.xdotool("search", "--class", "xterm")
		return strings.TrimSpace(out) != ""
	})
	return d
}

func (d *desk) xdotool(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *desk) must(t testing.TB, args ...string) {
	t.Helper()
	if out, err := d.xdotool(args...); err != nil {
		t.Fatalf("xdotool %v: %v\n%s", args, err, out)
	}
}

// screenshot takes the server side's picture of the screen with xwd.
func (d *desk) screenshot(t testing.TB) *desktop.Image {
	t.Helper()
	cmd := exec.Command("xwd", "-root", "-silent", "-display", d.display)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := parseXWD(out)
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	return img
}

// stableScreenshot takes screenshots until two in a row are equal.
func (d *desk) stableScreenshot(t testing.TB) *desktop.Image {
	t.Helper()
	prev := d.screenshot(t)
	var shot *desktop.Image
	testutil.WaitFor(t, "the screen to settle", func() bool {
		shot = d.screenshot(t)
		same := diffPixels(prev, shot) == 0
		prev = shot
		return same
	})
	return shot
}

// parseXWD decodes a ZPixmap XWD dump (xwd -root) of a TrueColor screen.
func parseXWD(b []byte) (*desktop.Image, error) {
	if len(b) < 100 {
		return nil, errors.New("short XWD")
	}
	f := func(i int) uint32 { return binary.BigEndian.Uint32(b[4*i:]) }
	hsize, format, w, h := f(0), f(2), int(f(4)), int(f(5))
	order, bpp, bpl := f(7), f(11), int(f(12))
	rmask, gmask, bmask, ncolors := f(14), f(15), f(16), f(19)
	if format != 2 || bpp != 32 {
		return nil, fmt.Errorf("XWD format %d, %d bpp: want ZPixmap, 32", format, bpp)
	}
	off := int(hsize) + 12*int(ncolors)
	if len(b) < off+bpl*h {
		return nil, errors.New("truncated XWD")
	}
	shift := func(m uint32) uint32 {
		var s uint32
		for m != 0 && m&1 == 0 {
			m >>= 1
			s++
		}
		return s
	}
	rs, gs, bs := shift(rmask), shift(gmask), shift(bmask)
	img := desktop.NewImage(w, h)
	for y := 0; y < h; y++ {
		row := b[off+y*bpl:]
		for x := 0; x < w; x++ {
			var v uint32
			if order == 0 {
				v = binary.LittleEndian.Uint32(row[4*x:])
			} else {
				v = binary.BigEndian.Uint32(row[4*x:])
			}
			img.Pix[y*w+x] = (v&rmask)>>rs<<16 | (v&gmask)>>gs<<8 | (v&bmask)>>bs
		}
	}
	return img, nil
}

// diffPixels counts the pixels that differ.
func diffPixels(a, b *desktop.Image) int {
	if a.W != b.W || a.H != b.H {
		return a.W * a.H
	}
	n := 0
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			n++
		}
	}
	return n
}

// maxChannelDiff returns the largest difference of one colour channel
// between a and b, and the mean absolute difference.
func maxChannelDiff(a, b *desktop.Image) (int, float64) {
	worst, sum := 0, 0
	for i := range a.Pix {
		for s := 0; s < 24; s += 8 {
			d := int(a.Pix[i]>>s&255) - int(b.Pix[i]>>s&255)
			if d < 0 {
				d = -d
			}
			worst = max(worst, d)
			sum += d
		}
	}
	return worst, float64(sum) / float64(3*len(a.Pix))
}

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
		Upstream: d.addr, UpstreamPassword: vncPassword, Host: "lab",
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
