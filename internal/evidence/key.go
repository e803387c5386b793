package evidence

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/reel-rec/reel/internal/store/durable"
)

// Signer signs seals, sync records and manifest checkpoints. A Key
// (ed25519, in a file) is one; a KMS-held key can be another (not yet
// implemented: it needs only these three methods).
type Signer interface {
	// KeyID is KeyIDOf(Public()).
	KeyID() string
	Public() ed25519.PublicKey
	// Sign returns the ed25519 signature of msg.
	Sign(msg []byte) ([]byte, error)
}

// KeyIDOf names a public key: the first 16 hex digits of the SHA-256 of
// its 32 bytes.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Key is an ed25519 key pair held in memory.
type Key struct {
	priv ed25519.PrivateKey
	id   string
}

var _ Signer = (*Key)(nil)

// NewKey returns a key for priv.
func NewKey(priv ed25519.PrivateKey) *Key {
	return &Key{priv: priv, id: KeyIDOf(priv.Public().(ed25519.PublicKey))}
}

// GenerateKey makes a new random key.
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewKey(priv), nil
}

func (k *Key) KeyID() string             { return k.id }
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }
func (k *Key) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(k.priv, msg), nil
}

// Files of the recorder's key in its evidence directory.
const (
	keyFile = "recorder.key" // PKCS#8 PEM, mode 0600
	pubFile = "recorder.pub" // PKIX PEM
)

// KeyPath returns where the recorder's key is kept in the evidence
// directory dir.
func KeyPath(dir string) string { return filepath.Join(dir, keyFile) }

// LoadOrCreateKey loads the recorder's key from the evidence directory
// dir, generating it on first use (and writing its public key beside it).
// created reports a new key.
func LoadOrCreateKey(dir string) (k *Key, created bool, err error) {
	p := KeyPath(dir)
	k, err = LoadKeyFile(p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("evidence: %w", err)
	}
	k, err = GenerateKey()
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, false, err
	}
	// O_EXCL: of two processes starting at once, one key wins and the
	// other loads it.
	tmp := p + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("evidence: create key: %w", err)
	}
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, p) // fails if another process made one meanwhile
	}
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		k, err = LoadKeyFile(p)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("evidence: create key: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return nil, false, err
	}
	if err := durable.WriteFile(filepath.Join(dir, pubFile), PublicKeyPEM(k.Public(), "")); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// LoadKeyFile loads an ed25519 private key from a PEM file (PKCS#8,
// "PRIVATE KEY", as openssl genpkey -algorithm ed25519 writes). The file
// must not be readable by group or others.
func LoadKeyFile(p string) (*Key, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("evidence: key %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("evidence: key %s is readable by others (mode %v): chmod 600 it", p, fi.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("evidence: key %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("evidence: key %s: not a PEM \"PRIVATE KEY\"", p)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("evidence: key %s: %w", p, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("evidence: key %s: a %T, not an ed25519 key", p, key)
	}
	return NewKey(priv), nil
}

// PublicKeyPEM encodes pub as PEM ("PUBLIC KEY", PKIX, as openssl pkey
// -pubout writes), after a comment line naming its key id (PEM parsers
// skip it) and, if not empty, note.
func PublicKeyPEM(pub ed25519.PublicKey, note string) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // cannot fail for an ed25519 key
	}
	head := "# reel recorder key " + KeyIDOf(pub) + " (ed25519)"
	if note != "" {
		head += ", " + note
	}
	return append([]byte(head+"\n"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
}

// ParsePublicKeys reads every ed25519 "PUBLIC KEY" PEM block in b.
func ParsePublicKeys(b []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: a %T, not ed25519", k)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM \"PUBLIC KEY\" block")
	}
	return keys, nil
}

// Keyring is a set of trusted public keys by key id.
type Keyring map[string]ed25519.PublicKey

// Add trusts pub.
func (kr Keyring) Add(pub ed25519.PublicKey) { kr[KeyIDOf(pub)] = pub }

// verify checks sig over msg by the key keyID names. It reports whether
// the key is known, and whether the signature is good.
func (kr Keyring) verify(keyID string, msg, sig []byte) (known, ok bool) {
	pub, known := kr[keyID]
	if !known {
		return false, false
	}
	return true, ed25519.Verify(pub, msg, sig)
}
