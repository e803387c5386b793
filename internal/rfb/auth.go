package rfb

import (
	"bufio"
	"context"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Security types and VeNCrypt subtypes.
const (
	secInvalid  = 0
	secNone     = 1
	secVNCAuth  = 2
	secVeNCrypt = 19

	vencryptPlain     = 256
	vencryptX509Plain = 262
)

// An Authenticator checks a user's name and password. The web UI's
// account store will implement it; until then UserFile does.
type Authenticator interface {
	// Authenticate returns nil when password is user's password. The
	// error is logged, never shown to the client.
	Authenticate(ctx context.Context, user, password string) error
}

// ErrBadCredentials is what an Authenticator returns for a wrong name or
// password.
var ErrBadCredentials = errors.New("rfb: unknown user or wrong password")

// UserFile is an Authenticator over a file of lines "USER:HASH", where
// HASH is a bcrypt hash ("$2a$", "$2b$", "$2y$", as htpasswd -B writes)
// or an argon2id hash in the PHC format
// ("$argon2id$v=19$m=65536,t=3,p=2$SALT$HASH", base64 without padding).
// Blank lines and lines starting with '#' are ignored. The file is read
// again when it changes.
type UserFile struct {
	Path string

	mu    sync.Mutex
	mtime int64
	size  int64
	users map[string]string
}

func (f *UserFile) load() (map[string]string, error) {
	fi, err := os.Stat(f.Path)
	if err != nil {
		return nil, fmt.Errorf("rfb: users file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.users != nil && fi.ModTime().UnixNano() == f.mtime && fi.Size() == f.size {
		return f.users, nil
	}
	users, err := ReadUserFile(f.Path)
	if err != nil {
		return nil, err
	}
	f.users, f.mtime, f.size = users, fi.ModTime().UnixNano(), fi.Size()
	return users, nil
}

// ReadUserFile parses a users file (see UserFile).
func ReadUserFile(path string) (map[string]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rfb: users file: %w", err)
	}
	defer fh.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("rfb: %s:%d: want USER:HASH", path, n)
		}
		if _, err := parseHash(hash); err != nil {
			return nil, fmt.Errorf("rfb: %s:%d: user %q: %w", path, n, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("rfb: %s:%d: user %q listed twice", path, n, user)
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("rfb: users file: %w", err)
	}
	return users, nil
}

// Authenticate implements Authenticator.
func (f *UserFile) Authenticate(ctx context.Context, user, password string) error {
	users, err := f.load()
	if err != nil {
		return err
	}
	hash, ok := users[user]
	if !ok {
		// The same work as for a real user, so timing does not tell
		// which names exist.
		checkHash(dummyHash(), password)
		return ErrBadCredentials
	}
	if !checkHash(hash, password) {
		return ErrBadCredentials
	}
	return nil
}

// dummyHash is a bcrypt hash of a random password, checked for unknown
// users.
var dummyHash = sync.OnceValue(func() string {
	var pw [16]byte
	rand.Read(pw[:])
	h, _ := bcrypt.GenerateFromPassword(pw[:], bcrypt.DefaultCost)
	return string(h)
})

type argonParams struct {
	m, t       uint32
	p          uint8
	salt, hash []byte
}

// parseHash checks that hash is a bcrypt or argon2id hash; for argon2id
// it returns the parameters.
func parseHash(hash string) (*argonParams, error) {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return nil, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		parts := strings.Split(hash, "$")
		if len(parts) != 6 || parts[2] != "v=19" {
			return nil, errors.New("bad argon2id hash: want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
		}
		var a argonParams
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &a.m, &a.t, &a.p); err != nil || a.m == 0 || a.t == 0 || a.p == 0 {
			return nil, errors.New("bad argon2id parameters")
		}
		if a.m > 4<<20 || a.t > 64 {
			return nil, errors.New("argon2id parameters too costly (m over 4 GiB or t over 64)")
		}
		var err error
		if a.salt, err = b64.DecodeString(parts[4]); err != nil {
			return nil, errors.New("bad argon2id salt")
		}
		if a.hash, err = b64.DecodeString(parts[5]); err != nil || len(a.hash) < 16 {
			return nil, errors.New("bad argon2id hash value")
		}
		return &a, nil
	}
	return nil, errors.New("unknown hash: want bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$)")
}

func checkHash(hash, password string) bool {
	a, err := parseHash(hash)
	if err != nil {
		return false
	}
	if a == nil {
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	got := argon2.IDKey([]byte(password), a.salt, a.t, a.m, a.p, uint32(len(a.hash)))
	return subtle.ConstantTimeCompare(got, a.hash) == 1
}

// HashArgon2id returns an argon2id hash of password for a users file.
func HashArgon2id(password string, salt []byte) string {
	const m, t, p = 64 << 10, 3, 2
	h := argon2.IDKey([]byte(password), salt, t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, b64.EncodeToString(salt), b64.EncodeToString(h))
}

// vncAuthResponse encrypts the server's 16-byte challenge with the
// password as VNC authentication does: DES with the first 8 bytes of the
// password (padded with zeros) as key, each key byte's bits reversed.
func vncAuthResponse(password string, challenge []byte) ([]byte, error) {
	var key [8]byte
	copy(key[:], password)
	for i, b := range key {
		var r byte
		for j := range 8 {
			r |= (b >> j & 1) << (7 - j)
		}
		key[i] = r
	}
	c, err := des.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	c.Encrypt(out[:8], challenge[:8])
	c.Encrypt(out[8:], challenge[8:16])
	return out, nil
}
