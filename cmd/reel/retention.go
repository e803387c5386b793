package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/evidence"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "retention", summary: "apply the policy's retention rules: delete recordings past their time", run: retentionCmd{now: time.Now}.run, subs: []string{"apply"}})
}

// serveEvidence is what reel serve does for evidence: seal recordings
// (evidence.Store around the store) and apply retention on a schedule.
type serveEvidence struct {
	noSeal         bool
	sealKey        string
	retentionEvery time.Duration

	ev      *evidence.Store
	backend evidence.Backend
	dir     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (e *serveEvidence) addFlags(fs *flag.FlagSet, env *cmdEnv) {
	fs.BoolVar(&e.noSeal, "no-seal", false, "do not seal recordings (no hash chains, seals or manifest entries; docs/evidence.md): only to measure what sealing costs")
	fs.StringVar(&e.sealKey, "seal-key", envOr(env, "", "REEL_SEAL_KEY"), "sign seals with the ed25519 key in `FILE` (PEM) instead of the one made in <statedir>/evidence (env REEL_SEAL_KEY)")
	fs.DurationVar(&e.retentionEvery, "retention-every", time.Hour, "with --policy, how often retention runs")
}

// open wraps st in the evidence store unless sealing is off, and returns
// the store the recorder uses and how to close it.
func (e *serveEvidence) open(st store.Store, dst, stateDir string, log *slog.Logger) (store.Store, func() error, error) {
	if e.noSeal {
		log.Warn("sealing is off (--no-seal): recordings are stored without hash chains, seals or manifest entries")
		return st, st.Close, nil
	}
	b, ok := st.(evidence.Backend)
	if !ok {
		return nil, nil, fmt.Errorf("the store %T keeps no files beside recordings: it cannot seal them", st)
	}
	if stateDir == "" {
		return nil, nil, errors.New("sealing needs --statedir (the recorder's key and evidence state live there)")
	}
	e.dir = filepath.Join(stateDir, "evidence")
	var sg evidence.Signer
	if e.sealKey != "" {
		k, err := evidence.LoadKeyFile(e.sealKey)
		if err != nil {
			return nil, nil, err
		}
		sg = k
	}
	ev, err := evidence.Open(b, evidence.Options{Dir: e.dir, Signer: sg, Log: log})
	if err != nil {
		return nil, nil, err
	}
	keyFile := e.sealKey
	if keyFile == "" {
		keyFile = evidence.KeyPath(e.dir)
	}
	if !isS3(dst) && keyInside(keyFile, dst) {
		log.Warn("the signing key is inside the recordings directory: a copy of the recordings carries it, and whoever has it can seal altered recordings; use a --statedir outside --dst, or --seal-key", "key", keyFile, "dst", dst)
	}
	log.Info("sealing recordings", "key_id", ev.Signer().KeyID(), "evidence_dir", e.dir)
	e.ev, e.backend = ev, b
	return ev, ev.Close, nil
}

// startRetention applies the retention rules of the policy in h (reel
// serve's --policy, kept current by its holder) every retentionEvery,
// from now on, until stop. Deletions go to the audit log in stateDir, and
// leave the index (idx, if not nil).
func (e *serveEvidence) startRetention(h *policy.Holder, stateDir string, idx evidence.Forgetter, log *slog.Logger) {
	if h == nil || e.retentionEvery <= 0 {
		return
	}
	if e.ev == nil {
		log.Warn("--policy: retention is not applied while sealing is off (every deletion goes to the manifest)")
		return
	}
	al, err := audit.Open(evidence.AuditDir(stateDir))
	if err != nil {
		log.Error("--policy: retention is not applied: no audit log", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Go(func() {
		defer al.Close()
		t := time.NewTicker(e.retentionEvery)
		defer t.Stop()
		for {
			r := &evidence.Retention{Store: e.backend, Sealer: e.ev, Policy: h.Get(), By: "reel serve", Log: log, Audit: evidence.AuditLog{Log: al}, Index: idx}
			ds, err := r.Apply(ctx, false)
			if err != nil && ctx.Err() == nil {
				log.Error("retention", "err", err)
			}
			if n := countDecisions(ds, evidence.ActionDelete); n > 0 {
				log.Info("retention deleted recordings past their time", "deleted", n, "held", countDecisions(ds, evidence.ActionHeld))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

func countDecisions(ds []evidence.Decision, action string) int {
	n := 0
	for _, d := range ds {
		if d.Action == action {
			n++
		}
	}
	return n
}

// stop ends retention and writes the manifest's pending entries, before
// the store's uploads are drained.
func (e *serveEvidence) stop(timeout time.Duration, log *slog.Logger) {
	if e.cancel != nil {
		e.cancel()
		e.wg.Wait()
	}
	if e.ev == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := e.ev.Flush(ctx); err != nil {
		log.Warn("writing the evidence manifest at exit", "err", err)
	}
}

const retentionUsage = `
Usage: reel retention apply [flags]

Applies the retention rules of --policy (docs/retention.md) to the
recordings in --dst: a recording whose time has come is deleted, with its
seal and chain, unless it is held (reel hold). "reel serve --policy FILE"
does the same every --retention-every; run this by hand when it is not
running (it takes the store's and the evidence state's locks), or with
--dry-run at any time to see what would go.

Every deletion is first written to the recorder's manifest (so that
reel verify reports it as a deletion by policy, not as tampering) and then
to the audit trail (<statedir>/evidence/audit.jsonl). A live recording is
never deleted; on an S3 bucket with object lock, the bucket refuses to
delete what it holds, and the deletion is reported as failed.

It prints one line per recording past its time:

    ACTION  KEY  STATUS  STARTED  DUE  RULE

ACTION is delete (or, with --dry-run, would be deleted), held (kept by a
legal hold) or failed (it stays; the next run tries again).

Examples:
    reel retention apply --policy /etc/reel/policy.hujson --dry-run
    reel retention apply --policy /etc/reel/policy.hujson --dst /var/lib/reel
`

// retentionCmd is "reel retention"; now is its clock.
type retentionCmd struct{ now func() time.Time }

func (c retentionCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "apply" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(env.stdout, strings.TrimSpace(retentionUsage))
			return nil
		}
		return usagef("want \"reel retention apply\"")
	}
	fs := newFlagSet(env, "retention apply", retentionUsage)
	dst := fs.String("dst", envOr(env, "./recordings", "TSRECORDER_DST"), "where the recordings are: a directory, or s3://endpoint/bucket (env TSRECORDER_DST)")
	s3 := addS3Flags(fs, env)
	ef := addEvidenceFlags(fs, env)
	pol := fs.String("policy", envOr(env, "", "REEL_POLICY"), "the policy file with the retention rules (env REEL_POLICY)")
	dry := fs.Bool("dry-run", false, "only say what would be deleted; change nothing")
	asJSON := fs.Bool("json", false, "print one JSON object per recording")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *pol == "" {
		return usagef("--policy FILE: the policy with the retention rules")
	}
	src, err := os.ReadFile(*pol)
	if err != nil {
		return err
	}
	p, err := policy.Parse(*pol, src)
	if err != nil {
		return err
	}
	r := &evidence.Retention{Policy: p, Now: c.now, By: cliUser()}
	if *dry {
		st, err := (&storeFlags{dst: *dst, s3: s3, env: env}).open(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		b, ok := st.(evidence.Backend)
		if !ok {
			return fmt.Errorf("the store %T keeps no files", st)
		}
		r.Store = b
	} else {
		dir := ef.evidenceDir(*dst)
		if dir == "" {
			return usagef("--statedir: deleting needs the recorder's evidence state (its manifest records every deletion)")
		}
		st, err := openStore(storeOptions{dst: *dst, minFree: -1, stateDir: filepath.Dir(dir), s3: s3, getenv: env.getenv})
		if err != nil {
			if errors.Is(err, store.ErrInUse) {
				return fmt.Errorf("%w: reel serve applies retention itself (--policy, every --retention-every); stop it to apply by hand, or use --dry-run", err)
			}
			return err
		}
		b, ok := st.(evidence.Backend)
		if !ok {
			st.Close()
			return fmt.Errorf("the store %T keeps no files", st)
		}
		var sg evidence.Signer
		if ef.sealKey != "" {
			if sg, err = evidence.LoadKeyFile(ef.sealKey); err != nil {
				st.Close()
				return err
			}
		}
		ev, err := evidence.Open(b, evidence.Options{Dir: dir, Signer: sg})
		if err != nil {
			st.Close()
			return err
		}
		defer func() {
			if cerr := ev.Close(); cerr != nil {
				fmt.Fprintf(env.stderr, "reel retention: %v\n", cerr)
			}
		}()
		if _, err := ev.Recover(ctx); err != nil {
			return err
		}
		r.Store, r.Sealer = b, ev
		al, err := audit.Open(evidence.AuditDir(filepath.Dir(dir)))
		if err != nil {
			return err
		}
		defer al.Close()
		r.Audit = evidence.AuditLog{Log: al}
		// What is deleted leaves the recorder's index too (its default
		// place; reel index rebuild settles any other).
		if ix, err := openIndexIfPresent(ctx, indexLocation(*dst, filepath.Dir(dir), "")); err != nil {
			fmt.Fprintf(env.stderr, "reel retention: the index is not updated (reel index rebuild does it): %v\n", err)
		} else if ix != nil {
			defer ix.Close()
			r.Index = ix
		}
		if fl, ok := st.(interface{ Flush(context.Context) error }); ok {
			defer fl.Flush(context.WithoutCancel(ctx))
		}
		defer ev.Flush(context.WithoutCancel(ctx))
	}
	r.Holds = &evidence.Holds{Files: r.Store, Audit: r.Audit}
	ds, err := r.Apply(ctx, *dry)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		for _, d := range ds {
			enc.Encode(d)
		}
	} else {
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		for _, d := range ds {
			action := d.Action
			if *dry && action == evidence.ActionDelete {
				action = "would delete"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", action, d.Key, d.Status, d.Start.Local().Format("2006-01-02 15:04"), d.Due.Local().Format("2006-01-02"), d.Rule)
		}
		tw.Flush()
		if len(ds) == 0 {
			fmt.Fprintln(env.stderr, "no recording is past its time")
		}
	}
	return err
}

// cliUser names the user running a command, for the audit trail.
func cliUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
