package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/evidence"
	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "hold", summary: "put recordings on legal hold (kept past retention) or release them", run: holdCmd{now: time.Now}.run, subs: []string{"add", "rm", "ls"}})
}

const holdUsage = `
Usage: reel hold add [flags] KEY... | --query QUERY
       reel hold rm  [flags] KEY... | --query QUERY
       reel hold ls  [flags]

A recording on legal hold is kept past its retention (docs/retention.md)
until the hold is released: retention skips it, and reel deletes it by no
other means. The hold is a file in the store (.evidence/holds/<key>), so
it works while "reel serve" runs. On an S3 bucket with object lock
enabled, the recording's objects also get the bucket's legal hold, so
that the bucket itself refuses to delete them, whatever the credentials;
recordings that have not reached the bucket yet get it at the recorder's
next retention run.

Every hold and release goes to the audit trail
(<statedir>/evidence/audit.jsonl), with --by (default: your user name)
and --reason.

QUERY selects recordings as "reel ls" does, in words separated by spaces:
node=NODE user=USER since=TIME until=TIME status=STATUS.

Examples:
    reel hold add --reason "case 2026-17" 100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel hold add --reason "case 2026-17" --query "user=alice since=2026-11-01 until=2026-11-08"
    reel hold ls
    reel hold rm --reason "case closed" --query "user=alice"
`

type holdCmd struct{ now func() time.Time }

func (c holdCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		return usagef("want \"reel hold add\", \"reel hold rm\" or \"reel hold ls\"")
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprintln(env.stdout, strings.TrimSpace(holdUsage))
		return nil
	case "add", "rm", "ls":
	default:
		return usagef("unknown subcommand %q: want add, rm or ls", sub)
	}
	fs := newFlagSet(env, "hold "+sub, holdUsage)
	sf := addStoreFlags(fs, env)
	ef := addEvidenceFlags(fs, env)
	query := fs.String("query", "", "select recordings: node=NODE user=USER since=TIME until=TIME status=STATUS")
	reason := fs.String("reason", "", "why (for the audit trail and reel hold ls)")
	by := fs.String("by", cliUser(), "who holds or releases (for the audit trail)")
	asJSON := fs.Bool("json", false, "ls: one JSON object per hold")
	keys, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if sub == "ls" && (len(keys) > 0 || *query != "") {
		return usagef("reel hold ls takes no recordings")
	}
	if sub != "ls" && (len(keys) > 0) == (*query != "") {
		return usagef("name recordings (KEY...) or --query")
	}
	for _, k := range keys {
		if _, _, err := store.ParseKey(k); err != nil {
			return usagef("%q is not a recording key (<node>/<time>.cast, as reel ls shows it)", k)
		}
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	files, ok := st.(store.Files)
	if !ok {
		return fmt.Errorf("the store %T keeps no files", st)
	}
	h := &evidence.Holds{Files: files}
	if dir := ef.evidenceDir(sf.dst); dir != "" && sub != "ls" {
		al, err := audit.Open(evidence.AuditDir(filepath.Dir(dir)))
		if err != nil {
			return err
		}
		defer al.Close()
		h.Audit = evidence.AuditLog{Log: al}
	} else if sub != "ls" {
		fmt.Fprintln(env.stderr, "reel hold: not written to the audit trail: give --statedir (the recorder's) to keep it there")
	}
	if sub == "ls" {
		holds, err := h.List(ctx)
		printHolds(env.stdout, holds, *asJSON)
		return err
	}
	if *query != "" {
		if keys, err = c.selectKeys(ctx, st, h, *query, sub == "rm"); err != nil {
			return err
		}
		if len(keys) == 0 {
			fmt.Fprintln(env.stderr, "reel hold: no recording matches")
			return nil
		}
	}
	var errs []error
	for _, key := range keys {
		switch sub {
		case "add":
			if _, err := st.Stat(ctx, key); err != nil {
				errs = append(errs, err)
				continue
			}
			hd, err := h.Add(ctx, key, *by, *reason)
			if err != nil {
				errs = append(errs, fmt.Errorf("hold %s: %w", key, err))
				continue
			}
			how := "held by reel"
			if hd.Locked {
				how = "held by reel and by the bucket's object lock"
			}
			fmt.Fprintf(env.stdout, "%s: %s\n", key, how)
		case "rm":
			if err := h.Remove(ctx, key, *by, *reason); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					err = fmt.Errorf("%s is not held", key)
				}
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(env.stdout, "%s: released\n", key)
		}
	}
	return errors.Join(errs...)
}

// selectKeys returns the recordings query selects; held only those held.
func (c holdCmd) selectKeys(ctx context.Context, st store.Store, h *evidence.Holds, query string, held bool) ([]string, error) {
	var f store.Filter
	var user, status string
	for _, w := range strings.Fields(query) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || v == "" {
			return nil, usagef("--query: %q: want FIELD=VALUE", w)
		}
		var err error
		switch k {
		case "node":
			f.Node = v
		case "user":
			user = v
		case "status":
			status = v
		case "since":
			f.Since, err = parseWhen(v, c.now(), time.Local)
		case "until":
			f.Until, err = parseWhen(v, c.now(), time.Local)
		default:
			return nil, usagef("--query: unknown field %q: want node, user, since, until or status", k)
		}
		if err != nil {
			return nil, usagef("--query %s: %v", k, err)
		}
	}
	var keys []string
	for info, err := range st.List(ctx, f) {
		if err != nil {
			return keys, err
		}
		if status != "" && string(info.Status) != status {
			continue
		}
		if user != "" {
			rd, err := st.Open(ctx, info.Key)
			if err != nil {
				continue
			}
			hdr, herr := asciicast.NewDecoder(io.LimitReader(rd, 1<<20)).Header()
			rd.Close()
			if herr != nil || !review.MatchUser(&hdr, user) {
				continue
			}
		}
		if held {
			if ok, err := h.Held(ctx, info.Key); err != nil || !ok {
				continue
			}
		}
		keys = append(keys, info.Key)
	}
	return keys, nil
}

func printHolds(w io.Writer, holds []evidence.Hold, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, hd := range holds {
			enc.Encode(hd)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSINCE\tBY\tBUCKET LOCK\tREASON")
	for _, hd := range holds {
		lock := "-"
		if hd.Locked {
			lock = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", hd.Key, hd.Time.Local().Format("2006-01-02 15:04"), hd.By, lock, hd.Reason)
	}
	tw.Flush()
}
