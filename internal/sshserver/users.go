package sshserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// localUser is a local account a session runs as.
type localUser struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
	Home   string
	Shell  string
}

// userNameRE is what reel accepts as a local user name: POSIX portable
// names, as useradd does, plus a trailing '$' (Samba machine accounts).
var userNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}\$?$`)

var errNoSuchUser = errors.New("no such local user")

// Where userDB looks by default.
const (
	passwdFile   = "/etc/passwd"
	groupFile    = "/etc/group"
	nsswitchFile = "/etc/nsswitch.conf"
)

// How long an answer from NSS (getent) is kept, and how many are.
const (
	nssTTL      = time.Minute
	nssNegTTL   = 10 * time.Second
	nssMaxCache = 4096
)

// userDB finds local accounts. Every login attempt asks it, before the
// key is checked, so it must be cheap: /etc/passwd and /etc/group are
// parsed again only when they change. Only names those files do not hold
// are asked of NSS, with getent, and only when nsswitch.conf names other
// sources than files (LDAP, sssd, systemd); those answers, found or not,
// are kept for a while, and one getent runs at a time.
type userDB struct {
	passwdPath, groupPath, nsswitchPath string
	// getent runs "getent DB KEY"; nil runs the real one.
	getent func(ctx context.Context, db, key string) ([]byte, error)
	now    func() time.Time

	mu       sync.Mutex
	passwd   cachedFile[map[string]passwdEntry]
	group    cachedFile[map[uint32][]string] // gid -> member names
	nsswitch cachedFile[bool]                // whether NSS has more than files
	nss      map[string]nssAnswer

	nssMu sync.Mutex // one getent at a time
}

type nssAnswer struct {
	u   *localUser // nil: no such user
	exp time.Time
}

func newUserDB() *userDB {
	return &userDB{passwdPath: passwdFile, groupPath: groupFile, nsswitchPath: nsswitchFile}
}

// cachedFile is what was parsed from a file, with what identifies the
// version parsed.
type cachedFile[T any] struct {
	stamp fileStamp
	val   T
}

type fileStamp struct {
	ok           bool
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
}

func stampOf(fi os.FileInfo) fileStamp {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}
	}
	return fileStamp{ok: true, dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// load returns c's value, parsing path again with parse if it changed. A
// file that is missing or unreadable parses as empty.
func (c *cachedFile[T]) load(path string, parse func([]byte) T) T {
	fi, err := os.Stat(path)
	var stamp fileStamp
	if err == nil {
		stamp = stampOf(fi)
	}
	if stamp.ok && stamp == c.stamp {
		return c.val
	}
	data, err := os.ReadFile(path)
	if err != nil {
		data = nil
	}
	c.val, c.stamp = parse(data), stamp
	return c.val
}

// lookup finds the local account name: ids, groups, home and shell.
func (db *userDB) lookup(name string) (*localUser, error) {
	if !userNameRE.MatchString(name) {
		return nil, fmt.Errorf("user %q: %w", name, errNoSuchUser)
	}
	db.mu.Lock()
	pw := db.passwd.load(db.passwdPath, parsePasswd)
	e, ok := pw[name]
	var u *localUser
	if ok {
		u = db.fromPasswd(e)
	}
	nss := db.nsswitch.load(db.nsswitchPath, nssBeyondFiles)
	db.mu.Unlock()
	if u != nil {
		return u, nil
	}
	if !nss {
		return nil, fmt.Errorf("user %q: %w", name, errNoSuchUser)
	}
	return db.lookupNSS(name)
}

// fromPasswd makes the account of a passwd entry, with the groups
// /etc/group lists it in. db.mu is held.
func (db *userDB) fromPasswd(e passwdEntry) *localUser {
	u := &localUser{Name: e.name, UID: e.uid, GID: e.gid, Home: e.home, Shell: e.shell}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
	}
	members := db.group.load(db.groupPath, parseGroup)
	for gid, names := range members {
		if gid != u.GID && slices.Contains(names, u.Name) {
			u.Groups = append(u.Groups, gid)
		}
	}
	slices.Sort(u.Groups)
	return u
}

// lookupNSS asks getent for a name /etc/passwd does not hold.
func (db *userDB) lookupNSS(name string) (*localUser, error) {
	now := db.clock()
	db.mu.Lock()
	a, ok := db.nss[name]
	db.mu.Unlock()
	if !ok || now.After(a.exp) {
		db.nssMu.Lock()
		defer db.nssMu.Unlock()
		db.mu.Lock()
		a, ok = db.nss[name] // another lookup may have just asked
		db.mu.Unlock()
		if !ok || now.After(a.exp) {
			u, err := db.askNSS(name)
			if err != nil {
				return nil, fmt.Errorf("user %q: %w", name, err)
			}
			a = nssAnswer{u: u, exp: now.Add(nssTTL)}
			if u == nil {
				a.exp = now.Add(nssNegTTL)
			}
			db.mu.Lock()
			if db.nss == nil || len(db.nss) >= nssMaxCache {
				db.nss = map[string]nssAnswer{}
			}
			db.nss[name] = a
			db.mu.Unlock()
		}
	}
	if a.u == nil {
		return nil, fmt.Errorf("user %q: %w", name, errNoSuchUser)
	}
	u := *a.u
	u.Groups = slices.Clone(a.u.Groups)
	return &u, nil
}

// askNSS runs getent for name: nil, nil when there is no such user.
func (db *userDB) askNSS(name string) (*localUser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := db.runGetent(ctx, "passwd", name)
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == 2 {
			return nil, nil // getent: key not found
		}
		return nil, fmt.Errorf("getent passwd: %w", err)
	}
	e, ok := parsePasswdLine(strings.TrimSpace(string(out)))
	if !ok || e.name != name {
		return nil, fmt.Errorf("getent passwd: unexpected answer %q", out)
	}
	u := &localUser{Name: e.name, UID: e.uid, GID: e.gid, Home: e.home, Shell: e.shell}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
	}
	// "getent initgroups NAME" prints the name and its group ids.
	if out, err := db.runGetent(ctx, "initgroups", name); err == nil {
		f := strings.Fields(string(out))
		for _, g := range f[min(1, len(f)):] {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) != u.GID && !slices.Contains(u.Groups, uint32(n)) {
				u.Groups = append(u.Groups, uint32(n))
			}
		}
		slices.Sort(u.Groups)
	}
	return u, nil
}

func (db *userDB) runGetent(ctx context.Context, database, key string) ([]byte, error) {
	if db.getent != nil {
		return db.getent(ctx, database, key)
	}
	return exec.CommandContext(ctx, "getent", database, "--", key).Output()
}

func (db *userDB) clock() time.Time {
	if db.now != nil {
		return db.now()
	}
	return time.Now()
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
	shell    string
}

// parsePasswdLine parses one passwd(5) line:
// name:password:uid:gid:gecos:home:shell.
func parsePasswdLine(line string) (passwdEntry, bool) {
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] == "" {
		return passwdEntry{}, false
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return passwdEntry{}, false
	}
	return passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5], shell: f[6]}, true
}

// parsePasswd parses /etc/passwd; the first entry of a name counts, as
// with getpwnam.
func parsePasswd(data []byte) map[string]passwdEntry {
	m := map[string]passwdEntry{}
	for line := range bytes.Lines(data) {
		if e, ok := parsePasswdLine(strings.TrimRight(string(line), "\r\n")); ok {
			if _, dup := m[e.name]; !dup {
				m[e.name] = e
			}
		}
	}
	return m
}

// parseGroup parses /etc/group (name:password:gid:member,member) into
// the members of each group id.
func parseGroup(data []byte) map[uint32][]string {
	m := map[uint32][]string{}
	for line := range bytes.Lines(data) {
		f := strings.Split(strings.TrimRight(string(line), "\r\n"), ":")
		if len(f) != 4 || f[0] == "" {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		for _, n := range strings.Split(f[3], ",") {
			if n = strings.TrimSpace(n); n != "" {
				m[uint32(gid)] = append(m[uint32(gid)], n)
			}
		}
	}
	return m
}

// nssBeyondFiles reports whether nsswitch.conf's passwd line names a
// source other than files, so that accounts may exist that /etc/passwd
// does not hold. Without the file or the line reel cannot tell, and
// asks NSS.
func nssBeyondFiles(data []byte) bool {
	if data == nil {
		return true
	}
	for line := range bytes.Lines(data) {
		l, _, _ := strings.Cut(string(line), "#")
		key, val, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(key) != "passwd" {
			continue
		}
		for _, src := range strings.Fields(val) {
			if strings.HasPrefix(src, "[") { // an action, [NOTFOUND=return]
				continue
			}
			if src != "files" {
				return true
			}
		}
		return false
	}
	return true
}
