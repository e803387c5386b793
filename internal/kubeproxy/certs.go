package kubeproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Files of the certificate the proxy makes for itself in its state
// directory when it is given none.
const (
	certFile = "kube-proxy.crt"
	keyFile  = "kube-proxy.key"
)

// LoadOrCreateCert returns the proxy's serving certificate from dir,
// creating a self-signed one (ECDSA P-256, ten years, its own CA) for
// hosts (names and IP addresses) on first use. The certificate's PEM is
// the CA that kubeconfigs must trust (PrintKubeconfig).
func LoadOrCreateCert(dir string, hosts []string) (tls.Certificate, []byte, error) {
	cp, kp := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certPEM, err1 := os.ReadFile(cp)
	keyPEM, err2 := os.ReadFile(kp)
	if err1 == nil && err2 == nil {
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("kube-proxy: %s: %w", cp, err)
		}
		return c, certPEM, nil
	}
	if !errors.Is(err1, os.ErrNotExist) && err1 != nil {
		return tls.Certificate{}, nil, err1
	}
	certPEM, keyPEM, err := SelfSigned(hosts)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.WriteFile(kp, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.WriteFile(cp, certPEM, 0o644); err != nil {
		return tls.Certificate{}, nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	return c, certPEM, err
}

// SelfSigned makes a self-signed serving certificate for hosts, usable
// as its own CA.
func SelfSigned(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "reel kube-proxy"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// KubeconfigUser is the credentials of the user in a kubeconfig written
// by Kubeconfig: a bearer token, or a client certificate and key (PEM).
type KubeconfigUser struct {
	Name              string
	Token             string
	ClientCertificate []byte
	ClientKey         []byte
}

// Kubeconfig returns a kubeconfig that points kubectl at the proxy at
// server (https://host:port), trusting caPEM, as user u, in namespace ns.
func Kubeconfig(server string, caPEM []byte, u KubeconfigUser, ns string) ([]byte, error) {
	name := u.Name
	if name == "" {
		name = "reel-user"
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["reel-kube-proxy"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: u.Token, ClientCertificateData: u.ClientCertificate, ClientKeyData: u.ClientKey}
	cfg.Contexts["reel-kube-proxy"] = &clientcmdapi.Context{Cluster: "reel-kube-proxy", AuthInfo: name, Namespace: ns}
	cfg.CurrentContext = "reel-kube-proxy"
	return clientcmd.Write(*cfg)
}
