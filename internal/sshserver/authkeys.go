package sshserver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// A KeyEntry is one line of an --authorized-keys file: the local user the
// key may log in as, and the key.
type KeyEntry struct {
	Line    int
	User    string
	Key     ssh.PublicKey
	Comment string
}

// ParseAuthorizedKeys parses a central authorized-keys file. Each line is
//
//	LOCALUSER KEYTYPE BASE64 [comment]
//
// where KEYTYPE BASE64 is a public key as in ~/.ssh/authorized_keys
// ("ssh-ed25519 AAAA..."). Blank lines and lines starting with '#' are
// ignored. Options (from=, command=, ...) are not supported. Every bad
// line is an error, reported as "NAME:LINE: message"; the entries of the
// good lines are returned with it.
func ParseAuthorizedKeys(name string, data []byte) ([]KeyEntry, error) {
	var entries []KeyEntry
	var errs []error
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line := strings.TrimSpace(string(bytes.TrimSuffix(raw, []byte("\r"))))
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseKeyLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		e.Line = n
		entries = append(entries, e)
	}
	return entries, errors.Join(errs...)
}

func parseKeyLine(line string) (KeyEntry, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return KeyEntry{}, errors.New("want LOCALUSER KEYTYPE BASE64 [comment]")
	}
	user, typ, b64 := f[0], f[1], f[2]
	if !userNameRE.MatchString(user) {
		return KeyEntry{}, fmt.Errorf("bad local user name %q", user)
	}
	if strings.Contains(typ, "=") || strings.Contains(typ, ",") {
		return KeyEntry{}, fmt.Errorf("%q: key options are not supported here", typ)
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return KeyEntry{}, fmt.Errorf("%s key: bad base64: %v", typ, err)
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return KeyEntry{}, fmt.Errorf("%s key: %v", typ, err)
	}
	if key.Type() != typ {
		return KeyEntry{}, fmt.Errorf("key type is %q but the line says %q", key.Type(), typ)
	}
	if _, isCert := key.(*ssh.Certificate); isCert {
		return KeyEntry{}, fmt.Errorf("%s: certificates are not supported", typ)
	}
	comment := ""
	if len(f) > 3 {
		comment = strings.Join(f[3:], " ")
	}
	return KeyEntry{User: user, Key: key, Comment: comment}, nil
}

// keysFile is a central authorized-keys file, re-read when it changes. A
// file that became bad is logged and the last good version stays.
type keysFile struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	modTime time.Time
	size    int64
	entries []KeyEntry
	badSeen string // the last error logged, to log each once
}

// loadKeysFile reads path; any bad line is an error at start-up.
func loadKeysFile(path string, log *slog.Logger) (*keysFile, error) {
	kf := &keysFile{path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	entries, err := ParseAuthorizedKeys(path, data)
	if err != nil {
		return nil, err
	}
	kf.entries, kf.modTime, kf.size = entries, fi.ModTime(), fi.Size()
	return kf, nil
}

// lookup returns the entry that lets key log in as user, if any.
func (kf *keysFile) lookup(user string, key ssh.PublicKey) (KeyEntry, bool) {
	kf.mu.Lock()
	defer kf.mu.Unlock()
	kf.refresh()
	want := key.Marshal()
	for _, e := range kf.entries {
		if e.User == user && bytes.Equal(e.Key.Marshal(), want) {
			return e, true
		}
	}
	return KeyEntry{}, false
}

// refresh re-reads the file if its size or modification time changed.
func (kf *keysFile) refresh() {
	fi, err := os.Stat(kf.path)
	if err != nil {
		kf.logOnce(fmt.Errorf("authorized keys: %w (keeping the keys read before)", err))
		return
	}
	if fi.ModTime().Equal(kf.modTime) && fi.Size() == kf.size {
		return
	}
	data, err := os.ReadFile(kf.path)
	if err != nil {
		kf.logOnce(fmt.Errorf("authorized keys: %w (keeping the keys read before)", err))
		return
	}
	entries, err := ParseAuthorizedKeys(kf.path, data)
	kf.modTime, kf.size = fi.ModTime(), fi.Size()
	if err != nil {
		kf.logOnce(fmt.Errorf("authorized keys file changed and is now bad; keeping the keys read before: %w", err))
		return
	}
	kf.entries, kf.badSeen = entries, ""
	kf.log.Info("authorized keys: reloaded", "path", kf.path, "keys", len(entries))
}

func (kf *keysFile) logOnce(err error) {
	if err.Error() != kf.badSeen {
		kf.badSeen = err.Error()
		kf.log.Error(err.Error())
	}
}

// harmlessOptions are authorized_keys options that only forbid what reel
// ssh never allows anyway; a key with any other option is not used.
var harmlessOptions = map[string]bool{
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
}

// userKeyFile returns the path of u's authorized_keys file after checking,
// as sshd's StrictModes does, that nobody but u and root can change it.
func userKeyFile(u *localUser) (string, error) {
	path := filepath.Join(u.Home, ".ssh", "authorized_keys")
	for _, p := range []string{path, filepath.Dir(path), u.Home} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", fmt.Errorf("%s: no owner information", p)
		}
		if st.Uid != u.UID && st.Uid != 0 {
			return "", fmt.Errorf("%s is owned by uid %d, not by %s or root", p, st.Uid, u.Name)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return "", fmt.Errorf("%s is writable by group or others (mode %v)", p, fi.Mode().Perm())
		}
	}
	return path, nil
}

// userKeyAllows reports whether key is in u's ~/.ssh/authorized_keys
// without options reel does not support. Lines it cannot use are logged.
func userKeyAllows(u *localUser, key ssh.PublicKey, log *slog.Logger) bool {
	path, err := userKeyFile(u)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("not using a user's authorized_keys", "user", u.Name, "err", err)
		}
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Warn("not using a user's authorized_keys", "user", u.Name, "err", err)
		return false
	}
	want := key.Marshal()
	for len(data) > 0 {
		k, _, options, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			break // ParseAuthorizedKey skips bad lines; err means no more keys
		}
		data = rest
		if !bytes.Equal(k.Marshal(), want) {
			continue
		}
		for _, o := range options {
			if !harmlessOptions[strings.ToLower(o)] {
				log.Warn("key in authorized_keys has an option reel ssh does not support; not using it",
					"user", u.Name, "path", path, "option", o, "fingerprint", ssh.FingerprintSHA256(k))
				return false
			}
		}
		return true
	}
	return false
}
