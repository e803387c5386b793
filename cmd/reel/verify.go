package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/evidence"
	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "verify", summary: "check that recordings are exactly as recorded, and that none is missing", run: verifyCmd{now: time.Now}.run})
}

const verifyUsage = `
Usage: reel verify [flags] KEY... | --all

Checks recordings against their seals and the recorder's signed manifest
(docs/evidence.md), offline: on the store itself, on a copy of its files or
bucket, or on a bundle from "reel export --bundle", on any machine, with
only the recorder's public key ("reel key show" prints it). It reads the
store read-only, so it can run while "reel serve" does.

For each problem it prints one line, "KEY: KIND: what", KIND one of:

    altered          bytes differ from the sealed ones (from which offset)
    truncated        bytes cut from the end (how many)
    appended         bytes added after the sealed end
    missing          the manifest lists a recording the store lacks
    seal-absent      a recording that ended has no seal
    seal-malformed   its seal file is not a seal
    unknown-key      sealed by a key that is not trusted (--pubkey)
    bad-signature    a seal or checkpoint whose signature is wrong (forged)
    seals-swapped    the seal beside a recording is another one's
    reordered        a recording holds another's bytes; manifest lines moved
    status-changed   the store's status differs from the sealed one
    not-in-manifest  a seal the manifest does not list
    manifest         manifest segments missing, altered, or rolled back

Interrupted and malformed recordings verify as what they are (an
interrupted one: the bytes acknowledged before the crash, all intact);
recordings deleted by retention are reported as such, not as missing; a
live one is not sealed yet. With -v those notes are printed too. The exit
status is 1 when anything is wrong.

Trusted keys come from --pubkey (PEM files, as reel key show writes; give
one per recorder that shares the store). Without --pubkey, the recorder's
own key in <statedir>/evidence is used, when there is one. --anchor FILE
names a copy of a manifest's head file (.evidence/manifest/<keyid>/head)
kept elsewhere: a store rolled back to before it is found. On the
recorder's machine its own state serves as an anchor too.

A progress bar goes to stderr when it is a terminal.

Examples:
    reel verify --all --pubkey recorder-key.pem
    reel verify --dst /mnt/copy --all --pubkey recorder-key.pem --since 2026-11-01
    reel verify --dst s3://s3.example.com/recordings --all --pubkey a.pem --pubkey b.pem
    reel verify 100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
`

type verifyCmd struct{ now func() time.Time }

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (c verifyCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "verify", verifyUsage)
	sf := addStoreFlags(fs, env)
	ef := addEvidenceFlags(fs, env)
	var pubkeys, anchors multiFlag
	fs.Var(&pubkeys, "pubkey", "trust the public keys in this PEM `FILE` (repeat for several)")
	fs.Var(&anchors, "anchor", "a checkpoint `FILE` kept outside the store (a copy of a manifest head); repeat for several")
	all := fs.Bool("all", false, "check every recording and manifest in the store")
	since := fs.String("since", "", "only recordings started at or after this time (24h, 2026-11-01, ...)")
	asJSON := fs.Bool("json", false, "print the whole report as JSON")
	verbose := fs.Bool("v", false, "also print what is fine, and notes (interrupted, deleted by policy, live)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	workers := fs.Int("workers", 0, "recordings hashed at once (default: one per CPU)")
	keys, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(keys) > 0) {
		return usagef("name recordings (KEY...) or --all")
	}
	for _, k := range keys {
		if _, _, err := store.ParseKey(k); err != nil {
			return usagef("%q is not a recording key (<node>/<time>.cast, as reel ls shows it)", k)
		}
	}
	opts := evidence.VerifyOptions{Keys: evidence.Keyring{}, Only: keys, Workers: *workers}
	if opts.Since, err = parseWhen(*since, c.now(), time.Local); err != nil {
		return usagef("--since: %v", err)
	}
	for _, p := range pubkeys {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		ks, err := evidence.ParsePublicKeys(b)
		if err != nil {
			return fmt.Errorf("--pubkey %s: %w", p, err)
		}
		for _, k := range ks {
			opts.Keys.Add(k)
		}
	}
	dir := ef.evidenceDir(sf.dst)
	if len(pubkeys) == 0 {
		sg, err := ef.signer(sf.dst, false)
		if err != nil {
			if pub, perr := localPublicKey(dir); perr == nil {
				opts.Keys.Add(pub)
				fmt.Fprintf(env.stderr, "reel verify: trusting this recorder's key %s (%s); elsewhere, give --pubkey\n", evidence.KeyIDOf(pub), dir)
			} else {
				return usagef("--pubkey FILE: the recorder's public key (reel key show prints it); there is no key of this recorder to use (%v)", err)
			}
		} else {
			opts.Keys.Add(sg.Public())
			fmt.Fprintf(env.stderr, "reel verify: trusting this recorder's key %s; elsewhere, give --pubkey\n", sg.KeyID())
		}
	}
	for _, p := range anchors {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		as, err := evidence.Anchors(b, p)
		if err != nil {
			return fmt.Errorf("--anchor: %w", err)
		}
		opts.Anchors = append(opts.Anchors, as...)
	}
	if dir != "" {
		if a, ok := evidence.LocalAnchor(dir); ok {
			opts.Anchors = append(opts.Anchors, a)
		}
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	b, ok := st.(evidence.Backend)
	if !ok {
		return fmt.Errorf("the store %T keeps no seals", st)
	}
	var bar *meter
	if !*quiet {
		bar = newMeter(env.stderr, "verifying")
	}
	opts.Progress = func(done, total int64) { bar.set(done, total, "B") }
	start := time.Now()
	rep, err := evidence.Verify(ctx, b, opts)
	bar.done()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(env, rep, *verbose, elapsed)
	}
	if !rep.OK() {
		return errSilent
	}
	return nil
}

// localPublicKey reads recorder.pub in the evidence directory.
func localPublicKey(dir string) (ed25519.PublicKey, error) {
	if dir == "" {
		return nil, fs.ErrNotExist
	}
	b, err := os.ReadFile(filepath.Join(dir, "recorder.pub"))
	if err != nil {
		return nil, err
	}
	ks, err := evidence.ParsePublicKeys(b)
	if err != nil {
		return nil, err
	}
	return ks[0], nil
}

func printReport(env *cmdEnv, rep *evidence.Report, verbose bool, elapsed time.Duration) {
	out := env.stdout
	var bad, deleted, intact int
	for _, r := range rep.Recordings {
		switch {
		case !r.OK():
			bad++
		case r.Deleted:
			deleted++
		default:
			intact++
		}
		for _, p := range r.Problems {
			fmt.Fprintf(out, "%s: %s: %s\n", r.Key, p.Kind, p.Detail)
		}
		if verbose {
			if r.OK() && !r.Deleted {
				what := "intact"
				if !r.Sealed {
					what = "not sealed"
				}
				fmt.Fprintf(out, "%s: ok: %s (%s, %d bytes)\n", r.Key, what, r.Status, r.Size)
			}
			for _, n := range r.Notes {
				fmt.Fprintf(out, "%s: note: %s\n", r.Key, n)
			}
		}
	}
	for _, m := range rep.Manifests {
		for _, p := range m.Problems {
			fmt.Fprintf(out, "manifest %s: %s: %s\n", m.KeyID, p.Kind, p.Detail)
		}
		if verbose {
			if m.Trusted {
				fmt.Fprintf(out, "manifest %s: %d entries, last checkpoint %s\n", m.KeyID, m.Entries, m.Checkpoint.Format(time.RFC3339))
			}
			for _, n := range m.Notes {
				fmt.Fprintf(out, "manifest %s: note: %s\n", m.KeyID, n)
			}
		}
	}
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = ", " + humanBytes(float64(rep.Bytes)/s) + "/s"
	}
	fmt.Fprintf(env.stderr, "verified %d recordings and %d manifests (%s in %.2fs%s): %d intact, %d with problems, %d deleted by policy; %d problems\n",
		len(rep.Recordings)-deleted, len(rep.Manifests), humanBytes(float64(rep.Bytes)), elapsed.Seconds(), rate, intact, bad, deleted, rep.Problems())
}

// parseInterleaved parses args whose flags may come before, between and
// after the positional arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
