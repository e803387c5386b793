package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "ls", summary: "list recordings: who, when, how long, status", run: lsCmd{now: time.Now}.run})
}

const lsUsage = `
Usage: reel ls [flags]

Lists the recordings in --dst, one line each, by node and then start time:

    NODE  START  DURATION  USER  COMMAND  SIZE  STATUS

NODE is the sender (the SSH server or Kubernetes proxy that sent the
recording), START when the recorder began receiving it (local time),
DURATION the time of its last event. USER is the SSH user (with the local
account when it differs, "alice→root"), or the sender's tailnet user for
Kubernetes sessions; COMMAND the command run, or "exec namespace/pod
container" for Kubernetes. STATUS is one of:

    live         still being recorded
    complete     the sender ended the upload normally
    interrupted  the upload broke off (cut at the last complete line)
    malformed    the sender sent something that is not asciicast (kept as is)
    failed       storing failed (for example the disk filled up)

Only the first line (the header) and the end of each recording are read, so
listing is fast however long the recordings are. It opens the store read-only:
it works while "reel serve" runs.

--since and --until take a duration back from now (90m, 24h, 7d), a date
(2026-11-01, local midnight), a local time (2026-11-01T14:00) or RFC 3339
(2026-11-01T14:00:00Z). --user matches the SSH user, the local user or the
tailnet user (alice matches alice@example.com), ignoring case.

--json prints one JSON object per line instead: the store's fields (key,
node, start, size, status, reason), then duration (seconds, or null when
unknown), user, command and the whole header.

Examples:
    reel ls
    reel ls --since 24h --user alice
    reel ls --node 100.101.102.103 --status interrupted,failed
    reel ls --json --since 2026-11-01 --until 2026-11-02 | jq -r .key
`

// lsEntry is one line of "reel ls --json".
type lsEntry struct {
	store.Info
	// Duration is the last event's time in seconds; nil when unknown.
	Duration *float64 `json:"duration"`
	User     string   `json:"user"`
	Command  string   `json:"command"`
	// Header is the recording's header line; nil when it cannot be read,
	// and then HeaderError says why.
	Header      *asciicast.Header `json:"header,omitempty"`
	HeaderError string            `json:"headerError,omitempty"`
}

var knownStatuses = []store.Status{store.StatusLive, store.StatusComplete, store.StatusInterrupted, store.StatusMalformed, store.StatusFailed}

// lsCmd is "reel ls"; now is its clock, for --since 24h.
type lsCmd struct{ now func() time.Time }

func (c lsCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "ls", lsUsage)
	sf := addStoreFlags(fs, env)
	node := fs.String("node", "", "only recordings sent by this node")
	user := fs.String("user", "", "only recordings of this user (SSH, local or tailnet user)")
	since := fs.String("since", "", "only recordings started at or after this time (24h, 2026-11-01, ...)")
	until := fs.String("until", "", "only recordings started before this time")
	status := fs.String("status", "", "only recordings with these statuses, comma-separated (live, complete, interrupted, malformed, failed)")
	asJSON := fs.Bool("json", false, "print one JSON object per recording per line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	loc := envLocation(env)
	now := c.now()
	var f store.Filter
	f.Node = *node
	var err error
	if f.Since, err = parseWhen(*since, now, loc); err != nil {
		return usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(*until, now, loc); err != nil {
		return usagef("--until: %v", err)
	}
	var statuses []store.Status
	for s := range strings.SplitSeq(*status, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(knownStatuses, store.Status(s)) {
			return usagef("--status: unknown status %q (want live, complete, interrupted, malformed or failed)", s)
		}
		statuses = append(statuses, store.Status(s))
	}

	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()

	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tSTART\tDURATION\tUSER\tCOMMAND\tSIZE\tSTATUS")
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	shown, total := 0, 0
	var errs []error
	for info, err := range st.List(ctx, f) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		total++
		if len(statuses) > 0 && !slices.Contains(statuses, info.Status) {
			continue
		}
		e := describe(ctx, st, info)
		if *user != "" && !matchUser(e.Header, *user) {
			continue
		}
		shown++
		if *asJSON {
			if err := enc.Encode(e); err != nil {
				return err
			}
			continue
		}
		dur := "-"
		if e.Duration != nil {
			dur = formatDuration(*e.Duration)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			sanitize(info.Node, 40), info.Start.In(loc).Format("2006-01-02 15:04:05"), dur,
			orDash(sanitize(e.User, 32)), orDash(sanitize(e.Command, 48)), formatSize(info.Size), info.Status)
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
	case total == 0 && f == (store.Filter{}):
		fmt.Fprintf(env.stderr, "reel ls: no recordings in %s yet\n", sf.dst)
	default:
		fmt.Fprintf(env.stderr, "reel ls: no recordings match (%d in %s)\n", total, sf.dst)
	}
	if len(errs) > 0 {
		return errSilent
	}
	return nil
}

// describe reads what ls shows about one recording from its two ends.
func describe(ctx context.Context, st store.Store, info store.Info) lsEntry {
	e := lsEntry{Info: info}
	rd, err := st.Open(ctx, info.Key)
	if err != nil {
		e.HeaderError = err.Error()
		return e
	}
	defer rd.Close()
	if store.KindOf(info.Key) == store.KindDesktop {
		return describeDesktop(e, rd)
	}
	s := summarize(rd, rd.Size())
	if s.headerErr != nil {
		e.HeaderError = s.headerErr.Error()
	}
	e.Header = s.header
	if s.hasDur {
		e.Duration = &s.duration
	}
	e.User = headerUser(s.header)
	e.Command = headerCommand(s.header)
	return e
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
