package kubeproxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"testing"
)

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

func certPool(t *testing.T, pemCerts []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemCerts) {
		t.Fatal("no certificates in PEM")
	}
	return p
}

// get sends GET path to the proxy with header h and returns the status
// code and body.
func (e *env) get(t *testing.T, path string, h http.Header) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(t, e.ca)}}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
