package sshserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/testutil"
)

func TestParsePasswdLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want passwdEntry
		ok   bool
	}{
		{"root:x:0:0:root:/root:/bin/bash", passwdEntry{"root", 0, 0, "/root", "/bin/bash"}, true},
		{"svc:x:999:998::/nonexistent:", passwdEntry{"svc", 999, 998, "/nonexistent", ""}, true},
		{"short:x:1", passwdEntry{}, false},
		{":x:0:0::/:/bin/sh", passwdEntry{}, false},
		{"a:b:c:d:e:f:g:h", passwdEntry{}, false},
		{"a:x:one:0::/:/bin/sh", passwdEntry{}, false},
		{"a:x:0:4294967296::/:/bin/sh", passwdEntry{}, false},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got, ok := parsePasswdLine(tc.line)
			if ok != tc.ok || got != tc.want {
				t.Errorf("parsePasswdLine = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParsePasswdLine(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/bash")
	f.Add("::::::")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parsePasswdLine(line)
		if ok && (e.name == "" || strings.Contains(e.name+e.home+e.shell, ":")) {
			t.Fatalf("bad entry %+v from %q", e, line)
		}
	})
}

func TestNSSBeyondFiles(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want bool
	}{
		{"passwd: files\n", false},
		{"# comment\npasswd:   files   # local only\ngroup: files ldap\n", false},
		{"passwd: files [NOTFOUND=return]\n", false},
		{"passwd: files systemd\n", true},
		{"passwd: sss files\n", true},
		{"passwd: compat\n", true},
		{"group: files\n", true}, // no passwd line: cannot tell
	} {
		if got := nssBeyondFiles([]byte(tc.conf)); got != tc.want {
			t.Errorf("nssBeyondFiles(%q) = %v, want %v", tc.conf, got, tc.want)
		}
	}
	if !nssBeyondFiles(nil) {
		t.Error("no nsswitch.conf: want NSS asked")
	}
}

// fakeUserDB is a userDB on files the test writes, with a getent that
// counts its calls and knows the accounts in nss.
type fakeUserDB struct {
	db    *userDB
	dir   string
	calls atomic.Int32
	nss   map[string]string // name -> passwd line
	now   time.Time
}

func newFakeUserDB(t *testing.T, passwd, group, nsswitch string) *fakeUserDB {
	t.Helper()
	f := &fakeUserDB{dir: t.TempDir(), nss: map[string]string{}, now: time.Unix(1e9, 0)}
	f.db = &userDB{
		passwdPath:   filepath.Join(f.dir, "passwd"),
		groupPath:    filepath.Join(f.dir, "group"),
		nsswitchPath: filepath.Join(f.dir, "nsswitch.conf"),
		now:          func() time.Time { return f.now },
		getent: func(_ context.Context, db, key string) ([]byte, error) {
			f.calls.Add(1)
			line, ok := f.nss[key]
			switch {
			case !ok:
				return nil, exec.Command("sh", "-c", "exit 2").Run() // getent's "not found"
			case db == "passwd":
				return []byte(line + "\n"), nil
			case db == "initgroups":
				return []byte(key + "  100 4242\n"), nil
			}
			return nil, fmt.Errorf("unexpected getent %s", db)
		},
	}
	f.write(t, "passwd", passwd)
	f.write(t, "group", group)
	f.write(t, "nsswitch.conf", nsswitch)
	return f
}

func (f *fakeUserDB) write(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUserDB(t *testing.T) {
	f := newFakeUserDB(t,
		"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/zsh\nsvc:x:999:999::/srv:\n",
		"root:x:0:\nwheel:x:10:alice,bob\nalice:x:1000:\ndocker:x:998:bob, alice\n",
		"passwd: files ldap\n")
	got, err := f.db.lookup("alice")
	if err != nil {
		t.Fatal(err)
	}
	want := &localUser{Name: "alice", UID: 1000, GID: 1000, Groups: []uint32{10, 998}, Home: "/home/alice", Shell: "/bin/zsh"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(localUser{})); diff != "" {
		t.Errorf("alice (-want +got):\n%s", diff)
	}
	if u, err := f.db.lookup("svc"); err != nil || u.Shell != "/bin/sh" {
		t.Errorf("svc: %+v, %v; want the default shell /bin/sh", u, err)
	}
	// Every login attempt looks the user up: users in /etc/passwd never
	// cost a getent.
	for range 100 {
		if _, err := f.db.lookup("alice"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("getent ran %d times for users /etc/passwd holds", n)
	}
	// A user only NSS knows: asked once, then cached for a while.
	f.nss["ldapuser"] = "ldapuser:*:5000:100:LDAP:/home/ldapuser:/bin/bash"
	for range 10 {
		u, err := f.db.lookup("ldapuser")
		if err != nil || u.UID != 5000 || u.Home != "/home/ldapuser" || !cmp.Equal(u.Groups, []uint32{4242}) {
			t.Fatalf("ldapuser: %+v, %v", u, err)
		}
	}
	if n := f.calls.Load(); n != 2 { // passwd and initgroups
		t.Errorf("getent ran %d times for 10 lookups of one NSS user, want 2", n)
	}
	// Unknown names: asked once per name, and the answer is kept too.
	for range 10 {
		if _, err := f.db.lookup("nosuch"); !errors.Is(err, errNoSuchUser) {
			t.Fatalf("nosuch: %v", err)
		}
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("getent ran %d times, want 3 (one more for the unknown name)", n)
	}
	f.now = f.now.Add(nssTTL + time.Second)
	f.db.lookup("ldapuser")
	if n := f.calls.Load(); n != 5 {
		t.Errorf("getent ran %d times, want 5 (asked again after the TTL)", n)
	}
	// Names reel would never accept are refused without a lookup.
	if _, err := f.db.lookup("-oProxyCommand=x"); !errors.Is(err, errNoSuchUser) {
		t.Errorf("bad name: %v", err)
	}
	// A change to /etc/passwd is seen at the next lookup.
	f.write(t, "passwd", "alice:x:1001:1000:Alice:/home/alice2:/bin/sh\n")
	if u, err := f.db.lookup("alice"); err != nil || u.UID != 1001 || u.Home != "/home/alice2" {
		t.Errorf("after the change: %+v, %v", u, err)
	}
	// With files only, NSS is never asked.
	calls := f.calls.Load()
	f.write(t, "nsswitch.conf", "passwd: files\ngroup: files\n")
	if _, err := f.db.lookup("ldapuser2"); !errors.Is(err, errNoSuchUser) {
		t.Errorf("files only, unknown user: %v", err)
	}
	if f.calls.Load() != calls {
		t.Error("getent ran although nsswitch.conf names files only")
	}
}

// TestLoginsDoNotForkGetent: logins (and failed attempts) of a user in
// /etc/passwd run no getent. A getent first on PATH counts its runs.
func TestLoginsDoNotForkGetent(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := os.ReadFile("/etc/passwd"); err != nil || !strings.Contains(string(pw), "\n"+u.Username+":") && !strings.HasPrefix(string(pw), u.Username+":") {
		testutil.SkipOrFail(t, "the current user %s is not in /etc/passwd", u.Username)
	}
	bin := t.TempDir()
	count := filepath.Join(bin, "count")
	if err := os.WriteFile(filepath.Join(bin, "getent"), []byte("#!/bin/sh\necho run >> "+count+"\nexec /usr/bin/getent \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	e := newEnv(t, policyFor(nil, ""))
	wrong := newSigner(t)
	for range 5 {
		c := e.goClient()
		c.Close()
		if _, err := ssh.Dial("tcp", e.addr.String(), &ssh.ClientConfig{
			User: e.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(wrong)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		}); err == nil {
			t.Fatal("a key that is not authorized logged in")
		}
	}
	if runs, err := os.ReadFile(count); err == nil {
		t.Errorf("getent ran %d times for 10 login attempts", strings.Count(string(runs), "run"))
	}
}
