package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testParams keep argon2id cheap in tests; DefaultParams are tested once.
var testParams = Params{Memory: 64, Time: 1, Threads: 1}

var ctx = context.Background()

func newTestAccounts(t *testing.T, path string) *Accounts {
	t.Helper()
	a := newAccounts(path, testParams, time.Now)
	if _, err := a.snapshot(); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestHash(t *testing.T) {
	// One hash with the real parameters (slow under -race), the checks
	// with cheap ones.
	h, err := hashPassword("correct horse battery", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=4\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Errorf("hash %q is not argon2id with the default parameters", h)
	}
	h, _ = hashPassword("correct horse battery", testParams)
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterz": false, "": false} {
		if ok, err := checkHash(pw, h); err != nil || ok != want {
			t.Errorf("checkHash(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	h2, _ := hashPassword("correct horse battery", testParams)
	if h2 == h || !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("second hash %q: want a fresh salt and the given parameters", h2)
	}
}

func TestParseHashRefuses(t *testing.T) {
	good, _ := hashPassword("x", testParams)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, h := range []string{
		"",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, // 4 GiB
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=65,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10],
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		"plain text password",
	} {
		if _, _, _, err := parseHash(h); err == nil {
			t.Errorf("parseHash(%q) accepted", h)
		}
	}
}

func TestCheckNewPassword(t *testing.T) {
	for _, tt := range []struct {
		name, pw string
		ok       bool
	}{
		{"alice", "twelve chars", true},
		{"alice", "éléphantsrose", true},
		{"alice", "eleven char", false},
		{"alice", "tab\tinside password", false},
		{"alice12345678", "ALICE12345678", false},
		{"alice", strings.Repeat("x", 1025), false},
		{"alice", "\xff" + strings.Repeat("x", 12), false},
	} {
		err := CheckNewPassword(tt.name, tt.pw)
		if (err == nil) != tt.ok {
			t.Errorf("CheckNewPassword(%q, %q) = %v, want ok=%v", tt.name, tt.pw, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrWeakPassword) {
			t.Errorf("error %v is not ErrWeakPassword", err)
		}
	}
}

func TestNewOneTimePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := NewOneTimePassword()
		if !regexp.MustCompile(`^[a-z2-7]{5}(-[a-z2-7]{5}){3}$`).MatchString(p) {
			t.Fatalf("one-time password %q", p)
		}
		if err := CheckNewPassword("admin", p); err != nil {
			t.Fatalf("one-time password %q refused: %v", p, err)
		}
		if seen[p] {
			t.Fatalf("one-time password %q twice", p)
		}
		seen[p] = true
	}
}

func TestAccounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "accounts.json")
	a := newTestAccounts(t, path)
	if l, err := a.List(); err != nil || len(l) != 0 {
		t.Fatalf("new accounts: %v, %v", l, err)
	}
	if err := a.Add(ctx, "bob", RoleViewer, "bob's long password", false); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(ctx, "alice@example.com", RoleAdmin, "alice's long password", true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, role, pw string
		want           string
	}{
		{"bob", "viewer", "another long one", "account exists"},
		{"a b", "viewer", "another long one", "bad user name"},
		{"carol", "root", "another long one", "bad role"},
		{"carol", "viewer", "short", "at least 12 characters"},
	} {
		if err := a.Add(ctx, tt.name, Role(tt.role), tt.pw, false); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Add(%q, %q): %v, want %q", tt.name, tt.role, err, tt.want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("accounts file mode %v, want 0600", fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 2 { // accounts.json, accounts.json.lock
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state directory holds %q: a temporary file left?", names)
	}
	l, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{l[0].Name, l[1].Name}; !cmp.Equal(got, []string{"alice@example.com", "bob"}) {
		t.Errorf("List: %q", got)
	}
	if !l[0].MustChange || l[0].Role != RoleAdmin || l[1].MustChange {
		t.Errorf("List: %+v", l)
	}

	// Verify: a wrong password and an unknown name are the same error.
	if acct, err := a.Verify(ctx, "bob", "bob's long password"); err != nil || acct.Name != "bob" {
		t.Errorf("Verify(bob): %v, %v", acct, err)
	}
	for _, tt := range [][2]string{{"bob", "bob's long passworD"}, {"nobody", "bob's long password"}, {"bob", ""}, {"bob", strings.Repeat("x", 2000)}} {
		if _, err := a.Verify(ctx, tt[0], tt[1]); !errors.Is(err, ErrBadLogin) {
			t.Errorf("Verify(%q, %q): %v, want ErrBadLogin", tt[0], tt[1], err)
		}
	}

	// Another process (another Accounts on the file) sees changes at its
	// next lookup.
	b := newTestAccounts(t, path)
	if err := b.SetPassword(ctx, "bob", "bob's new password", false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, "bob", "bob's long password"); !errors.Is(err, ErrBadLogin) {
		t.Errorf("old password after a change elsewhere: %v", err)
	}
	if _, err := a.Verify(ctx, "bob", "bob's new password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if err := b.SetRole("bob", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if acct, _ := a.Lookup("bob"); acct.Role != RoleAdmin {
		t.Errorf("role after SetRole elsewhere: %q", acct.Role)
	}
	if err := b.Remove("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup("bob"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("Lookup after Remove elsewhere: %v", err)
	}
	for _, err := range []error{b.Remove("bob"), b.SetPassword(ctx, "bob", "whatever long", false), b.SetRole("bob", RoleViewer)} {
		if !errors.Is(err, ErrNoAccount) {
			t.Errorf("change of a missing account: %v", err)
		}
	}
}

// TestAccountsConcurrentChanges: two processes adding accounts at once
// lose none (the file's lock; without it one rename undoes the other).
func TestAccountsConcurrentChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	var wg sync.WaitGroup
	errc := make(chan error, 40)
	for p := range 2 {
		a := newTestAccounts(t, path)
		wg.Go(func() {
			for i := range 20 {
				if err := a.Add(ctx, fmt.Sprintf("u%d-%d", p, i), RoleViewer, "a long enough password", false); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	l, err := newTestAccounts(t, path).List()
	if err != nil || len(l) != 40 {
		t.Errorf("%d accounts (%v), want 40", len(l), err)
	}
}

func TestBootstrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	a := newTestAccounts(t, path)
	otp, err := a.Bootstrap(ctx, "admin")
	if err != nil || otp == "" {
		t.Fatalf("Bootstrap: %q, %v", otp, err)
	}
	acct, err := a.Verify(ctx, "admin", otp)
	if err != nil || acct.Role != RoleAdmin || !acct.MustChange {
		t.Errorf("first admin: %+v, %v", acct, err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), otp) {
		t.Error("the one-time password is in the file")
	}
	// Only once: a restart prints no new password.
	if otp2, err := newTestAccounts(t, path).Bootstrap(ctx, "admin"); otp2 != "" || err != nil {
		t.Errorf("second Bootstrap: %q, %v", otp2, err)
	}
}

// TestBadFileRefusesLogins: an accounts file that does not parse lets
// nobody in, and says why.
func TestBadFileRefusesLogins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	a := newTestAccounts(t, path)
	if err := a.Add(ctx, "bob", RoleViewer, "bob's long password", false); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	bad := strings.Replace(string(data), `"viewer"`, `"superuser"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := a.Verify(ctx, "bob", "bob's long password")
	if err == nil || errors.Is(err, ErrBadLogin) || !strings.Contains(err.Error(), `bad role "superuser"`) {
		t.Errorf("Verify with a bad file: %v", err)
	}
	if err := a.Add(ctx, "carol", RoleViewer, "carol's long password", false); err == nil {
		t.Error("Add over a bad file succeeded")
	}
}

func TestParseAccounts(t *testing.T) {
	h, _ := hashPassword("x", testParams)
	ok := func(name, role string) string {
		return fmt.Sprintf(`{"name":%q,"role":%q,"hash":%q,"created":"2026-01-01T00:00:00Z","changed":"2026-01-01T00:00:00Z"}`, name, role, h)
	}
	for _, tt := range []struct {
		src  string
		want string
	}{
		{`{"version":1,"accounts":[` + ok("a", "admin") + `]}`, ""},
		{`{"version":1,"accounts":[]}`, ""},
		{`{"version":2,"accounts":[]}`, "version 2"},
		{`{"version":1,"accounts":[],"x":1}`, "unknown field"},
		{`{"version":1,"accounts":[` + ok("a", "admin") + `,` + ok("a", "viewer") + `]}`, "listed twice"},
		{`{"version":1,"accounts":[` + ok("a/b", "admin") + `]}`, "bad name"},
		{`{"version":1,"accounts":[` + strings.Replace(ok("a", "admin"), h, "secret", 1) + `]}`, "bad password hash"},
		{`{"version":1,"accounts":[]} {}`, "data after"},
		{`[`, "unexpected EOF"},
	} {
		_, err := ParseAccounts([]byte(tt.src))
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("ParseAccounts(%.60s…): %v, want %q", tt.src, err, tt.want)
		}
	}
}
