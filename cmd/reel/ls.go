package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "ls", summary: "list recordings: who, when, how long, status", run: lsCmd{now: time.Now}.run})
}

const lsUsage = `
Usage: reel ls [flags]

Lists the recordings in --dst, one line each, by node and then start time:

    KEY  START  DURATION  USER  COMMAND  SIZE  STATUS

KEY names the recording for reel play and reel cat: "<node>/<time>.cast",
where the node is the sender (the SSH server, Kubernetes proxy or reel vnc
that sent the recording); a desktop recording's key ends in ".desk" (see
reel export). START is when the recorder began receiving it (local time),
DURATION the time of its last event ("-" when it has none yet, "?" when the
end of the recording holds no event line near enough to find: a very long
last line, or many blank lines). USER is the SSH user (with the local
account when it differs, "alice→root"), or the sender's tailnet user for
Kubernetes sessions, or the user reel vnc authenticated; COMMAND the
command run, "exec namespace/pod container" for Kubernetes, or "desktop
HOST" for a desktop. STATUS is one of:

    live         still being recorded
    complete     the sender ended the upload normally
    interrupted  the upload broke off (cut at the last complete line)
    malformed    the sender sent something that is not asciicast (kept as is)
    failed       storing failed (for example the disk filled up)

Only the first line (the header) and the last 1 MiB at most of each
recording are read, so listing is fast however long or odd the recordings
are. It opens the store read-only: it works while "reel serve" runs. --dst
may also name one node's directory (recordings/<node>): that node is
listed.

When the index that "reel serve" keeps is there (see "reel index"), ls
lists from it instead, by start time, and is fast however many recordings
there are; recordings still live, and the few started in the last two
minutes, are checked against the store. --index off lists from the store.

--since and --until take a duration back from now (90m, 24h, 7d), a date
(2026-11-01, local midnight), a local time (2026-11-01T14:00) or RFC 3339
(2026-11-01T14:00:00Z). --user matches the SSH user, the local user or the
tailnet user (alice matches alice@example.com), ignoring case.

--keys prints only the keys, one per line. --json prints one JSON object
per line instead: the store's fields (key, node, sender, start, size,
status, reason), then kind ("terminal" or "desktop"), duration (seconds,
or null when unknown), user, command, the whole header (for a desktop
recording, desktop instead), and headerError or durationError when the
header or the duration could not be read.

Examples:
    reel ls
    reel ls --since 24h --user alice
    reel ls --node 100.101.102.103 --status interrupted,failed
    reel ls --json --since 2026-11-01 --until 2026-11-02 | jq -r .command
    reel play "$(reel ls --keys | tail -n 1)"
`

// lsCmd is "reel ls"; now is its clock, for --since 24h.
type lsCmd struct{ now func() time.Time }

func (c lsCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "ls", lsUsage)
	sf := addStoreFlags(fs, env)
	xf := addIndexFlags(fs, env, true)
	node := fs.String("node", "", "only recordings sent by this node")
	user := fs.String("user", "", "only recordings of this user (SSH, local or tailnet user)")
	since := fs.String("since", "", "only recordings started at or after this time (24h, 2026-11-01, ...)")
	until := fs.String("until", "", "only recordings started before this time")
	status := fs.String("status", "", "only recordings with these statuses, comma-separated (live, complete, interrupted, malformed, failed)")
	asJSON := fs.Bool("json", false, "print one JSON object per recording per line")
	keysOnly := fs.Bool("keys", false, "print only the keys, one per line (for reel play and reel cat)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *asJSON && *keysOnly {
		return usagef("--json and --keys do not go together")
	}
	loc := envLocation(env)
	now := c.now()
	var f review.Filter
	f.Node, f.User = *node, *user
	var err error
	if f.Since, err = parseWhen(*since, now, loc); err != nil {
		return usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(*until, now, loc); err != nil {
		return usagef("--until: %v", err)
	}
	for s := range strings.SplitSeq(*status, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(review.Statuses, store.Status(s)) {
			return usagef("--status: unknown status %q (want live, complete, interrupted, malformed or failed)", s)
		}
		f.Statuses = append(f.Statuses, store.Status(s))
	}

	// --dst naming one node's directory (recordings/<node>): list that
	// node from the store around it.
	if parent, nodeName, ok := nodeDir(sf.dst); ok {
		if f.Node != "" && f.Node != nodeName {
			return usagef("--dst %s is node %s's directory, but --node is %s", sf.dst, nodeName, f.Node)
		}
		fmt.Fprintf(env.stderr, "reel ls: %s is the directory of node %s; listing it from the store %s\n", sf.dst, nodeName, parent)
		sf.dst, f.Node = parent, nodeName
	}

	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	var tw *tabwriter.Writer
	if !*asJSON && !*keysOnly {
		tw = tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tSTART\tDURATION\tUSER\tCOMMAND\tSIZE\tSTATUS")
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	l := &review.Lister{Store: st}
	list, listed := l.List(ctx, f), func() int { return l.Listed }
	// With the index reel serve keeps, list from it (index.go).
	if ix, err := openIndexIfPresent(ctx, indexLocation(sf.dst, xf.stateDir, xf.url)); err != nil {
		fmt.Fprintf(env.stderr, "reel ls: cannot read the index, listing the store instead: %v\n", err)
	} else if ix != nil {
		defer ix.Close()
		il := &indexLister{st: st, ix: ix, full: *asJSON, fsStore: !isS3(sf.dst), now: now}
		list, listed = il.list(ctx, f), func() int { return il.listed + il.recent }
	}
	shown := 0
	var errs []error
	for s, err := range list {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		shown++
		switch {
		case *asJSON:
			if err := enc.Encode(s); err != nil {
				return err
			}
		case *keysOnly:
			fmt.Fprintln(env.stdout, s.Key)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				review.Sanitize(s.Key, 200), s.Start.In(loc).Format("2006-01-02 15:04:05"), lsDuration(s),
				orDash(review.Sanitize(s.User, 32)), orDash(review.Sanitize(s.Command, 48)), formatSize(s.Size), s.Status)
			if shown%100 == 0 { // show progress on a large store
				if err := tw.Flush(); err != nil {
					return err
				}
			}
		}
	}
	if tw != nil && shown > 0 {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, err := range errs {
		fmt.Fprintf(env.stderr, "reel ls: %v\n", err)
	}
	switch {
	case shown > 0:
	case listed() == 0 && f.Node == "" && f.Since.IsZero() && f.Until.IsZero():
		fmt.Fprintf(env.stderr, "reel ls: no recordings in %s yet\n", sf.dst)
	default:
		fmt.Fprintf(env.stderr, "reel ls: no recordings match (%d in %s)\n", listed(), sf.dst)
	}
	if len(errs) > 0 {
		return errSilent
	}
	return nil
}

// lsDuration is the DURATION column: the duration, "-" when there are no
// events, "?" when it could not be found.
func lsDuration(s review.Summary) string {
	switch {
	case s.Duration != nil:
		return formatDuration(*s.Duration)
	case errors.Is(s.DurationErr, review.ErrTailLimit):
		return "?"
	}
	return "-"
}

// nodeDir reports whether dir is one node's directory inside a store
// directory (it holds recordings, <time>.cast or .desk, itself), and returns the
// store's directory and the node.
func nodeDir(dir string) (parent, node string, ok bool) {
	if strings.Contains(dir, "://") {
		return "", "", false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", false
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", "", false
	}
	node = filepath.Base(abs)
	for _, e := range entries {
		if e.Type().IsRegular() && store.IsRecordingName(e.Name()) {
			if _, _, err := store.ParseKey(node + "/" + e.Name()); err == nil {
				return filepath.Dir(filepath.Clean(dir)), node, true
			}
		}
	}
	return "", "", false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// envLocation is the time zone times are shown in: $TZ as the command's
// environment has it (so tests control it), else the process's local zone.
func envLocation(env *cmdEnv) *time.Location {
	if tz := env.getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return loc
		}
	}
	return time.Local
}

// parseWhen reads a --since/--until value: "" (no limit), a duration back
// from now ("90m", "24h", "7d"), a date, a local date and time, or RFC 3339.
func parseWhen(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration back from now must not be negative")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 7d) nor a time (2026-11-01, 2026-11-01T14:00, RFC 3339)", s)
}
