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
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
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
	_, _, _, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{netip.MustParseAddrPort(p.addr)}, dialTCP)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("upload from 127.0.0.1 with --allow-from 10.0.0.0/8: err = %v, want 403", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dst, "127.0.0.1")); len(ents) != 0 {
		t.Errorf("a refused sender left %d files", len(ents))
	}
	time.Sleep(100 * time.Millisecond)
	if !strings.Contains(serveLogs(p), "not in --allow-from") {
		t.Errorf("refusal not logged:\n%s", serveLogs(p))
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
