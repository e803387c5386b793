package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/auth"
)

func init() {
	register(&command{name: "user", summary: "manage the web UI's local accounts", run: runUser, subs: []string{"add", "passwd", "rm", "ls"}})
}

const userUsage = `
Usage:
  reel user add NAME [--role viewer|admin] [--password-stdin]
  reel user passwd NAME [--password-stdin]
  reel user rm NAME
  reel user ls [--json]

Manages the local accounts of the web UI (reel serve --ui, plain mode),
kept in accounts.json in the recorder's state directory (--statedir,
default <dst>/.reel), mode 0600, passwords hashed with argon2id. It works
while "reel serve" runs: a change applies at once, and ends the sessions
of the account it changes or removes.

add creates an account (role viewer unless --role admin). passwd sets a
new password. Without --password-stdin both make a one-time password,
print it once, and the user must choose their own at the first login;
with it they read the password from the first line of stdin (at least 12
characters). rm removes an account. ls lists them.

Who may see which recordings is the policy's business (viewers rules,
see docs/access.md); admins see everything. Every change is written to
the audit log (reel audit).

The first start of "reel serve --ui" with no accounts creates "admin"
with a one-time password it prints once.

Examples:
    reel user add alice
    reel user add bob --role admin --password-stdin < bob.pw
    reel user passwd alice
    reel user ls
`

// stateFlags are --dst and --statedir, as reel serve takes them: the
// state directory is --statedir, or <dst>/.reel.
type stateFlags struct {
	dst, stateDir string
}

func addStateFlags(fs *flag.FlagSet, env *cmdEnv) *stateFlags {
	f := &stateFlags{}
	fs.StringVar(&f.dst, "dst", envOr(env, "./recordings", "TSRECORDER_DST"), "the recorder's --dst: its state directory is <dst>/.reel unless --statedir says otherwise (env TSRECORDER_DST)")
	fs.StringVar(&f.stateDir, "statedir", envOr(env, "", "TS_STATE_DIR"), "the recorder's state directory (env TS_STATE_DIR)")
	return f
}

// dir returns the state directory.
func (f *stateFlags) dir() (string, error) {
	if f.stateDir != "" {
		return f.stateDir, nil
	}
	if strings.Contains(f.dst, "://") {
		return "", usagef("--dst %s is a bucket: give the recorder's --statedir", f.dst)
	}
	return filepath.Join(f.dst, ".reel"), nil
}

func runUser(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand: add, passwd, rm or ls")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(env.stdout, strings.TrimSpace(userUsage))
		return flag.ErrHelp
	case "add", "passwd", "rm", "ls":
	default:
		return usagef("unknown subcommand %q: want add, passwd, rm or ls", args[0])
	}
	sub := args[0]
	usagef := func(format string, args ...any) error {
		return subUsageError{usageError{fmt.Sprintf(format, args...)}, "user " + sub}
	}
	fs := newFlagSet(env, "user "+sub, userUsage)
	sf := addStateFlags(fs, env)
	role := fs.String("role", string(auth.RoleViewer), "add: the account's role, viewer or admin")
	fromStdin := fs.Bool("password-stdin", false, "add, passwd: read the password from the first line of stdin instead of making a one-time password")
	asJSON := fs.Bool("json", false, "ls: one JSON object per account per line")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, subs := range map[string]string{"role": "add", "password-stdin": "add passwd", "json": "ls"} {
		if set[name] && !strings.Contains(subs, sub) {
			return usagef("--%s is not for %s", name, sub)
		}
	}
	switch {
	case sub == "ls" && len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case sub != "ls" && len(pos) != 1:
		return usagef("want one NAME, got %d arguments", len(pos))
	}
	dir, err := sf.dir()
	if err != nil {
		return err
	}
	warnOwner(env, dir)
	accts, err := auth.OpenAccounts(filepath.Join(dir, auth.DefaultAccountsFile))
	if err != nil {
		return err
	}
	if sub == "ls" {
		return userList(env, accts, *asJSON)
	}
	name := pos[0]
	if sub == "add" && !auth.ValidRole(auth.Role(*role)) {
		return usagef("--role %q: want viewer or admin", *role)
	}
	if sub != "rm" && !auth.ValidName(name) {
		return usagef("bad user name %q: want 1 to 64 letters, digits, '.', '_', '+', '@' or '-'", name)
	}
	var pw string
	oneTime := !*fromStdin
	if sub != "rm" {
		if pw, err = readPassword(env, *fromStdin); err != nil {
			return usagef("%v", err)
		}
	}
	log, err := audit.Open(filepath.Join(dir, "audit"))
	if err != nil {
		return err
	}
	defer log.Close()
	entry := audit.Entry{User: osUser(env), Auth: "cli", From: "cli", Target: name, Result: audit.ResultOK}
	switch sub {
	case "add":
		err = accts.Add(ctx, name, auth.Role(*role), pw, oneTime)
		entry.Action, entry.Args = audit.ActionUserAdd, map[string]string{"role": *role}
	case "passwd":
		err = accts.SetPassword(ctx, name, pw, oneTime)
		entry.Action = audit.ActionUserPasswd
	case "rm":
		err = accts.Remove(name)
		entry.Action = audit.ActionUserRemove
	}
	if err != nil {
		if errors.Is(err, auth.ErrWeakPassword) {
			return usagef("%v", err)
		}
		return err
	}
	if oneTime && entry.Action != audit.ActionUserRemove {
		entry.Args = mergeArgs(entry.Args, "one_time_password", "true")
	}
	if err := log.Append(entry); err != nil {
		return fmt.Errorf("the change is made, but the audit log failed: %w", err)
	}
	switch {
	case sub == "rm":
		fmt.Fprintf(env.stdout, "removed account %s; its sessions have ended\n", name)
	case oneTime:
		verb := "created " + *role + " account"
		if sub == "passwd" {
			verb = "new password for"
		}
		fmt.Fprintf(env.stdout, "%s %s\none-time password: %s\n%s must choose their own password at the next login; it is shown only now.\n", verb, name, pw, name)
	case sub == "add":
		fmt.Fprintf(env.stdout, "created %s account %s\n", *role, name)
	default:
		fmt.Fprintf(env.stdout, "new password for %s; its sessions have ended\n", name)
	}
	return nil
}

func mergeArgs(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// readPassword reads the first line of stdin, or makes a one-time
// password.
func readPassword(env *cmdEnv, fromStdin bool) (string, error) {
	if !fromStdin {
		return auth.NewOneTimePassword(), nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(env.stdin, 4096), 4096).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--password-stdin: stdin holds no password")
	}
	return line, nil
}

// warnOwner warns when the state directory belongs to another user than
// this command's: the files it writes (mode 0600) would be unreadable to
// the recorder.
func warnOwner(env *cmdEnv, dir string) {
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		fmt.Fprintf(env.stderr, "reel user: warning: %s belongs to uid %d, not to you (uid %d): run this as the user reel serve runs as, or it cannot read the accounts\n", dir, st.Uid, os.Geteuid())
	}
}

// osUser names who runs the command, for the audit log.
func osUser(env *cmdEnv) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := env.getenv("USER"); u != "" {
		return u
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

func userList(env *cmdEnv, accts *auth.Accounts, asJSON bool) error {
	list, err := accts.List()
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		for _, a := range list {
			enc.Encode(struct {
				Name       string    `json:"name"`
				Role       auth.Role `json:"role"`
				MustChange bool      `json:"mustChange"`
				Created    time.Time `json:"created"`
				Changed    time.Time `json:"changed"`
			}{a.Name, a.Role, a.MustChange, a.Created, a.Changed})
		}
		return nil
	}
	if len(list) == 0 {
		fmt.Fprintln(env.stderr, "no accounts (reel serve --ui makes \"admin\" at its first start)")
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tPASSWORD\tCREATED")
	for _, a := range list {
		pw := "set " + a.Changed.UTC().Format(time.DateOnly)
		if a.MustChange {
			pw = "one-time, to be changed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Role, pw, a.Created.UTC().Format(time.DateOnly))
	}
	return tw.Flush()
}
