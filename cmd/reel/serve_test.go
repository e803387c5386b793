package main

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
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

func dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// TestServeAllowFrom: without mutual TLS, a sender outside --allow-from is
// refused before anything is stored, and the refusal is logged.
func TestServeAllowFrom(t *testing.T) {
	dst := t.TempDir()
	p := startServe(t, dst, "--allow-from", "10.0.0.0/8")
	if _, _, _, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{netip.MustParseAddrPort(p.addr)}, dialTCP); err == nil {
		t.Error("upload from 127.0.0.1 with --allow-from 10.0.0.0/8 succeeded")
	}
	p.logs.WaitFor(t, "refused connection: sender not in --allow-from")
	if ents, _ := os.ReadDir(filepath.Join(dst, "127.0.0.1")); len(ents) != 0 {
		t.Errorf("a refused sender left %d files", len(ents))
	}
}

// TestServeAllowFromFlood: a sender that --allow-from refuses opens 1,000
// connections and sends a request on each. The recorder closes every one
// as soon as it accepts it, so the refused sender holds none, and with the
// recorder's file limit far below 1,000 a normal upload still works.
func TestServeAllowFromFlood(t *testing.T) {
	dst := t.TempDir()
	debug := freeAddr(t)
	p := startServe(t, dst, "--allow-from", "127.0.0.1/32", "--debug-listen", debug)
	lim := unix.Rlimit{Cur: 256, Max: 256}
	if err := unix.Prlimit(p.cmd.Process.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("lowering reel serve's file limit: %v", err)
	}

	const n = 1000
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := d.Dial("tcp", p.addr)
		if err != nil {
			t.Fatalf("dial from 127.0.0.2 after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		io.WriteString(c, "HEAD /v2/event HTTP/1.1\r\nHost: recorder\r\n\r\n") // may fail: closed already
	}
	deadline := time.Now().Add(testutil.DefaultWait)
	for i, c := range conns {
		c.SetReadDeadline(deadline)
		if _, err := io.Copy(io.Discard, c); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection %d from the refused sender still open after %v", i, testutil.DefaultWait)
			}
		}
	}
	metric := func() string {
		resp, err := http.Get("http://" + debug + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testutil.WaitForSeen(t, testutil.DefaultWait, "1000 refusals counted", func() bool {
		return strings.Contains(metric(), `reel_refused_total{reason="allow_from"} 1000`)
	}, metric)

	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	body := []byte(`{"version":2,"width":80,"height":24}` + "\n" + `[0.5,"o","still served\r\n"]` + "\n")
	wc, _, errc, err := sessionrecording.ConnectToRecorder(ctx, []netip.AddrPort{netip.MustParseAddrPort(p.addr)}, dialTCP)
	if err != nil {
		t.Fatalf("normal upload after the flood: %v", err)
	}
	wc.Write(body)
	wc.Close()
	if err := testutil.Recv(t, "the upload's result", errc); err != nil {
		t.Fatalf("normal upload after the flood: %v", err)
	}
	if got := strings.Count(p.logs.String(), "sender not in --allow-from"); got < 1 || got > 10 {
		t.Errorf("refusals logged %d times; want them logged, but not once per connection", got)
	}
}

// TestServeMutualTLS: the sender's node is its certificate's identity, made
// path-safe, whatever the certificate says; a sender without a certificate
// is refused.
func TestServeMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	srvCert := issue(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "recorder"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	writePEM(t, filepath.Join(dir, "srv.pem"), "CERTIFICATE", srvCert.Certificate[0])
	keyDER, _ := x509.MarshalPKCS8PrivateKey(srvCert.PrivateKey)
	writePEM(t, filepath.Join(dir, "srv.key"), "PRIVATE KEY", keyDER)

	dst := filepath.Join(dir, "rec")
	p := startServe(t, dst, "--tls-cert", filepath.Join(dir, "srv.pem"), "--tls-key", filepath.Join(dir, "srv.key"), "--client-ca", filepath.Join(dir, "ca.pem"))

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: certs},
			ForceAttemptHTTP2: true,
		}}
	}
	upload := func(hc *http.Client) (*http.Response, error) {
		body := `{"version":2,"width":80,"height":24}` + "\n" + `[0.5,"o","over mTLS\r\n"]` + "\n"
		resp, err := hc.Post("https://"+p.addr+"/v2/record", "application/x-asciicast", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, nil
	}

	for _, tc := range []struct {
		name     string
		template *x509.Certificate
		identity string
	}{
		{"uri san", &x509.Certificate{Subject: pkix.Name{CommonName: "ignored"}, URIs: []*url.URL{{Scheme: "spiffe", Host: "corp", Path: "/ssh/bastion-1"}}}, "spiffe://corp/ssh/bastion-1"},
		{"dns san", &x509.Certificate{DNSNames: []string{"bastion-2.corp.example"}}, "bastion-2.corp.example"},
		{"hostile cn", &x509.Certificate{Subject: pkix.Name{CommonName: "../../etc/cron.d/x"}}, "../../etc/cron.d/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantNode := store.SafeNode(tc.identity)
			tc.template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			hc := client(issue(t, ca, caKey, tc.template))
			defer hc.CloseIdleConnections()
			resp, err := upload(hc)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
				t.Fatalf("upload: %s %s", resp.Proto, resp.Status)
			}
			files, _ := filepath.Glob(filepath.Join(dst, wantNode, "*.cast"))
			if len(files) != 1 {
				all, _ := filepath.Glob(filepath.Join(dst, "*", "*.cast"))
				t.Fatalf("want one recording under node %q, have %v", wantNode, all)
			}
			rst, err := fsstore.OpenReadOnly(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer rst.Close()
			if info, err := rst.Stat(t.Context(), wantNode+"/"+filepath.Base(files[0])); err != nil || info.Sender != tc.identity {
				t.Errorf("Stat: %+v, %v; want sender %q", info, err, tc.identity)
			}
			b, _ := os.ReadFile(files[0])
			if !bytes.Contains(b, []byte("over mTLS")) {
				t.Errorf("stored %q", b)
			}
		})
	}
	// Everything stayed inside dst.
	if _, err := os.Stat(filepath.Join(dir, "etc")); err == nil {
		t.Error("a certificate name escaped the recordings directory")
	}
	// No client certificate: the TLS handshake fails.
	hc := client()
	defer hc.CloseIdleConnections()
	if _, err := upload(hc); err == nil {
		t.Error("upload without a client certificate succeeded")
	}
}

// TestServeDebugEndpointsAndSIGTERM: /healthz and /metrics on
// --debug-listen reflect what happened; SIGTERM exits 0.
func TestServeDebugEndpointsAndSIGTERM(t *testing.T) {
	dst := t.TempDir()
	debug := freeAddr(t)
	p := startServe(t, dst, "--debug-listen", debug)
	body := []byte(`{"version":2,"width":80,"height":24}` + "\n" + `[0.5,"o","hello\r\n"]` + "\n")
	wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{netip.MustParseAddrPort(p.addr)}, dialTCP)
	if err != nil {
		t.Fatal(err)
	}
	wc.Write(body)
	wc.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + debug + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		"reel_received_bytes_total " + itoa(len(body)),
		"reel_durable_bytes_total " + itoa(len(body)),
		`reel_sessions_total{proto="v2",status="complete"} 1`,
		"reel_sessions_open 0",
		"reel_sync_seconds_count",
		"reel_disk_alarm 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if err := p.err; err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("reel serve did not exit after SIGTERM")
	}
	if !strings.Contains(serveLogs(p), "stopped") {
		t.Errorf("no 'stopped' log line:\n%s", serveLogs(p))
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reel test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeSIGTERMEndsIdleUploads: SIGTERM with an idle v1 upload (Tailscale's
// client against --no-v2) and an idle v2 upload open. Each recorder exits
// within its grace plus a bound, each recording is closed out as
// interrupted at its last complete line, and every byte acked (v2) or
// stored (v1) before the signal is there.
func TestServeSIGTERMEndsIdleUploads(t *testing.T) {
	const grace = time.Second
	complete := `{"version":2,"width":80,"height":24,"timestamp":1700000000}` + "\n" + `[0.1,"o","before\r\n"]` + "\n"
	partial := `[0.2,"o","cut off`
	body := complete + partial

	v1dst, v2dst := t.TempDir(), t.TempDir()
	v1 := startServe(t, v1dst, "--no-v2", "--shutdown-grace", grace.String())
	v2 := startServe(t, v2dst, "--shutdown-grace", grace.String())

	// v1: the real client; it is idle once the recorder holds the bytes.
	wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{netip.MustParseAddrPort(v1.addr)}, dialTCP)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	if _, err := wc.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	stored := func(dst string) func() bool {
		return func() bool {
			files, _ := filepath.Glob(filepath.Join(dst, "127.0.0.1", "*.cast"))
			if len(files) != 1 {
				return false
			}
			fi, err := os.Stat(files[0])
			return err == nil && fi.Size() == int64(len(body))
		}
	}
	testutil.WaitForSeen(t, testutil.DefaultWait, "the v1 upload to be stored", stored(v1dst), v1.logs.String)

	// v2: acks are visible, so wait until every byte is acked.
	hc := h2cClient()
	defer hc.CloseIdleConnections()
	s := openAckStream(t, hc, v2.addr)
	defer s.pw.Close()
	if err := s.write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitForSeen(t, testutil.DefaultWait, "every v2 byte to be acked", func() bool { return s.acked.Load() == int64(len(body)) }, v2.logs.String)

	start := time.Now()
	for _, p := range []*reelProc{v1, v2} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	// Grace, then the close-out; a hang shows here, not in a later test.
	const bound = 15 * time.Second
	for name, p := range map[string]*reelProc{"v1": v1, "v2": v2} {
		select {
		case <-p.done:
			if p.err != nil {
				t.Errorf("%s recorder: exit after SIGTERM: %v", name, p.err)
			}
		case <-time.After(grace + bound - time.Since(start)):
			t.Fatalf("%s recorder still running %v after SIGTERM (grace %v):\n%s", name, time.Since(start).Round(time.Millisecond), grace, p.logs.String())
		}
	}
	t.Logf("both recorders exited %v after SIGTERM (grace %v)", time.Since(start).Round(time.Millisecond), grace)

	for name, dst := range map[string]string{"v1": v1dst, "v2": v2dst} {
		files, _ := filepath.Glob(filepath.Join(dst, "127.0.0.1", "*.cast"))
		if len(files) != 1 {
			t.Fatalf("%s: %d recordings, want 1", name, len(files))
		}
		got, _ := os.ReadFile(files[0])
		tail, _ := os.ReadFile(files[0] + ".tail")
		status, _ := os.ReadFile(files[0] + ".status")
		if string(got) != complete || string(tail) != partial {
			t.Errorf("%s: stored %q + tail %q, want %q + %q", name, got, tail, complete, partial)
		}
		if !strings.Contains(string(status), `"interrupted"`) || !strings.Contains(string(status), "shutting down") {
			t.Errorf("%s: status %s, want interrupted by the shutdown", name, status)
		}
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("v1 client told the upload succeeded")
		}
	case <-time.After(testutil.DefaultWait):
		t.Error("v1 client never told the upload ended")
	}
}

// TestServeFlagsInREADME: every flag "reel serve --help" lists is in the
// README's "reel serve" section.
func TestServeFlagsInREADME(t *testing.T) {
	var out bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }}
	if code := dispatch(context.Background(), env, []string{"serve", "--help"}); code != 0 {
		t.Fatalf("reel serve --help: exit %d", code)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## The recorder: `reel serve`")
	section, _, _ = strings.Cut(section, "\n## ")
	flags := regexp.MustCompile(`(?m)^  --?([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1)
	if len(flags) < 20 {
		t.Fatalf("found %d flags in reel serve --help:\n%s", len(flags), out.String())
	}
	for _, m := range flags {
		if !strings.Contains(section, "`--"+m[1]+"`") {
			t.Errorf("--%s is not in README's reel serve section", m[1])
		}
	}
}

func TestLoopbackChecks(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   bool
	}{{"127.0.0.1:8080", true}, {"[::1]:80", true}, {"localhost:80", true}, {"0.0.0.0:80", false}, {":8080", false}, {"[::]:80", false}, {"10.1.2.3:80", false}} {
		if got := isLoopbackListen(tc.listen); got != tc.want {
			t.Errorf("isLoopbackListen(%q) = %v", tc.listen, got)
		}
	}
	for _, tc := range []struct {
		allow string
		want  bool
	}{{"127.0.0.0/8,::1/128", true}, {"127.0.0.1", true}, {"127.0.0.0/8,10.0.0.0/8", false}, {"0.0.0.0/0", false}, {"::/0", false}, {"", false}} {
		p, err := parseAllowFrom(tc.allow)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopbackOnly(p); got != tc.want {
			t.Errorf("loopbackOnly(%q) = %v", tc.allow, got)
		}
	}
}
