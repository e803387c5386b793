package sshserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
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

// lookupUser finds the local account name: ids, groups, home and shell.
func lookupUser(name string) (*localUser, error) {
	if !userNameRE.MatchString(name) {
		return nil, fmt.Errorf("user %q: %w", name, errNoSuchUser)
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, ok := errors.AsType[user.UnknownUserError](err); ok {
			return nil, fmt.Errorf("user %q: %w", name, errNoSuchUser)
		}
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	lu := &localUser{Name: u.Username, Home: u.HomeDir}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	lu.UID, lu.GID = uint32(uid), uint32(gid)
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %q: groups: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			lu.Groups = append(lu.Groups, uint32(n))
		}
	}
	lu.Shell = loginShell(name)
	return lu, nil
}

// loginShell returns the login shell of name from the passwd database
// (getent, so NSS sources count, else /etc/passwd), or /bin/sh.
func loginShell(name string) string {
	var db []byte
	if out, err := exec.Command("getent", "passwd", "--", name).Output(); err == nil {
		db = out
	} else if b, err := os.ReadFile("/etc/passwd"); err == nil {
		db = b
	}
	sc := bufio.NewScanner(bytes.NewReader(db))
	for sc.Scan() {
		if e, ok := parsePasswdLine(sc.Text()); ok && e.name == name {
			if e.shell != "" {
				return e.shell
			}
			break
		}
	}
	return "/bin/sh"
}

type passwdEntry struct {
	name, home, shell string
}

// parsePasswdLine parses one passwd(5) line:
// name:password:uid:gid:gecos:home:shell.
func parsePasswdLine(line string) (passwdEntry, bool) {
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] == "" {
		return passwdEntry{}, false
	}
	return passwdEntry{name: f[0], home: f[5], shell: f[6]}, true
}
