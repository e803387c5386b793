package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/audit"
)

func init() {
	register(&command{name: "audit", summary: "show the audit log: who viewed, searched, downloaded, logged in", run: runAudit})
}

const auditUsage = `
Usage: reel audit [--since TIME] [--until TIME] [--user USER] [--action ACTION] [--result RESULT] [--json]
       reel audit --verify

Prints the audit log of the recorder whose state directory is --statedir
(default <dst>/.reel), oldest first: every list, search, view, live view
and download in the web UI, every login, failed login and logout, and
every change to the UI's accounts — who, from where, what, and whether it
was allowed. It reads the log while "reel serve" writes it.

The log is JSON lines under <statedir>/audit, one file per month, only
ever appended to, each line holding the SHA-256 of the line before it.
--verify reads it all and reports any line that was changed, inserted or
removed, or damaged by a crash; it exits 1 if it finds any.

--since and --until take a duration back from now (90m, 24h, 7d), a date
(2026-11-01, local midnight), a local time (2026-11-01T14:00) or RFC 3339.
--user matches ignoring case. --action is one of list, search, view,
play, live, download, events, login, logout, password, user-add,
user-passwd, user-rm, audit. --result is ok, denied or failed. --json prints the
entries as they are stored, one per line.

Examples:
    reel audit --since 24h
    reel audit --action login --result failed
    reel audit --user alice --json | jq -r .target
    reel audit --verify
`

var auditActions = []string{
	audit.ActionList, audit.ActionSearch, audit.ActionView, audit.ActionPlay, audit.ActionLive, audit.ActionDownload, audit.ActionEvents,
	audit.ActionLogin, audit.ActionLogout, audit.ActionPassword, audit.ActionUserAdd, audit.ActionUserPasswd,
	audit.ActionUserRemove, audit.ActionAudit, audit.ActionRetentionDelete, audit.ActionHoldAdd, audit.ActionHoldRemove,
}

// auditCmd is "reel audit"; now is its clock, for --since 24h.
type auditCmd struct{ now func() time.Time }

func runAudit(ctx context.Context, env *cmdEnv, args []string) error {
	return auditCmd{now: time.Now}.run(ctx, env, args)
}

func (c auditCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "audit", auditUsage)
	sf := addStateFlags(fs, env)
	since := fs.String("since", "", "only entries at or after this time (24h, 2026-11-01, ...)")
	until := fs.String("until", "", "only entries before this time")
	who := fs.String("user", "", "only entries of this user")
	action := fs.String("action", "", "only entries of this `ACTION` (view, download, login, ...)")
	result := fs.String("result", "", "only entries with this result: ok, denied or failed")
	asJSON := fs.Bool("json", false, "print the entries as stored, one JSON object per line")
	verify := fs.Bool("verify", false, "check the whole log's hash chain instead of printing it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	dir, err := sf.dir()
	if err != nil {
		return err
	}
	dir = filepath.Join(dir, "audit")
	if _, err := os.Stat(dir); errors.Is(err, iofs.ErrNotExist) {
		if *verify {
			return fmt.Errorf("no audit log in %s", dir)
		}
		fmt.Fprintf(env.stderr, "reel audit: no audit log in %s yet\n", dir)
		return nil
	}
	if *verify {
		if *since != "" || *until != "" || *who != "" || *action != "" || *result != "" || *asJSON {
			return usagef("--verify checks the whole log: it takes no filters")
		}
		return auditVerify(ctx, env, dir)
	}
	loc := envLocation(env)
	now := c.now()
	var q audit.Query
	if q.Since, err = parseWhen(*since, now, loc); err != nil {
		return usagef("--since: %v", err)
	}
	if q.Until, err = parseWhen(*until, now, loc); err != nil {
		return usagef("--until: %v", err)
	}
	if *action != "" && !slices.Contains(auditActions, *action) {
		return usagef("--action: unknown action %q (want %s)", *action, strings.Join(auditActions, ", "))
	}
	switch *result {
	case "", audit.ResultOK, audit.ResultDenied, audit.ResultFailed:
	default:
		return usagef("--result: %q: want ok, denied or failed", *result)
	}
	q.User, q.Action, q.Result = *who, *action, *result

	damaged := 0
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	for e, err := range audit.Read(ctx, dir, q) {
		var le *audit.LineError
		switch {
		case errors.As(err, &le):
			fmt.Fprintf(env.stderr, "reel audit: %v\n", err)
			damaged++
			continue
		case err != nil:
			return err
		}
		if *asJSON {
			enc.Encode(e)
			continue
		}
		fmt.Fprintln(env.stdout, formatEntry(e, loc))
	}
	if damaged > 0 {
		fmt.Fprintf(env.stderr, "reel audit: %d damaged lines; run reel audit --verify\n", damaged)
		return errSilent
	}
	return nil
}

// formatEntry prints an entry on one line:
//
//	2026-11-02 14:03:11  alice (account) from 10.0.0.5  view web1/2026-11-02T13:58:00.123Z.cast  ok
func formatEntry(e audit.Entry, loc *time.Location) string {
	var b strings.Builder
	b.WriteString(e.Time.In(loc).Format(time.DateTime))
	b.WriteString("  ")
	b.WriteString(quoteIfOdd(e.User))
	if e.Auth != "" {
		b.WriteString(" (" + e.Auth + ")")
	}
	if e.From != "" && e.From != "cli" {
		b.WriteString(" from " + e.From)
	}
	b.WriteString("  " + e.Action)
	if e.Target != "" {
		b.WriteString(" " + quoteIfOdd(e.Target))
	}
	if len(e.Args) > 0 {
		keys := make([]string, 0, len(e.Args))
		for k := range e.Args {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString(" " + quoteIfOdd(k) + "=" + quoteIfOdd(e.Args[k]))
		}
	}
	b.WriteString("  " + e.Result)
	if e.Reason != "" {
		b.WriteString(": " + quoteIfOdd(e.Reason))
	}
	return b.String()
}

// quoteIfOdd quotes s when it is empty or holds spaces, quotes or
// characters that are not printable, so that a value from a request (a
// search text, a name tried at login) cannot fake a line or a field.
func quoteIfOdd(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '\\' || r == '=' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

func auditVerify(ctx context.Context, env *cmdEnv, dir string) error {
	n, problems, err := audit.Verify(ctx, dir)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(env.stdout, "%s:%d: %s\n", filepath.Join(dir, p.File), p.Line, p.Msg)
	}
	if len(problems) > 0 {
		fmt.Fprintf(env.stdout, "%d entries, %d problems\n", n, len(problems))
		return errSilent
	}
	fmt.Fprintf(env.stdout, "%d entries, chain intact\n", n)
	return nil
}
