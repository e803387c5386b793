package sshserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// hostKeyTypes are the host keys reel ssh keeps, by file name, with their
// generators.
var hostKeyTypes = []struct {
	file string
	gen  func() (crypto.Signer, error)
}{
	{"ssh_host_ed25519_key", func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"ssh_host_ecdsa_key", func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}},
}

// LoadHostKeys reads the host keys in dir, generating (and saving, mode
// 0600) any that is missing: an Ed25519 and an ECDSA P-256 key, in
// OpenSSH's private key format, as ssh_host_ed25519_key and
// ssh_host_ecdsa_key. dir is created (mode 0700) if needed.
func LoadHostKeys(dir string) ([]ssh.Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host keys: %w", err)
	}
	var signers []ssh.Signer
	for _, kt := range hostKeyTypes {
		path := filepath.Join(dir, kt.file)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			data, err = generateHostKey(path, kt.gen)
		}
		if err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", path, err)
		}
		signers = append(signers, s)
	}
	return signers, nil
}

// generateHostKey writes a new key to path, atomically, and returns it in
// PEM form.
func generateHostKey(path string, gen func() (crypto.Signer, error)) ([]byte, error) {
	k, err := gen()
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(block)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-hostkey-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link, not rename: if another process created the key meanwhile,
	// keep theirs.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	if pub, err := ssh.NewPublicKey(k.Public()); err == nil {
		os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644)
	}
	return data, nil
}
