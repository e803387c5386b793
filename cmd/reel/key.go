package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/reel-rec/reel/internal/evidence"
)

func init() {
	register(&command{name: "key", summary: "show the recorder's signing key (the public key reel verify needs)", run: runKey, subs: []string{"show"}})
}

const keyUsage = `
Usage: reel key show [flags]

Prints the public half of the key "reel serve" signs recordings with
(ed25519, PEM, with its key id on a comment line). Give it to whoever must
check the recordings: "reel verify --pubkey FILE" needs nothing else.

The key is made on the recorder's first start, in <statedir>/evidence/
(mode 600; --statedir defaults to <dst>/.reel for a directory --dst), or
read from --seal-key FILE (an ed25519 PKCS#8 PEM key, as
"openssl genpkey -algorithm ed25519" writes). Keep the private key away
from the recordings: anyone who has it can seal altered recordings. A key
in a KMS is not supported yet (the signing interface allows one).

Examples:
    reel key show > recorder-key.pem
    reel key show --statedir /var/lib/reel-state
`

// evidenceFlags are the flags that find the recorder's key and evidence
// state.
type evidenceFlags struct {
	stateDir string
	sealKey  string
}

func addEvidenceFlags(fs *flag.FlagSet, env *cmdEnv) *evidenceFlags {
	f := &evidenceFlags{}
	fs.StringVar(&f.stateDir, "statedir", envOr(env, "", "TS_STATE_DIR"), "the recorder's state directory (its key and evidence state are in <statedir>/evidence); default <dst>/.reel for a directory --dst (env TS_STATE_DIR)")
	fs.StringVar(&f.sealKey, "seal-key", envOr(env, "", "REEL_SEAL_KEY"), "the recorder's signing key: an ed25519 PEM `FILE`, instead of the one in <statedir>/evidence (env REEL_SEAL_KEY)")
	return f
}

// evidenceDir returns <statedir>/evidence, with statedir defaulting as
// reel serve's does; "" when there is none (an S3 --dst without
// --statedir).
func (f *evidenceFlags) evidenceDir(dst string) string {
	sd := f.stateDir
	if sd == "" && !strings.Contains(dst, "://") {
		sd = filepath.Join(dst, ".reel")
	}
	if sd == "" {
		return ""
	}
	return filepath.Join(sd, "evidence")
}

// signer loads the key: --seal-key, else the one in the evidence
// directory, made if create and missing.
func (f *evidenceFlags) signer(dst string, create bool) (evidence.Signer, error) {
	if f.sealKey != "" {
		return evidence.LoadKeyFile(f.sealKey)
	}
	dir := f.evidenceDir(dst)
	if dir == "" {
		return nil, errors.New("no --statedir: the recorder's key is in <statedir>/evidence (or give --seal-key)")
	}
	if create {
		k, _, err := evidence.LoadOrCreateKey(dir)
		return k, err
	}
	k, err := evidence.LoadKeyFile(evidence.KeyPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no key in %s: reel serve makes one on its first start (or give --seal-key)", dir)
	}
	return k, err
}

func runKey(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "show" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(env.stdout, strings.TrimSpace(keyUsage))
			return nil
		}
		return usagef("want \"reel key show\"")
	}
	fs := newFlagSet(env, "key show", keyUsage)
	dst := fs.String("dst", envOr(env, "./recordings", "TSRECORDER_DST"), "where the recordings are (for the default --statedir) (env TSRECORDER_DST)")
	ef := addEvidenceFlags(fs, env)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	k, err := ef.signer(*dst, false)
	if err != nil {
		return err
	}
	_, err = env.stdout.Write(evidence.PublicKeyPEM(k.Public(), ""))
	return err
}

// keyInside reports whether the key file p lies inside dir (the
// recordings): a copy of the recordings would then carry the private key.
func keyInside(p, dir string) bool {
	ap, err1 := filepath.Abs(p)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && !strings.HasPrefix(rel, "..")
}
