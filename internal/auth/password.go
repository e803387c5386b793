package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams are RFC 9106's second recommended choice: 64 MiB, three
// passes, four lanes. A login costs about a tenth of a second of CPU.
var DefaultParams = Params{Memory: 64 << 10, Time: 3, Threads: 4}

const (
	saltLen = 16
	keyLen  = 32
)

// Limits on parameters read from an accounts file, so that an edited
// file cannot make a login allocate without bound.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	maxKeySalt = 64 // bytes
)

// Password length limits, in characters and bytes.
const (
	MinPasswordLen   = 12
	maxPasswordBytes = 1024
)

// hashPassword returns pw hashed with argon2id and a fresh salt, in the
// PHC string format "$argon2id$v=19$m=65536,t=3,p=4$SALT$KEY".
func hashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// parseHash reads a PHC argon2id string.
func parseHash(s string) (p Params, salt, key []byte, err error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("bad password hash: %s", why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=…,t=…,p=…$SALT$KEY")
	}
	if parts[1] != "argon2id" {
		return bad("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unknown argon2 version")
	}
	var m, t, th uint64
	for i, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		want := []string{"m", "t", "p"}
		if !ok || i >= len(want) || k != want[i] || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("parameters: want m=…,t=…,p=…")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameters: want m=…,t=…,p=…")
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			th = n
		}
	}
	switch {
	case th < 1 || th > 255:
		return bad("p out of range")
	case t < 1 || t > maxTime:
		return bad("t out of range")
	case m < 8*th || m > maxMemory:
		return bad("m out of range")
	}
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > maxKeySalt {
		return bad("salt")
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > maxKeySalt {
		return bad("key")
	}
	return Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th)}, salt, key, nil
}

// checkHash reports whether pw matches the PHC string. The comparison is
// constant-time.
func checkHash(pw, encoded string) (bool, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// hashSlots bounds the argon2 computations that run at once: each holds
// Params.Memory, so a burst of logins must not add up without limit.
type hashSlots chan struct{}

func (s hashSlots) do(ctx context.Context, fn func()) error {
	select {
	case s <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s }()
	fn()
	return nil
}

// ErrWeakPassword is the error for a new password that is refused.
var ErrWeakPassword = errors.New("password refused")

// CheckNewPassword says why pw cannot be name's new password, or nil: it
// must have at least MinPasswordLen characters, at most 1024 bytes of
// valid UTF-8 without control characters, and not be the name itself.
func CheckNewPassword(name, pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: not valid UTF-8", ErrWeakPassword)
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return fmt.Errorf("%w: it must have at least %d characters", ErrWeakPassword, MinPasswordLen)
	case len(pw) > maxPasswordBytes:
		return fmt.Errorf("%w: it must have at most %d bytes", ErrWeakPassword, maxPasswordBytes)
	case strings.IndexFunc(pw, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: it must not hold control characters", ErrWeakPassword)
	case strings.EqualFold(pw, name):
		return fmt.Errorf("%w: it must not be the user name", ErrWeakPassword)
	}
	return nil
}

// NewOneTimePassword returns a random password of 100 bits for a first
// login, easy to type: "abcde-fghij-klmno-pqrst".
func NewOneTimePassword() string {
	b := make([]byte, 13)
	rand.Read(b) // never fails (crypto/rand)
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
	return s[:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:]
}
