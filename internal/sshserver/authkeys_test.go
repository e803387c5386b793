package sshserver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/testutil"
)

func newKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	return newSigner(t).PublicKey()
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
		want     []string // "LINE USER [OPTIONS] COMMENT" per entry
		wantErrs []string // substrings, one per bad line
	}{
		{"empty", "", nil, nil},
		{"comments and blanks", "# keys\n\n   \n# more\n", nil, nil},
		{"one", "alice " + authLine(k1) + "\n", []string{"1 alice [] "}, nil},
		{"comment kept", "alice " + authLine(k1) + " alice@laptop  2024\n", []string{"1 alice [] alice@laptop 2024"}, nil},
		{"crlf and indent", "  bob\t" + authLine(k2) + "\r\n", []string{"1 bob [] "}, nil},
		{"two users, one key", "alice " + authLine(k1) + "\nroot " + authLine(k1), []string{"1 alice [] ", "2 root [] "}, nil},
		{"options", `alice command="ls -l",no-pty ` + authLine(k1) + " c", []string{`1 alice [command="ls -l",no-pty] c`}, nil},
		{"quoted blank and comma", `alice from="10.0.0.0/8,192.168.1.1",command="echo a, b" ` + authLine(k1),
			[]string{`1 alice [from="10.0.0.0/8,192.168.1.1",command="echo a, b"] `}, nil},
		{"restrict", "alice restrict,pty " + authLine(k1), []string{"1 alice [restrict,pty] "}, nil},
		{"too few fields", "alice " + typ + "\n", nil, []string{"keys:1: want LOCALUSER [OPTIONS] KEYTYPE BASE64"}},
		{"user only", "alice", nil, []string{"keys:1: want LOCALUSER [OPTIONS] KEYTYPE BASE64"}},
		{"bad user", "al:ice " + authLine(k1), nil, []string{`keys:1: bad local user name "al:ice"`}},
		{"user starting with dash", "-oops " + authLine(k1), nil, []string{"bad local user name"}},
		{"unsupported option", `alice environment="A=b" ` + authLine(k1), nil, []string{"option environment is not supported"}},
		{"unknown option", `alice frobnicate ` + authLine(k1), nil, []string{`unknown option "frobnicate"`}},
		{"unclosed quote", `alice command="ls ` + authLine(k1), nil, []string{"no closing quote"}},
		{"bad network", `alice from="10.1.2.3/8" ` + authLine(k1), nil, []string{"bits set past the mask"}},
		{"bad expiry", `alice expiry-time="2024-01-01" ` + authLine(k1), nil, []string{"want YYYYMMDD"}},
		{"unknown key type", "alice ssh-foo " + b64, nil, []string{`unknown key type "ssh-foo"`}},
		{"unknown key type after options", "alice restrict ssh-foo " + b64, nil, []string{`unknown key type "ssh-foo"`}},
		{"bad base64", "alice " + typ + " not-base64!", nil, []string{"bad base64"}},
		{"not a key", "alice " + typ + " aGVsbG8=", nil, []string{"ssh-ed25519 key:"}},
		{"type mismatch", "alice ssh-rsa " + b64, nil, []string{`key type is "ssh-ed25519" but the line says "ssh-rsa"`}},
		{"good lines kept beside bad", "alice " + authLine(k1) + "\nbad\nbob " + authLine(k2),
			[]string{"1 alice [] ", "3 bob [] "}, []string{"keys:2:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := ParseAuthorizedKeys("keys", []byte(tc.text))
			var got []string
			for _, e := range entries {
				got = append(got, fmt.Sprintf("%d %s [%s] %s", e.Line, e.User, e.Options, e.Comment))
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
	f.Add(`bob from="!10.0.0.0/8,10.*,::1",command="echo \"hi\", there",restrict,pty ` + authLine(k) + " c")
	f.Add(`bob expiry-time="20300101Z",no-pty,permitopen="host:22" ` + authLine(k))
	f.Add(`bob command="unclosed ` + authLine(k))
	f.Fuzz(func(t *testing.T, text string) {
		entries, err := ParseAuthorizedKeys("f", []byte(text))
		for _, e := range entries {
			if !userNameRE.MatchString(e.User) || e.Key == nil || e.Line < 1 {
				t.Fatalf("bad entry accepted: %+v", e)
			}
			// A parsed entry prints back to a line that parses the same.
			line := e.User + " " + authLine(e.Key)
			if e.Options != "" {
				line = e.User + " " + e.Options + " " + authLine(e.Key)
			}
			again, err := ParseAuthorizedKeys("g", []byte(line))
			if err != nil || len(again) != 1 || string(again[0].Key.Marshal()) != string(e.Key.Marshal()) ||
				!reflect.DeepEqual(again[0].opts, e.opts) {
				t.Fatalf("round trip of %q: %+v %v", line, again, err)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f:") {
			t.Fatalf("error without position: %v", err)
		}
	})
}

// FuzzKeyLine: any authorized_keys line, options and all, parses or is
// refused without panicking; what parses prints back the same; and the
// from= patterns it accepted match any address in bounded time.
func FuzzKeyLine(f *testing.F) {
	k := newKey(f)
	for _, opts := range []string{"", "restrict ", "no-pty,command=\"a\\\"b\" ", `from="*.*.*.*.*.*.*.*a,!127.0.0.1,10.0.0.0/8" `,
		`from="::ffff:10.0.0.0/104",expiry-time="209912312359" `, `FROM="1.2.3.4",No-Pty `, `command="x",command="y" `} {
		f.Add(opts + authLine(k) + " comment")
	}
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::1")}
	f.Fuzz(func(t *testing.T, line string) {
		kl, err := parseKeyLine(line)
		if err != nil {
			return
		}
		again, err := parseKeyLine(kl.opts.text + " " + authLine(kl.key))
		if kl.opts.text == "" {
			again, err = parseKeyLine(authLine(kl.key))
		}
		if err != nil || !reflect.DeepEqual(again.opts, kl.opts) {
			t.Fatalf("options %q parse again as %+v, %v; want %+v", kl.opts.text, again.opts, err, kl.opts)
		}
		for _, a := range addrs {
			kl.opts.allows(a, time.Now())
		}
	})
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
	write := func(text string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("alice "+authLine(k1)+"\n", 0o644)
	var logs testutil.Buffer
	kf, err := loadKeysFile(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	found := func(user string, k ssh.PublicKey) bool { return len(kf.lookup(user, k)) > 0 }
	if !found("alice", k1) {
		t.Fatal("alice's key not found")
	}
	if found("bob", k1) {
		t.Fatal("alice's key let bob in")
	}
	// A change is picked up.
	write("alice "+authLine(k1)+"\nbob "+authLine(k2)+"\n", 0o644)
	if !found("bob", k2) {
		t.Fatal("bob's new key not picked up")
	}
	// A bad file is logged and the last good keys stay.
	write("bob "+authLine(k2)+"\nnonsense\n", 0o644)
	if !found("alice", k1) {
		t.Error("a bad file dropped the good keys")
	}
	if !strings.Contains(logs.String(), "keeping the keys read before") {
		t.Errorf("bad file not logged: %s", logs.String())
	}
	// A bad file at start is an error.
	if _, err := loadKeysFile(path, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a bad file was accepted at start")
	}
	// A file others may write authorizes nothing until it is fixed.
	write("alice "+authLine(k1)+"\n", 0o644)
	if !found("alice", k1) {
		t.Fatal("the fixed file is not used")
	}
	os.Chmod(path, 0o666)
	if found("alice", k1) {
		t.Error("a world-writable keys file was used")
	}
	if !strings.Contains(logs.String(), "writable by group or others") {
		t.Errorf("unsafe file not logged: %s", logs.String())
	}
	os.Chmod(path, 0o644)
	if !found("alice", k1) {
		t.Error("the file is not used again once safe")
	}
	// A file that is gone authorizes nothing.
	os.Remove(path)
	if found("alice", k1) {
		t.Error("a removed keys file still authorizes its keys")
	}
}
