package kubeproxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
)

// TestImpersonation: in impersonation mode the proxy authenticates users
// itself, by TokenReview or client certificate, and the API server sees
// reel's service account impersonating them.
func TestImpersonation(t *testing.T) {
	ca, caKey := newCA(t)
	e := newEnv(t, envOptions{mode: kubeproxy.Impersonate, clientCA: pemCert(ca)})
	rec := startRecorder(t)
	e.setPolicy(recordAll, rec.addr)
	certPEM, keyPEM := clientCert(t, ca, caKey, "carol", []string{"oncall", "sre"})

	users := []struct {
		name       string
		u          kubeproxy.KubeconfigUser
		wantUser   string
		wantGroups []string
	}{
		{"token", kubeproxy.KubeconfigUser{Name: "alice", Token: aliceToken}, "alice", []string{"sre"}},
		{"client certificate", kubeproxy.KubeconfigUser{Name: "carol", ClientCertificate: certPEM, ClientKey: keyPEM}, "carol", []string{"oncall", "sre"}},
	}
	for i, u := range users {
		kc := e.kubeconfig(u.u)
		out, err := e.run(kc, kubetest.Options{WebSocket: true}, "exec", "test", "--", "echo", "hi-"+u.wantUser)
		if err != nil || out != "hi-"+u.wantUser+"\n" {
			t.Fatalf("%s: %v\n%s", u.name, err, out)
		}
		ex := e.kube.Execs()[i]
		if ex.User != u.wantUser || !slices.Equal(sorted(withoutAuthenticated(ex.Groups)), u.wantGroups) {
			t.Errorf("%s: API server saw user %q groups %q", u.name, ex.User, ex.Groups)
		}
		if got := e.kube.Requests(); !hasImpersonatedRequest(got, u.wantUser) {
			t.Errorf("%s: no request impersonated %s", u.name, u.wantUser)
		}
		casts := rec.waitCasts(t, i+1)
		found := false
		for _, c := range casts {
			found = found || c.header.SrcNodeUser == u.wantUser
		}
		if !found {
			t.Errorf("%s: no recording names the user", u.name)
		}
	}

	// A bad token, no credentials, and impersonation through the proxy
	// are refused with a Status that says why (kubectl, refused at
	// discovery, prints only the reason).
	for _, tc := range []struct {
		name   string
		header http.Header
		code   int
		want   string
	}{
		{"bad token", http.Header{"Authorization": {"Bearer forged"}}, 401, "the bearer token was not accepted"},
		{"no credentials", http.Header{}, 401, "no credentials"},
		{"impersonation", http.Header{"Authorization": {"Bearer " + aliceToken}, "Impersonate-User": {"admin"}}, 403, "cannot carry Impersonate-* headers"},
	} {
		code, body := e.get(t, "/api/v1/namespaces/default/pods", tc.header)
		if code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `"kind":"Status"`) {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}
	out, err := e.run(e.kubeconfig(kubeproxy.KubeconfigUser{Token: "forged"}), kubetest.Options{}, "get", "pods")
	if err == nil || !strings.Contains(out, "You must be logged in to the server") {
		t.Errorf("kubectl with a bad token: %v\n%s", err, out)
	}
}

// TestPassThroughIdentity: in pass-through mode the user's own token
// goes upstream; the API server, not the proxy, refuses a bad one.
func TestPassThroughIdentity(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := startRecorder(t)
	e.setPolicy(recordAll, rec.addr)
	out, err := e.run(e.kubeconfig(kubeproxy.KubeconfigUser{Token: "forged"}), kubetest.Options{}, "get", "pods")
	if err == nil || !strings.Contains(out, "You must be logged in to the server") {
		t.Errorf("bad token: %v\n%s", err, out)
	}
	out, err = e.run(e.kubeconfig(kubeproxy.KubeconfigUser{Token: bobToken}), kubetest.Options{}, "get", "pods", "-o", "name")
	if err != nil || out != "pod/test\n" {
		t.Fatalf("bob: %v\n%s", err, out)
	}
	for _, r := range e.kube.Requests() {
		if r.Header.Get("Impersonate-User") != "" || r.Header.Get("Authorization") != "Bearer "+bobToken && r.Header.Get("Authorization") != "Bearer forged" {
			t.Errorf("pass-through request %s carried %v", r.Path, r.Header)
		}
	}
}

// TestPolicyRejects: a user the policy rejects gets a 403 Status that
// kubectl prints; others go on.
func TestPolicyRejects(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := startRecorder(t)
	e.setPolicy(`{
	"recorders": {"tag:rec": RECORDERS},
	"kubernetes": [
		{"action": "reject", "src": ["k8s-group:dev"], "namespaces": ["*"]},
		{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"]},
	],
}`, rec.addr)
	out, err := e.run(e.kubeconfig(kubeproxy.KubeconfigUser{Token: bobToken}), kubetest.Options{WebSocket: true}, "exec", "test", "--", "echo", "no")
	if err == nil || !strings.Contains(out, `Error from server (Forbidden): reel kube-proxy: the policy does not allow user "bob" here`) {
		t.Errorf("bob (group dev): %v\n%s", err, out)
	}
	if n := len(e.kube.Execs()); n != 0 {
		t.Errorf("the API server saw %d execs", n)
	}
	out, err = e.run(e.kubeconfig(kubeproxy.KubeconfigUser{Token: aliceToken}), kubetest.Options{WebSocket: true}, "exec", "test", "--", "echo", "yes")
	if err != nil || out != "yes\n" {
		t.Errorf("alice: %v\n%s", err, out)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func withoutAuthenticated(g []string) []string {
	return slices.DeleteFunc(slices.Clone(g), func(s string) bool { return s == "system:authenticated" })
}

func hasImpersonatedRequest(rs []kubetest.Request, user string) bool {
	for _, r := range rs {
		if r.Header.Get("Impersonate-User") == user && r.Header.Get("Authorization") == "Bearer "+saToken {
			return true
		}
	}
	return false
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "users CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func clientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, orgs []string) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
