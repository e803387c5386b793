package sshserver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/testutil"
)

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testHome is a home directory made for a test, with ~/.ssh, for a user
// with the test's own uid (real users' files are never touched).
type testHome struct {
	dir  string
	user *localUser
}

func newTestHome(t *testing.T) *testHome {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(filepath.Join(dir, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	return &testHome{dir: dir, user: &localUser{Name: "me", UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Home: dir, Shell: "/bin/sh"}}
}

func (h *testHome) keysPath() string { return filepath.Join(h.dir, ".ssh", "authorized_keys") }

func (h *testHome) writeKeys(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(h.keysPath(), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestUserKeysFile checks how ~/.ssh/authorized_keys is read: the
// StrictModes rules, no symbolic link, regular files only, a size limit.
func TestUserKeysFile(t *testing.T) {
	k, other := newKey(t), newKey(t)
	src := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name    string
		content string
		setup   func(t *testing.T, h *testHome)
		want    bool
		wantLog string
	}{
		{"listed", authLine(k) + " me@host\n", nil, true, ""},
		{"among others", "# mine\n" + authLine(other) + "\n" + authLine(k) + "\n", nil, true, ""},
		{"not listed", authLine(other) + "\n", nil, false, ""},
		{"harmless options", "no-port-forwarding,no-agent-forwarding " + authLine(k) + "\n", nil, true, ""},
		{"forced command", `command="date" ` + authLine(k) + "\n", nil, true, ""},
		{"from another address", `from="10.0.0.1" ` + authLine(k) + "\n", nil, false, "may not log in from 127.0.0.1"},
		{"from this address", `from="10.0.0.1,127.0.0.0/8" ` + authLine(k) + "\n", nil, true, ""},
		{"unsupported option", `tunnel="1" ` + authLine(k) + "\n", nil, false, "option tunnel is not supported"},
		{"a later line admits", `from="10.0.0.1" ` + authLine(k) + "\n" + authLine(k) + "\n", nil, true, "may not log in from"},
		{"world-writable file", authLine(k) + "\n", func(t *testing.T, h *testHome) {
			os.Chmod(h.keysPath(), 0o666)
		}, false, "writable by group or others"},
		{"group-writable .ssh", authLine(k) + "\n", func(t *testing.T, h *testHome) {
			os.Chmod(filepath.Join(h.dir, ".ssh"), 0o770)
		}, false, "writable by group or others"},
		{"writable home", authLine(k) + "\n", func(t *testing.T, h *testHome) {
			os.Chmod(h.dir, 0o777)
		}, false, "writable by group or others"},
		{"no file", "", func(t *testing.T, h *testHome) {
			os.Remove(h.keysPath())
		}, false, ""},
		{"symbolic link", "", func(t *testing.T, h *testHome) {
			target := filepath.Join(h.dir, "elsewhere")
			os.WriteFile(target, []byte(authLine(k)+"\n"), 0o600)
			os.Remove(h.keysPath())
			if err := os.Symlink(target, h.keysPath()); err != nil {
				t.Fatal(err)
			}
		}, false, "is a symbolic link"},
		{"directory", "", func(t *testing.T, h *testHome) {
			os.Remove(h.keysPath())
			os.Mkdir(h.keysPath(), 0o700)
		}, false, "not a regular file"},
		{"too large", "", func(t *testing.T, h *testHome) {
			big := bytes.Repeat([]byte("# padding padding padding padding padding padding padding\n"), maxUserKeysSize/58+1)
			h.writeKeys(t, authLine(k)+"\n"+string(big))
		}, false, "larger than"},
		{"fifo", "", func(t *testing.T, h *testHome) {
			os.Remove(h.keysPath())
			if err := syscall.Mkfifo(h.keysPath(), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHome(t)
			h.writeKeys(t, tc.content)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			var logs testutil.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			s := &Server{Now: time.Now}
			done := make(chan bool, 1)
			go func() {
				_, ok := s.authorizedKey(h.user, k, src, log)
				done <- ok
			}()
			if got := testutil.Recv(t, "the key lookup to return (a FIFO must not block it)", done); got != tc.want {
				t.Errorf("authorized = %v, want %v; logs:\n%s", got, tc.want, logs.String())
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("logs lack %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

// TestUserKeysOwner: files and directories owned by another user are
// refused; root's are not. Needs root to give files away.
func TestUserKeysOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown files to another user")
	}
	k := newKey(t)
	for _, tc := range []struct {
		name  string
		chown string // relative to the home
		uid   int
		want  bool
	}{
		{"file owned by another user", ".ssh/authorized_keys", 12345, false},
		{".ssh owned by another user", ".ssh", 12345, false},
		{"home owned by another user", ".", 12345, false},
		{"file owned by root", ".ssh/authorized_keys", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHome(t)
			h.user.UID, h.user.GID = 4242, 4242 // the user, as root reads for it
			for _, p := range []string{".", ".ssh", ".ssh/authorized_keys"} {
				os.Lchown(filepath.Join(h.dir, p), 4242, 4242)
			}
			h.writeKeys(t, authLine(k)+"\n")
			// Readable by all, so that the owner is what is refused.
			os.Chmod(h.keysPath(), 0o644)
			os.Chmod(filepath.Join(h.dir, ".ssh"), 0o755)
			openPath(t, h.dir)
			if err := os.Lchown(filepath.Join(h.dir, tc.chown), tc.uid, tc.uid); err != nil {
				t.Fatal(err)
			}
			_, _, err := readUserKeys(h.user)
			if (err == nil) != tc.want || err != nil && !strings.Contains(err.Error(), "is owned by uid 12345") {
				t.Errorf("readUserKeys: %v; want ok %v", err, tc.want)
			}
		})
	}
}

// TestUserKeysReadAsUser: root reads a user's authorized_keys with the
// user's rights, so a file the user could not read is not used, even if
// StrictModes would let it pass (root owns it).
func TestUserKeysReadAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root reads files for other users")
	}
	k := newKey(t)
	h := newTestHome(t)
	h.user.UID, h.user.GID = 4242, 4242
	for _, p := range []string{".", ".ssh"} {
		os.Chown(filepath.Join(h.dir, p), 4242, 4242)
	}
	h.writeKeys(t, authLine(k)+"\n")
	openPath(t, h.dir)
	// Owned by root, mode 0600: safe by StrictModes, unreadable by 4242.
	if _, _, err := readUserKeys(h.user); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("root-only file: readUserKeys = %v, want permission denied (read as the user)", err)
	}
	os.Chown(h.keysPath(), 4242, 4242)
	data, _, err := readUserKeys(h.user)
	if err != nil || !strings.Contains(string(data), authLine(k)) {
		t.Errorf("the user's own file: %q, %v", data, err)
	}
	// The thread that read as the user is gone: reel is still root to the
	// kernel everywhere (a file only root may read can be read).
	secret := filepath.Join(t.TempDir(), "root-only")
	os.WriteFile(secret, []byte("x"), 0o600)
	os.Chown(secret, 0, 0)
	for range 20 {
		if _, err := os.ReadFile(secret); err != nil {
			t.Fatalf("after reading as a user, root cannot read a root-only file: %v", err)
		}
	}
}

// openPath makes the directories above dir searchable by anyone, as
// they are above real home directories (t.TempDir makes them 0700).
func openPath(t *testing.T, dir string) {
	t.Helper()
	for d := filepath.Dir(dir); d != "/" && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCentralKeysFile checks the --authorized-keys file's rules.
func TestCentralKeysFile(t *testing.T) {
	k := newKey(t)
	line := "alice " + authLine(k) + "\n"
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir, path string) string // returns the path to give
		wantErr string
	}{
		{"plain", nil, ""},
		{"symbolic link to a safe file", func(t *testing.T, dir, path string) string {
			link := filepath.Join(dir, "link")
			os.Symlink(path, link)
			return link
		}, ""},
		{"world-writable", func(t *testing.T, dir, path string) string {
			os.Chmod(path, 0o646)
			return path
		}, "writable by group or others"},
		{"group-writable directory", func(t *testing.T, dir, path string) string {
			os.Chmod(dir, 0o775)
			return path
		}, "writable by group or others"},
		{"fifo", func(t *testing.T, dir, path string) string {
			fifo := filepath.Join(dir, "fifo")
			syscall.Mkfifo(fifo, 0o600)
			return fifo
		}, "not a regular file"},
		{"too large", func(t *testing.T, dir, path string) string {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Truncate(maxCentralKeysSize + 1)
			f.Close()
			return path
		}, "larger than"},
		{"missing", func(t *testing.T, dir, path string) string {
			return filepath.Join(dir, "nosuch")
		}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etc")
			os.Mkdir(dir, 0o755)
			path := filepath.Join(dir, "keys")
			os.WriteFile(path, []byte(line), 0o644)
			if tc.setup != nil {
				path = tc.setup(t, dir, path)
			}
			done := make(chan error, 1)
			go func() {
				_, err := loadKeysFile(path, slog.New(slog.DiscardHandler))
				done <- err
			}()
			err := testutil.Recv(t, "loadKeysFile to return (a FIFO must not block it)", done)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("loadKeysFile: %v; want %q", err, tc.wantErr)
			}
		})
	}
	if os.Geteuid() == 0 {
		t.Run("owned by another user", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			os.WriteFile(path, []byte(line), 0o644)
			os.Chown(path, 12345, 12345)
			if _, err := loadKeysFile(path, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
				t.Errorf("loadKeysFile: %v; want it refused", err)
			}
		})
	}
}
