package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/reel-rec/reel/internal/evidence"
	"github.com/reel-rec/reel/internal/evidence/export"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/web"
)

// terminalExportUsage is the part of reel export's usage about terminal
// recordings (--format) and bundles (--bundle).
const terminalExportUsage = `
Terminal recordings (key "<node>/<name>.cast", or a .cast file):

  --format cast|text|html|gif [-o FILE]
                cast: the recording (with --from/--to, that part, its
                times from 0); text: the text as the screen showed it
                (the lines that scrolled off in the part, then the screen
                at its end), emulated, without escape sequences; html: a
                self-contained page with the player (nothing loaded from
                elsewhere) and the recording's facts; gif: an animated GIF
                (at most --fps frames a second, long pauses cut to 2s).
                Without -o, to standard output (html and gif not to a
                terminal).

  --bundle DIR|FILE.tar KEY...
                evidence for someone else: the recordings byte for byte,
                their seals and hash chains, the manifest that proves the
                seals, and a README telling the receiver how to check it
                with "reel verify" and the recorder's public key. DIR must
                be new or empty; FILE.tar holds one folder.

Examples:
    reel export --format text 100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel export --format gif --from 1m --to 2m -o minute.gif KEY
    reel export --format html -o session.html KEY
    reel export --bundle case-4711.tar KEY1 KEY2
`

// terminalExport holds reel export's flags for terminal recordings and
// bundles.
type terminalExport struct {
	format string // cast, text, html, gif
	output string // -o
	bundle string // a folder, or a file ending in .tar
}

func (t *terminalExport) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.format, "format", "", "export a terminal recording in this `FORMAT`: cast, text, html or gif")
	fs.StringVar(&t.output, "o", "", "with --format: write to this `FILE` (default: standard output)")
	fs.StringVar(&t.bundle, "bundle", "", "write the named recordings, their seals and the manifest to this new folder or .tar file (`DIR|FILE.tar`), for reel verify elsewhere")
}

// run does reel export for --format and --bundle; done is false when
// neither was given (another kind of export). names are the recordings
// named; from and to the --from and --to flags as given.
func (t *terminalExport) run(ctx context.Context, env *cmdEnv, sf *storeFlags, names []string, o exportOptions, from, to string, quiet bool) (done bool, err error) {
	if t.format == "" && t.bundle == "" {
		if t.output != "" {
			return true, usagef("-o goes with --format")
		}
		return false, nil
	}
	switch {
	case t.format != "" && t.bundle != "":
		return true, usagef("--format or --bundle, not both")
	case o.video != "" || o.png != "" || o.frame != "":
		return true, usagef("--video, --frame and --png are for desktop recordings; not with --format or --bundle")
	}
	if !quiet {
		o.progress = env.stderr
	}
	if t.bundle != "" {
		if from != "" || to != "" || t.output != "" {
			return true, usagef("a bundle holds whole recordings: no --from, --to or -o")
		}
		if len(names) == 0 {
			return true, usagef("name the recordings to bundle: KEY...")
		}
		return true, exportBundle(ctx, env, sf, t.bundle, names, o)
	}
	switch t.format {
	case "cast", "text", "html", "gif":
	default:
		return true, usagef("--format %q: want cast, text, html or gif", t.format)
	}
	if len(names) != 1 {
		return true, usagef("name one recording: a file or a <node>/<name>.cast key")
	}
	if o.from, err = parseAt(from, 0); err != nil {
		return true, usagef("--from: %v", err)
	}
	if o.to, err = parseAt(to, -1); err != nil {
		return true, usagef("--to: %v", err)
	}
	if o.to >= 0 && o.to < o.from {
		return true, usagef("--to comes before --from")
	}
	if o.fps < 1 || o.fps > 60 {
		return true, usagef("--fps %d: want 1 to 60", o.fps)
	}
	if (t.output == "" || t.output == "-") && (t.format == "gif" || t.format == "html") {
		if f, ok := env.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return true, usagef("--format %s writes a file: give -o FILE", t.format)
		}
	}
	rec, err := openRecording(ctx, env, sf, names[0])
	if err != nil {
		return true, err
	}
	defer rec.Close()
	b, err := io.ReadAll(rec.r)
	if err != nil {
		return true, err
	}
	return true, exportTerminal(ctx, env, rec.name, rec.info, bytes.NewReader(b), o, *t)
}

// exportTerminal exports a terminal recording (r, named name; info when it
// came from the store) in t.format to t.output.
func exportTerminal(ctx context.Context, env *cmdEnv, name string, info *store.Info, r io.ReadSeeker, o exportOptions, t terminalExport) error {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	rg := export.Range{From: o.from.Seconds(), To: -1}
	if o.to >= 0 {
		rg.To = o.to.Seconds()
	}
	whole := o.from == 0 && o.to < 0
	var bar *meter
	if o.progress != nil {
		bar = newMeter(o.progress, "exporting")
	}
	defer bar.done()
	progress := func(done, total int64) { bar.set(done, total, "B") }
	write := func(w io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch t.format {
		case "cast":
			if whole {
				_, err := io.Copy(w, r) // byte for byte
				return err
			}
			return export.Cast(w, r, rg)
		case "text":
			s, err := export.Text(r, size, rg, progress)
			if err != nil {
				return err
			}
			return export.WriteText(w, s)
		case "gif":
			return export.GIF(w, r, export.GIFOptions{Range: rg, FPS: o.fps, Size: size, Progress: progress})
		default: // html
			rec, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			part := rec
			if !whole {
				var b bytes.Buffer
				if err := export.Cast(&b, bytes.NewReader(rec), rg); err != nil {
					return err
				}
				part = b.Bytes()
			}
			hi := htmlInfo(name, info, rec, o, whole)
			if hi.PlayerJS, hi.PlayerCSS, err = web.Player(); err != nil {
				return err
			}
			return export.HTML(w, part, hi)
		}
	}
	if t.output == "" || t.output == "-" {
		return write(env.stdout)
	}
	return writeOutput(t.output, write)
}

// htmlInfo is what the exported page says about the recording.
func htmlInfo(name string, info *store.Info, rec []byte, o exportOptions, whole bool) export.HTMLInfo {
	hi := export.HTMLInfo{Title: name, Poster: -1}
	add := func(k, v string) { hi.Facts = append(hi.Facts, [2]string{k, v}) }
	add("recording", name)
	if info != nil {
		add("sender", info.Sender)
		add("started", info.Start.UTC().Format(time.RFC3339Nano))
		st := string(info.Status)
		if info.Reason != "" {
			st += ": " + info.Reason
		}
		add("status", st)
	}
	sum := sha256.Sum256(rec)
	add("bytes", fmt.Sprint(len(rec)))
	add("SHA-256", hex.EncodeToString(sum[:]))
	if !whole {
		to := "the end"
		if o.to >= 0 {
			to = o.to.String()
		}
		add("part", fmt.Sprintf("%v to %s (times in the player start at 0)", o.from, to))
		hi.Poster = 0
	}
	add("exported", fmt.Sprintf("%s by reel %s; a page is no proof: reel export --bundle and reel verify are", time.Now().UTC().Format(time.RFC3339), version()))
	return hi
}

// exportBundle writes keys from the store to a new folder, or a tar file
// holding one, that reel verify checks with only the recorder's public key.
func exportBundle(ctx context.Context, env *cmdEnv, sf *storeFlags, dest string, keys []string, o exportOptions) error {
	for _, k := range keys {
		if _, _, err := store.ParseKey(k); err != nil {
			return usagef("%q is not a recording key (<node>/<time>.cast, as reel ls shows it)", k)
		}
	}
	asTar := strings.HasSuffix(dest, ".tar")
	build := dest
	if asTar {
		if _, err := os.Lstat(dest); err == nil {
			return fmt.Errorf("%s exists: name a new file", dest)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dest), ".reel-bundle-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		build = filepath.Join(tmp, strings.TrimSuffix(filepath.Base(dest), ".tar"))
	} else if ents, err := os.ReadDir(dest); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty: name a new or empty folder", dest)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	src, ok := st.(evidence.Backend)
	if !ok {
		return fmt.Errorf("the store %T keeps no seals", st)
	}
	dst, err := fsstore.Open(build, fsstore.Options{MinFree: -1})
	if err != nil {
		return err
	}
	var bar *meter
	if o.progress != nil {
		bar = newMeter(o.progress, "bundling")
	}
	res, err := evidence.Bundle(ctx, src, dst, keys, func(done, total int64) { bar.set(done, total, "B") })
	bar.done()
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if !asTar {
			os.RemoveAll(build)
		}
		return err
	}
	// fsstore's lock and live markers are not part of the bundle.
	if err := os.RemoveAll(filepath.Join(build, ".reel")); err != nil {
		return err
	}
	if err := writeBundleFiles(build, filepath.Base(build), res, sf.dst); err != nil {
		return err
	}
	// Check what was written, with the keys the store published: this
	// shows the bundle is consistent (the receiver's check, with a key
	// they got from the operator, is the proof).
	kr := evidence.Keyring{}
	for _, b := range res.PublicKeys {
		if ks, err := evidence.ParsePublicKeys(b); err == nil {
			for _, k := range ks {
				kr.Add(k)
			}
		}
	}
	ro, err := fsstore.OpenReadOnly(build)
	if err != nil {
		return err
	}
	rep, err := evidence.Verify(ctx, ro, evidence.VerifyOptions{Keys: kr, Only: keys})
	ro.Close()
	if err != nil {
		return err
	}
	if asTar {
		if err := writeTar(dest, build); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stderr, "reel export: bundled %d recordings sealed by key %s into %s\n", len(res.Items), strings.Join(res.KeyIDs, ", "), dest)
	if !rep.OK() {
		printReport(env, rep, false, 0)
		fmt.Fprintln(env.stderr, "reel export: the bundle is written, but the recordings above do not verify as they are in the store")
		return errSilent
	}
	return nil
}

// writeBundleFiles writes a bundle's README.txt, KEYS and public keys.
func writeBundleFiles(dir, name string, res *evidence.BundleResult, from string) error {
	var keys, readme strings.Builder
	for _, it := range res.Items {
		keys.WriteString(it.Info.Key + "\n")
	}
	ids := strings.Join(res.KeyIDs, ", ")
	if ids == "" {
		ids = "(none: no recording here is sealed)"
	}
	fmt.Fprintf(&readme, `Evidence bundle made by reel %s on %s
from the recordings in %s.

Recordings (key, status, bytes, SHA-256 of the bytes as recorded, sealed by key):
`, version(), time.Now().UTC().Format(time.RFC3339), from)
	for _, it := range res.Items {
		sealed := it.KeyID
		if sealed == "" {
			sealed = "NOT SEALED"
		}
		fmt.Fprintf(&readme, "  %s  %s  %d  %s  %s\n", it.Info.Key, it.Info.Status, it.Size, it.SHA256, sealed)
	}
	fmt.Fprintf(&readme, `
What is here (the layout of a reel recordings folder):
  <node>/<time>.cast          a recording, byte for byte as the recorder received it
  <node>/<time>.cast.tail     (some unfinished recordings) the bytes after the last complete line
  <node>/<time>.cast.status   how it ended, when it did not end normally
  <node>/<time>.cast.seal     the recorder's signed seal: key, size, status, hash chain head
  <node>/<time>.cast.chain    the hash chain, extended at each sync while it was recorded
  .evidence/manifest/<keyid>/ the recorder's signed manifest of every seal it made, in
                              order, with signed checkpoints. It is a single hash chain,
                              so it is here whole: it also lists the names, sizes and
                              statuses of the recorder's other recordings (not their contents).
  .evidence/keys/, *.pem      the public key as the recorder published it: a copy for
                              convenience, not to be trusted as such
  KEYS                        the recordings' keys, one a line

How to check it:
  1. Get the recorder's public key from its operator, not from this bundle
     (they print it with "reel key show"), and check that its key id is
     %s.
  2. With reel, on any machine, without network:

       reel verify --dst %s --pubkey recorder.pem $(cat %s/KEYS)

     It exits 0 and reports every recording intact when each is exactly as
     the recorder sealed it and the manifest proves the seals; otherwise it
     prints one line per problem ("KEY: altered: ..."). -v also shows how
     each recording ended (an interrupted one verifies as interrupted).
     Do not use --all here: it would look for the recorder's other
     recordings too, which the manifest lists and this bundle does not hold.
  3. Without reel: docs/evidence.md in reel's source specifies the byte
     formats, hash and signature inputs, with test vectors, for an
     independent verifier.
`, ids, name, name)
	files := map[string][]byte{"README.txt": []byte(readme.String()), "KEYS": []byte(keys.String())}
	for id, b := range res.PublicKeys {
		files[id+".pem"] = b
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeTar writes the folder dir into a new tar file at dest, under its
// base name.
func writeTar(dest, dir string) (err error) {
	return writeOutput(dest, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		base := filepath.Base(dir)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			h, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			h.Name = filepath.ToSlash(filepath.Join(base, rel))
			h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
			if d.IsDir() {
				h.Name += "/"
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err != nil {
			return err
		}
		return tw.Close()
	})
}
