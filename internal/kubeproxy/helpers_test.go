package kubeproxy_test

import (
	"crypto/x509"
	"encoding/base64"
	"path/filepath"
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

func dirOf(p string) string { return filepath.Dir(p) }
