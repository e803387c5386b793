package sshserver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// A KeyEntry is one line of an --authorized-keys file: the local user the
// key may log in as, its options, and the key.
type KeyEntry struct {
	Line    int
	User    string
	Key     ssh.PublicKey
	Comment string
	// Options is the options field as written ("" for none).
	Options string

	opts keyOptions
}

// ParseAuthorizedKeys parses a central authorized-keys file. Each line is
//
//	LOCALUSER [OPTIONS] KEYTYPE BASE64 [comment]
//
// where [OPTIONS] KEYTYPE BASE64 [comment] is a line as in
// ~/.ssh/authorized_keys ("ssh-ed25519 AAAA...", or with options such as
// `from="10.0.0.0/8",restrict ssh-ed25519 AAAA...`; see keyOptions for
// those reel honours). Blank lines and lines starting with '#' are
// ignored. Every bad line is an error, reported as "NAME:LINE: message";
// the entries of the good lines are returned with it.
func ParseAuthorizedKeys(name string, data []byte) ([]KeyEntry, error) {
	var entries []KeyEntry
	var errs []error
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line := strings.TrimSpace(string(bytes.TrimSuffix(raw, []byte("\r"))))
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseCentralLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		e.Line = n
		entries = append(entries, e)
	}
	return entries, errors.Join(errs...)
}

func parseCentralLine(line string) (KeyEntry, error) {
	user, rest, _ := cutField(line)
	if !userNameRE.MatchString(user) {
		return KeyEntry{}, fmt.Errorf("bad local user name %q", user)
	}
	k, err := parseKeyLine(rest)
	if errors.Is(err, errKeyLineShape) {
		return KeyEntry{}, errors.New("want LOCALUSER [OPTIONS] KEYTYPE BASE64 [comment]")
	}
	if err != nil {
		return KeyEntry{}, err
	}
	return KeyEntry{User: user, Key: k.key, Comment: k.comment, Options: k.opts.text, opts: k.opts}, nil
}

// keyLine is a parsed authorized_keys line.
type keyLine struct {
	opts    keyOptions
	key     ssh.PublicKey
	comment string
}

var errKeyLineShape = errors.New("want [OPTIONS] KEYTYPE BASE64 [comment]")

// parseKeyLine parses an authorized_keys line, "[OPTIONS] KEYTYPE BASE64
// [comment]": the options come first when the first field is not a key
// type, as sshd reads it.
func parseKeyLine(line string) (keyLine, error) {
	var kl keyLine
	line = strings.TrimLeft(line, " \t")
	if first, _, _ := cutField(line); !keyTypes[first] {
		opts, rest, err := cutOptions(line)
		if err != nil {
			return kl, err
		}
		next, _, _ := cutField(rest)
		kl.opts, err = parseKeyOptions(opts)
		switch {
		case keyTypes[next] && err != nil:
			return kl, err
		case keyTypes[next]:
			line = rest
		case next == "":
			return kl, errKeyLineShape
		case err == nil:
			return kl, fmt.Errorf("unknown key type %q", next)
		case !strings.ContainsAny(first, `=,"`):
			return kl, fmt.Errorf("unknown key type %q", first)
		default:
			return kl, err
		}
	}
	typ, rest, _ := cutField(line)
	b64, comment, _ := cutField(rest)
	if b64 == "" {
		return kl, errKeyLineShape
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return kl, fmt.Errorf("%s key: bad base64: %v", typ, err)
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return kl, fmt.Errorf("%s key: %v", typ, err)
	}
	if key.Type() != typ {
		return kl, fmt.Errorf("key type is %q but the line says %q", key.Type(), typ)
	}
	if _, isCert := key.(*ssh.Certificate); isCert {
		return kl, fmt.Errorf("%s: certificates are not supported", typ)
	}
	kl.key, kl.comment = key, strings.Join(strings.Fields(comment), " ")
	return kl, nil
}

// cutField splits s at its first run of blanks.
func cutField(s string) (field, rest string, ok bool) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", false
	}
	return s[:i], strings.TrimLeft(s[i:], " \t"), true
}

// cutOptions splits off the options field: up to the first blank that is
// not inside double quotes.
func cutOptions(s string) (opts, rest string, err error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted && i+1 < len(s) && s[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return s[:i], strings.TrimLeft(s[i:], " \t"), nil
		}
	}
	if quoted {
		return "", "", errors.New("options: no closing quote")
	}
	return "", "", errKeyLineShape
}

// keyTypes are the key type names of authorized_keys lines.
var keyTypes = map[string]bool{}

func init() {
	for _, t := range []string{
		ssh.KeyAlgoRSA, ssh.KeyAlgoDSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoSKED25519,
		ssh.CertAlgoRSAv01, ssh.CertAlgoDSAv01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01,
		ssh.CertAlgoECDSA521v01, ssh.CertAlgoED25519v01, ssh.CertAlgoSKECDSA256v01, ssh.CertAlgoSKED25519v01,
	} {
		keyTypes[t] = true
	}
}

// keyMatch is the authorized key that let a login in.
type keyMatch struct {
	source string // "PATH:LINE"
	opts   keyOptions
}

// keysFile is a central authorized-keys file, re-read when it changes. A
// file whose new version has a bad line is logged and the last good
// version stays. A file that is gone, or no longer safe (its owner or mode,
// or its directory's, let others change it; not a regular file; too
// large), authorizes nothing until it is back, and that is logged.
type keysFile struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	stamp   fileStamp
	entries []KeyEntry
	broken  error  // why the file authorizes nothing now
	badSeen string // the last error logged, to log each once
}

// loadKeysFile reads path; any bad line, or an unsafe file, is an error
// at start-up.
func loadKeysFile(path string, log *slog.Logger) (*keysFile, error) {
	kf := &keysFile{path: path, log: log}
	fd, st, real, err := openCentralKeys(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	defer unix.Close(fd)
	data, err := readOpened(fd, real, st.Size, maxCentralKeysSize)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	entries, err := ParseAuthorizedKeys(path, data)
	if err != nil {
		return nil, err
	}
	kf.entries, kf.stamp = entries, stampOfStat(&st)
	return kf, nil
}

func stampOfStat(st *unix.Stat_t) fileStamp {
	return fileStamp{ok: true, dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// lookup returns the entries for user and key, in file order.
func (kf *keysFile) lookup(user string, key ssh.PublicKey) []KeyEntry {
	kf.mu.Lock()
	defer kf.mu.Unlock()
	kf.refresh()
	if kf.broken != nil {
		return nil
	}
	want := key.Marshal()
	var out []KeyEntry
	for _, e := range kf.entries {
		if e.User == user && bytes.Equal(e.Key.Marshal(), want) {
			out = append(out, e)
		}
	}
	return out
}

// refresh checks that the file is still safe to use, and reads it again
// if it changed.
func (kf *keysFile) refresh() {
	fd, st, real, err := openCentralKeys(kf.path)
	if err == nil {
		defer unix.Close(fd)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kf.broken = err
		kf.logOnce(fmt.Errorf("authorized keys: %w: no keys from it until it is back", err))
		return
	case err != nil:
		kf.broken = err
		kf.logOnce(fmt.Errorf("authorized keys: %w: no keys from it until that is fixed", err))
		return
	}
	wasBroken := kf.broken != nil
	kf.broken = nil
	stamp := stampOfStat(&st)
	if stamp == kf.stamp {
		if wasBroken {
			kf.log.Info("authorized keys: usable again", "path", kf.path, "keys", len(kf.entries))
			kf.badSeen = ""
		}
		return
	}
	data, err := readOpened(fd, real, st.Size, maxCentralKeysSize)
	if err != nil {
		kf.broken = err
		kf.logOnce(fmt.Errorf("authorized keys: %w: no keys from it until that is fixed", err))
		return
	}
	kf.stamp = stamp
	entries, err := ParseAuthorizedKeys(kf.path, data)
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

// authorizedKey finds the authorized_keys line that lets key log in as u
// from src now: in the central file first, then in u's own
// ~/.ssh/authorized_keys. A line for the key that does not let it in
// (from=, expiry-time=, an option reel does not support) is logged with
// the reason, and the search goes on, as in sshd.
func (s *Server) authorizedKey(u *localUser, key ssh.PublicKey, src netip.Addr, log *slog.Logger) (keyMatch, bool) {
	now := s.Now()
	if s.keys != nil {
		for _, e := range s.keys.lookup(u.Name, key) {
			source := fmt.Sprintf("%s:%d", s.AuthorizedKeysFile, e.Line)
			if why := e.opts.allows(src, now); why != "" {
				log.Info("key not used", "key", source, "why", why)
				continue
			}
			return keyMatch{source: source, opts: e.opts}, true
		}
	}
	if s.NoUserKeys {
		return keyMatch{}, false
	}
	data, path, err := readUserKeys(u)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("not using a user's authorized_keys", "err", err)
		}
		return keyMatch{}, false
	}
	want := key.Marshal()
	// Only lines that hold the key are parsed: those that do not are no
	// business of this login, and their errors are not logged for it.
	b64 := []byte(base64.StdEncoding.EncodeToString(want))
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.TrimSpace(string(bytes.TrimSuffix(raw, []byte("\r"))))
		if line == "" || line[0] == '#' || !bytes.Contains(raw, b64) {
			continue
		}
		source := fmt.Sprintf("%s:%d", path, i+1)
		kl, err := parseKeyLine(line)
		if err != nil {
			log.Warn("key not used", "key", source, "why", err.Error())
			continue
		}
		if !bytes.Equal(kl.key.Marshal(), want) {
			continue
		}
		if why := kl.opts.allows(src, now); why != "" {
			log.Info("key not used", "key", source, "why", why)
			continue
		}
		return keyMatch{source: source, opts: kl.opts}, true
	}
	return keyMatch{}, false
}
