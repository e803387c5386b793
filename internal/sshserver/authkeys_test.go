package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reel-rec/reel/internal/testutil"
	"golang.org/x/crypto/ssh"
)

func newKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func authLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestParseAuthorizedKeys(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	typ, b64, _ := strings.Cut(authLine(k1), " ")
	for _, tc := range []struct {
		name     string
		text     string
		want     []string // "LINE USER COMMENT" per entry
		wantErrs []string // substrings, one per bad line
	}{
		{"empty", "", nil, nil},
		{"comments and blanks", "# keys\n\n   \n# more\n", nil, nil},
		{"one", "alice " + authLine(k1) + "\n", []string{"1 alice "}, nil},
		{"comment kept", "alice " + authLine(k1) + " alice@laptop  2024\n", []string{"1 alice alice@laptop 2024"}, nil},
		{"crlf and indent", "  bob " + authLine(k2) + "\r\n", []string{"1 bob "}, nil},
		{"two users, one key", "alice " + authLine(k1) + "\nroot " + authLine(k1), []string{"1 alice ", "2 root "}, nil},
		{"too few fields", "alice " + typ + "\n", nil, []string{"keys:1: want LOCALUSER KEYTYPE BASE64"}},
		{"bad user", "al:ice " + authLine(k1), nil, []string{`keys:1: bad local user name "al:ice"`}},
		{"user starting with dash", "-oops " + authLine(k1), nil, []string{"bad local user name"}},
		{"options", `alice command="ls" ` + authLine(k1), nil, []string{"key options are not supported"}},
		{"bad base64", "alice " + typ + " not-base64!", nil, []string{"bad base64"}},
		{"not a key", "alice " + typ + " aGVsbG8=", nil, []string{"ssh-ed25519 key:"}},
		{"type mismatch", "alice ssh-rsa " + b64, nil, []string{`key type is "ssh-ed25519" but the line says "ssh-rsa"`}},
		{"good lines kept beside bad", "alice " + authLine(k1) + "\nbad\nbob " + authLine(k2),
			[]string{"1 alice ", "3 bob "}, []string{"keys:2:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := ParseAuthorizedKeys("keys", []byte(tc.text))
			var got []string
			for _, e := range entries {
				got = append(got, fmt.Sprintf("%d %s %s", e.Line, e.User, e.Comment))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Errorf("error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErrs)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.wantErrs) {
				t.Fatalf("errors %q, want %d", lines, len(tc.wantErrs))
			}
			for i, w := range tc.wantErrs {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %q, want it to contain %q", lines[i], w)
				}
			}
		})
	}
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	k := newKey(f)
	f.Add("alice " + authLine(k) + " comment\n")
	f.Add("# c\n\nroot " + authLine(k) + "\r\n")
	f.Add("alice ssh-ed25519 AAAA\n")
	f.Add(`bob from="1.2.3.4" ` + authLine(k))
	f.Fuzz(func(t *testing.T, text string) {
		entries, err := ParseAuthorizedKeys("f", []byte(text))
		for _, e := range entries {
			if !userNameRE.MatchString(e.User) || e.Key == nil || e.Line < 1 {
				t.Fatalf("bad entry accepted: %+v", e)
			}
			// A parsed entry prints back to a line that parses the same.
			line := e.User + " " + authLine(e.Key)
			again, err := ParseAuthorizedKeys("g", []byte(line))
			if err != nil || len(again) != 1 || string(again[0].Key.Marshal()) != string(e.Key.Marshal()) {
				t.Fatalf("round trip of %q: %v %v", line, again, err)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f:") {
			t.Fatalf("error without position: %v", err)
		}
	})
}

func TestParsePasswdLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want passwdEntry
		ok   bool
	}{
		{"root:x:0:0:root:/root:/bin/bash", passwdEntry{"root", "/root", "/bin/bash"}, true},
		{"svc:x:999:999::/nonexistent:", passwdEntry{"svc", "/nonexistent", ""}, true},
		{"short:x:1", passwdEntry{}, false},
		{":x:0:0::/:/bin/sh", passwdEntry{}, false},
		{"a:b:c:d:e:f:g:h", passwdEntry{}, false},
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

// TestUserKeyFile checks the ~/.ssh/authorized_keys rules on a home made
// for the test (real users' files are never touched).
func TestUserKeyFile(t *testing.T) {
	k, other := newKey(t), newKey(t)
	for _, tc := range []struct {
		name    string
		content string
		setup   func(home string)
		want    bool
	}{
		{"listed", authLine(k) + " me@host\n", nil, true},
		{"among others", "# mine\n" + authLine(other) + "\n" + authLine(k) + "\n", nil, true},
		{"not listed", authLine(other) + "\n", nil, false},
		{"harmless option", "no-port-forwarding,no-agent-forwarding " + authLine(k) + "\n", nil, true},
		{"forced command", `command="date" ` + authLine(k) + "\n", nil, false},
		{"from restriction", `from="10.0.0.1" ` + authLine(k) + "\n", nil, false},
		{"world-writable file", authLine(k) + "\n", func(home string) {
			os.Chmod(filepath.Join(home, ".ssh", "authorized_keys"), 0o666)
		}, false},
		{"group-writable .ssh", authLine(k) + "\n", func(home string) {
			os.Chmod(filepath.Join(home, ".ssh"), 0o770)
		}, false},
		{"writable home", authLine(k) + "\n", func(home string) {
			os.Chmod(home, 0o777)
		}, false},
		{"no file", "", func(home string) {
			os.Remove(filepath.Join(home, ".ssh", "authorized_keys"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
				t.Fatal(err)
			}
			os.Chmod(home, 0o755)
			if err := os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(home)
			}
			u := &localUser{Name: "me", UID: uint32(os.Getuid()), Home: home}
			if got := userKeyAllows(u, k, slog.New(slog.DiscardHandler)); got != tc.want {
				t.Errorf("userKeyAllows = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoadHostKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := LoadHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 {
		t.Fatalf("%d host keys, want 2", len(first))
	}
	for _, name := range []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", name, err, fi.Mode().Perm())
		}
	}
	again, err := LoadHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	var a, b []string
	for i := range first {
		a = append(a, ssh.FingerprintSHA256(first[i].PublicKey()))
		b = append(b, ssh.FingerprintSHA256(again[i].PublicKey()))
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("host keys changed on the second start (-first +second):\n%s", diff)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh_host_ecdsa_key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHostKeys(dir); err == nil {
		t.Error("a corrupt host key was accepted")
	}
}

func TestKeysFileReload(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	path := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(path, []byte("alice "+authLine(k1)+"\n"), 0o644)
	var logs testutil.Buffer
	kf, err := loadKeysFile(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kf.lookup("alice", k1); !ok {
		t.Fatal("alice's key not found")
	}
	if _, ok := kf.lookup("bob", k1); ok {
		t.Fatal("alice's key let bob in")
	}
	// A change is picked up.
	os.WriteFile(path, []byte("alice "+authLine(k1)+"\nbob "+authLine(k2)+"\n"), 0o644)
	if _, ok := kf.lookup("bob", k2); !ok {
		t.Fatal("bob's new key not picked up")
	}
	// A bad file is logged and the last good keys stay.
	os.WriteFile(path, []byte("bob "+authLine(k2)+"\nnonsense\n"), 0o644)
	if _, ok := kf.lookup("alice", k1); !ok {
		t.Error("a bad file dropped the good keys")
	}
	if !strings.Contains(logs.String(), "keeping the keys read before") {
		t.Errorf("bad file not logged: %s", logs.String())
	}
	// A bad file at start is an error.
	if _, err := loadKeysFile(path, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a bad file was accepted at start")
	}
}
