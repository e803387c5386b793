package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Role is what an account may do in the UI.
type Role string

const (
	// RoleAdmin sees every recording and the audit log.
	RoleAdmin Role = "admin"
	// RoleViewer sees what the policy's viewers rules grant.
	RoleViewer Role = "viewer"
)

// ValidRole reports whether r is a role.
func ValidRole(r Role) bool { return r == RoleAdmin || r == RoleViewer }

// An Account is one local UI account.
type Account struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Hash is the password, argon2id in PHC string form.
	Hash string `json:"hash"`
	// MustChange: the password is a one-time password; the first login
	// must set a new one before it can see anything.
	MustChange bool      `json:"mustChange,omitempty"`
	Created    time.Time `json:"created"`
	Changed    time.Time `json:"changed"` // when the password was last set
}

// nameRE is an account name: what a policy's viewers rules can name
// (a login name or an email address), at most 64 bytes.
var nameRE = regexp.MustCompile(`^[\p{L}\p{N}._+@-]{1,64}$`)

// ValidName reports whether name can be an account's name (and a viewer
// identity from a proxy header): 1 to 64 bytes of letters, digits and
// "._+@-", as a policy names users.
func ValidName(name string) bool { return len(name) <= 64 && nameRE.MatchString(name) }

// accountsFile is the file's layout.
type accountsFile struct {
	Version  int       `json:"version"`
	Accounts []Account `json:"accounts"`
}

// ParseAccounts reads an accounts file. It is strict: unknown fields, a
// bad name, role or password hash, or a name given twice is an error.
func ParseAccounts(data []byte) ([]Account, error) {
	var f accountsFile
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if d.More() {
		return nil, errors.New("accounts: data after the accounts object")
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("accounts: version %d: want 1", f.Version)
	}
	seen := map[string]bool{}
	for i, a := range f.Accounts {
		switch {
		case !ValidName(a.Name):
			return nil, fmt.Errorf("accounts: #%d: bad name %q", i+1, a.Name)
		case seen[a.Name]:
			return nil, fmt.Errorf("accounts: %q: listed twice", a.Name)
		case !ValidRole(a.Role):
			return nil, fmt.Errorf("accounts: %q: bad role %q: want admin or viewer", a.Name, a.Role)
		}
		if _, _, _, err := parseHash(a.Hash); err != nil {
			return nil, fmt.Errorf("accounts: %q: %w", a.Name, err)
		}
		seen[a.Name] = true
	}
	if f.Accounts == nil {
		f.Accounts = []Account{}
	}
	return f.Accounts, nil
}

// marshalAccounts is the file's text for accounts.
func marshalAccounts(accts []Account) []byte {
	slices.SortFunc(accts, func(a, b Account) int { return cmpString(a.Name, b.Name) })
	b, err := json.MarshalIndent(accountsFile{Version: 1, Accounts: accts}, "", "  ")
	if err != nil {
		panic(err) // only strings, times and bools
	}
	return append(b, '\n')
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Errors about accounts.
var (
	ErrNoAccount = errors.New("no such account")
	ErrExists    = errors.New("account exists")
	// ErrBadLogin is a wrong name or password; which one is not said.
	ErrBadLogin = errors.New("wrong user name or password")
)

// Accounts are the local UI accounts kept in one file (by default
// accounts.json in the recorder's state directory), written whole to a
// temporary file and renamed over the old one, mode 0600. Several
// processes may use the file at once: changes take a lock and re-read the
// file first, and a reader notices a change made by another process at
// its next lookup. Methods are safe for concurrent use.
type Accounts struct {
	path   string
	params Params
	now    func() time.Time
	slots  hashSlots

	mu     sync.Mutex
	cur    map[string]Account
	stamp  fileStamp
	loaded bool
	err    error // the file as last read did not parse: no one may log in
}

// DefaultAccountsFile is the accounts file's name in the state directory.
const DefaultAccountsFile = "accounts.json"

// OpenAccounts opens the accounts file at path; a missing file holds no
// accounts (the first change creates it).
func OpenAccounts(path string) (*Accounts, error) {
	a := newAccounts(path, DefaultParams, time.Now)
	if _, err := a.snapshot(); err != nil {
		return nil, err
	}
	return a, nil
}

func newAccounts(path string, p Params, now func() time.Time) *Accounts {
	return &Accounts{path: path, params: p, now: now, slots: make(hashSlots, 2)}
}

// Path returns the accounts file.
func (a *Accounts) Path() string { return a.path }

type fileStamp struct {
	ino, size int64
	mtime     time.Time
	exists    bool
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime(), exists: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st, nil
}

// snapshot returns the accounts, re-reading the file if it changed since
// the last read. A file that does not parse is an error until it is
// fixed: nobody logs in with accounts that cannot be read.
func (a *Accounts) snapshot() (map[string]Account, error) {
	st, err := stat(a.path)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loaded && st == a.stamp {
		return a.cur, a.err
	}
	cur, err := a.read()
	a.loaded, a.stamp = true, st
	a.cur, a.err = cur, err
	return cur, err
}

func (a *Accounts) read() (map[string]Account, error) {
	data, err := os.ReadFile(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Account{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	list, err := ParseAccounts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.path, err)
	}
	m := make(map[string]Account, len(list))
	for _, acct := range list {
		m[acct.Name] = acct
	}
	return m, nil
}

// Lookup returns the account called name.
func (a *Accounts) Lookup(name string) (Account, error) {
	m, err := a.snapshot()
	if err != nil {
		return Account{}, err
	}
	acct, ok := m[name]
	if !ok {
		return Account{}, fmt.Errorf("%w: %q", ErrNoAccount, name)
	}
	return acct, nil
}

// List returns the accounts sorted by name.
func (a *Accounts) List() ([]Account, error) {
	m, err := a.snapshot()
	if err != nil {
		return nil, err
	}
	out := make([]Account, 0, len(m))
	for _, acct := range m {
		out = append(out, acct)
	}
	slices.SortFunc(out, func(x, y Account) int { return cmpString(x.Name, y.Name) })
	return out, nil
}

// update applies fn to the accounts as they are in the file now, under
// the file's lock, and writes the result.
func (a *Accounts) update(fn func(m map[string]Account) error) error {
	if err := os.MkdirAll(filepath.Dir(a.path), 0o700); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	lock, err := os.OpenFile(a.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	defer lock.Close()
	if err := flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("accounts: lock: %w", err)
	}
	defer flock(lock, unix.LOCK_UN)
	m, err := a.read()
	if err != nil {
		return err
	}
	if err := fn(m); err != nil {
		return err
	}
	list := make([]Account, 0, len(m))
	for _, acct := range m {
		list = append(list, acct)
	}
	if err := writeFileAtomic(a.path, marshalAccounts(list)); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	a.mu.Lock()
	a.loaded = false // re-read (and re-stat) at the next lookup
	a.mu.Unlock()
	return nil
}

// hash hashes pw within the limit on concurrent hashes.
func (a *Accounts) hash(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if serr := a.slots.do(ctx, func() { h, err = hashPassword(pw, a.params) }); serr != nil {
		return "", serr
	}
	return h, err
}

// newHash checks a new password for name and hashes it.
func (a *Accounts) newHash(ctx context.Context, name, password string) (string, error) {
	if err := CheckNewPassword(name, password); err != nil {
		return "", err
	}
	return a.hash(ctx, password)
}

// Add creates an account. The password must pass CheckNewPassword;
// mustChange makes it a one-time password.
func (a *Accounts) Add(ctx context.Context, name string, role Role, password string, mustChange bool) error {
	if !ValidName(name) {
		return fmt.Errorf("bad user name %q: want 1 to 64 letters, digits, '.', '_', '+', '@' or '-'", name)
	}
	if !ValidRole(role) {
		return fmt.Errorf("bad role %q: want admin or viewer", role)
	}
	h, err := a.newHash(ctx, name, password)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	return a.update(func(m map[string]Account) error {
		if _, ok := m[name]; ok {
			return fmt.Errorf("%w: %q", ErrExists, name)
		}
		m[name] = Account{Name: name, Role: role, Hash: h, MustChange: mustChange, Created: now, Changed: now}
		return nil
	})
}

// SetPassword sets name's password; mustChange makes it a one-time
// password. Every session of the account ends.
func (a *Accounts) SetPassword(ctx context.Context, name, password string, mustChange bool) error {
	h, err := a.newHash(ctx, name, password)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	return a.modify(name, func(acct *Account) {
		acct.Hash, acct.MustChange, acct.Changed = h, mustChange, now
	})
}

// modify applies fn to the account called name.
func (a *Accounts) modify(name string, fn func(*Account)) error {
	return a.update(func(m map[string]Account) error {
		acct, ok := m[name]
		if !ok {
			return fmt.Errorf("%w: %q", ErrNoAccount, name)
		}
		fn(&acct)
		m[name] = acct
		return nil
	})
}

// SetRole changes name's role. Every session of the account ends.
func (a *Accounts) SetRole(name string, role Role) error {
	if !ValidRole(role) {
		return fmt.Errorf("bad role %q: want admin or viewer", role)
	}
	return a.modify(name, func(acct *Account) { acct.Role = role })
}

// Remove deletes an account. Its sessions end.
func (a *Accounts) Remove(name string) error {
	return a.update(func(m map[string]Account) error {
		if _, ok := m[name]; !ok {
			return fmt.Errorf("%w: %q", ErrNoAccount, name)
		}
		delete(m, name)
		return nil
	})
}

// dummyHash is checked against when a login names no account, so that
// the answer takes as long as for a real one.
var (
	dummy   map[Params]string
	dummyMu sync.Mutex
)

func dummyHash(p Params) string {
	dummyMu.Lock()
	defer dummyMu.Unlock()
	if h, ok := dummy[p]; ok {
		return h
	}
	h, _ := hashPassword("reel: no such account", p)
	if dummy == nil {
		dummy = map[Params]string{}
	}
	dummy[p] = h
	return h
}

// Verify checks name's password. It returns ErrBadLogin for a wrong name
// or password alike, after the same work.
func (a *Accounts) Verify(ctx context.Context, name, password string) (Account, error) {
	m, err := a.snapshot()
	if err != nil {
		return Account{}, err
	}
	acct, ok := m[name]
	h := acct.Hash
	if !ok {
		h = dummyHash(a.params)
	}
	var match bool
	var herr error
	if len(password) > maxPasswordBytes {
		password = password[:maxPasswordBytes] // still do the work
		ok = false
	}
	if serr := a.slots.do(ctx, func() { match, herr = checkHash(password, h) }); serr != nil {
		return Account{}, serr
	}
	if herr != nil {
		return Account{}, fmt.Errorf("accounts: %q: %w", name, herr)
	}
	if !ok || !match {
		return Account{}, ErrBadLogin
	}
	return acct, nil
}

// Bootstrap makes the first admin account, name, with a one-time
// password it returns, when there are no accounts at all; otherwise it
// does nothing and returns "". The password is shown once and kept only
// hashed; the first login must replace it.
func (a *Accounts) Bootstrap(ctx context.Context, name string) (otp string, err error) {
	if m, err := a.snapshot(); err != nil || len(m) > 0 {
		return "", err
	}
	otp = NewOneTimePassword()
	h, err := a.hash(ctx, otp)
	if err != nil {
		return "", err
	}
	now := a.now().UTC()
	created := false
	err = a.update(func(m map[string]Account) error {
		if len(m) > 0 {
			return nil // another process was first
		}
		m[name] = Account{Name: name, Role: RoleAdmin, Hash: h, MustChange: true, Created: now, Changed: now}
		created = true
		return nil
	})
	if err != nil || !created {
		return "", err
	}
	return otp, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, mode 0600, synced, renamed over path, and the directory
// synced. A crash leaves the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename: nothing there
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
