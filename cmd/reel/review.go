package main

// What the reviewer commands (ls, play, cat) share on the command line:
// the store flags, naming a recording by path or key, notes on stderr, and
// how sizes and durations are shown. The review engine itself is
// internal/review.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/store"
)

// storeFlags are the reviewer commands' storage flags: --dst and, for a
// bucket, the S3 flags that reading needs.
type storeFlags struct {
	dst string
	s3  *s3Flags
	env *cmdEnv
}

// writerOnlyS3Flags are the S3 flags only a recorder uses (its spool and
// uploads); the read-only commands do not offer them.
var writerOnlyS3Flags = map[string]bool{"s3-spool-max": true, "s3-uploaders": true, "s3-create-bucket": true}

func addStoreFlags(fs *flag.FlagSet, env *cmdEnv) *storeFlags {
	f := &storeFlags{env: env}
	fs.StringVar(&f.dst, "dst", envOr(env, "./recordings", "TSRECORDER_DST"),
		"where the recordings are: a directory, or s3://endpoint/bucket (env TSRECORDER_DST)")
	all := flag.NewFlagSet("s3", flag.ContinueOnError)
	f.s3 = addS3Flags(all, env)
	all.VisitAll(func(fl *flag.Flag) {
		if !writerOnlyS3Flags[fl.Name] {
			fs.Var(fl.Value, fl.Name, fl.Usage)
		}
	})
	return f
}

// open opens the store read-only, so it works while "reel serve" writes
// it. It returns when ctx is done even if the store is still being opened
// (a bucket that does not answer); that store is then closed once it
// opens.
func (f *storeFlags) open(ctx context.Context) (store.Store, error) {
	type result struct {
		st  store.Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := openStore(storeOptions{dst: f.dst, readOnly: true, s3: f.s3, getenv: f.env.getenv})
		done <- result{st, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.st.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if errors.Is(r.err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--dst %s: no such directory (set --dst or TSRECORDER_DST to where reel serve stores recordings)", f.dst)
	}
	return r.st, r.err
}

// recording is one opened recording, from a file, a store key or stdin.
type recording struct {
	name string    // as the user named it
	r    io.Reader // the bytes, from the start
	// info is the store's description when the recording is in a store
	// (named by key, or by a path under --dst); nil otherwise.
	info  *store.Info
	close func() error
}

func (r *recording) Close() error { return r.close() }

// openRecording opens what arg names: "-" for standard input, a path to a
// .cast file, or a key "<node>/<time>.cast" in the store at --dst. A path
// that lies inside --dst also gets its store status.
func openRecording(ctx context.Context, env *cmdEnv, sf *storeFlags, arg string) (*recording, error) {
	if arg == "-" {
		return &recording{name: "stdin", r: newCtxReader(ctx, env.stdin), close: func() error { return nil }}, nil
	}
	fi, statErr := os.Stat(arg)
	if statErr == nil && !fi.IsDir() {
		f, err := os.Open(arg)
		if err != nil {
			return nil, err
		}
		rec := &recording{name: arg, r: newCtxReader(ctx, f), close: f.Close}
		rec.info = statUnder(ctx, sf, arg)
		return rec, nil
	}
	if statErr == nil {
		return nil, fmt.Errorf("%s is a directory, not a recording", arg)
	}
	if !errors.Is(statErr, fs.ErrNotExist) {
		return nil, statErr
	}
	if _, _, err := store.ParseKey(arg); err != nil {
		if looksLikeKey(arg) {
			return nil, fmt.Errorf("no recording %s in %s (a key is <node>/<time>.cast, as reel ls shows it; and there is no file %s)", arg, sf.dst, arg)
		}
		return nil, fmt.Errorf("%s: no such file, and not a recording key (<node>/<time>.cast) either", arg)
	}
	st, err := sf.open(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := review.Open(ctx, st, arg)
	if err != nil {
		st.Close()
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("no recording %s in %s", arg, sf.dst)
		}
		return nil, err
	}
	return &recording{name: arg, r: newCtxReader(ctx, rec), info: &rec.Info, close: func() error {
		return errors.Join(rec.Close(), st.Close())
	}}, nil
}

// looksLikeKey reports whether a name that is not a valid key was meant as
// one: "<something>/<something>.cast", relative, no "..".
func looksLikeKey(s string) bool {
	node, name, ok := strings.Cut(s, "/")
	return ok && node != "" && node != "." && node != ".." && !strings.Contains(name, "/") &&
		store.IsRecordingName(name)
}

// desktopFormat is how a desktop recording's header line
// (docs/desktop-format.md) starts, as reel vnc writes it.
var desktopFormat = []byte(`"format":"reel-desktop"`)

// isDesktopHeader reports whether line, the first line of a recording (or
// its start), is a desktop recording's header.
func isDesktopHeader(line []byte) bool {
	line, _, _ = bytes.Cut(line, []byte("\n"))
	return bytes.Contains(line, desktopFormat)
}

// terminalOnly refuses a desktop recording, which reel play and reel cat
// cannot show, saying what can: by its key or name, or else by its first
// line (a file renamed, standard input), which it peeks at without
// consuming it.
func (rec *recording) terminalOnly(arg string) error {
	desk := store.KindOf(rec.name) == store.KindDesktop || rec.info != nil && store.KindOf(rec.info.Key) == store.KindDesktop
	if !desk {
		// Peek at most the first line (up to 512 bytes), reading only
		// as long as it is incomplete, so a live stream is not held up.
		br := bufio.NewReaderSize(rec.r, 4096)
		n := 1
		for {
			head, err := br.Peek(n)
			if err != nil || bytes.IndexByte(head, '\n') >= 0 || len(head) >= 512 {
				desk = isDesktopHeader(head)
				break
			}
			n = br.Buffered() + 1
		}
		rec.r = br
	}
	if desk {
		return fmt.Errorf("%s is a desktop recording: use reel export %s --video FILE or the web UI", rec.name, arg)
	}
	return nil
}

// statUnder returns the store's Info for path when path is a recording in
// the store at --dst (a directory), else nil.
func statUnder(ctx context.Context, sf *storeFlags, path string) *store.Info {
	if strings.Contains(sf.dst, "://") {
		return nil
	}
	absDst, err1 := filepath.Abs(sf.dst)
	absPath, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return nil
	}
	rel, err := filepath.Rel(absDst, absPath)
	if err != nil {
		return nil
	}
	key := filepath.ToSlash(rel)
	if _, _, err := store.ParseKey(key); err != nil {
		return nil
	}
	st, err := sf.open(ctx)
	if err != nil {
		return nil
	}
	defer st.Close()
	info, err := st.Stat(ctx, key)
	if err != nil {
		return nil
	}
	return &info
}

// ctxReader is a reader that gives up when ctx is done, even while a Read
// is blocked on a pipe or terminal (standard input from a stalled
// program): that Read is left to finish in the background, as the command
// is about to exit.
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	block bool // r is a file whose reads can block for ever
}

func newCtxReader(ctx context.Context, r io.Reader) ctxReader {
	c := ctxReader{ctx: ctx, r: r}
	if f, ok := r.(*os.File); ok {
		fi, err := f.Stat()
		c.block = err != nil || !fi.Mode().IsRegular()
	}
	return c
}

// errNoSeek: the recording is a pipe or terminal, read once from the start.
var errNoSeek = errors.New("cannot seek in this recording")

// Seek seeks in a regular file or a store's recording (reel export reads
// a desktop recording from its keyframes on); anything else fails.
func (c ctxReader) Seek(off int64, whence int) (int64, error) {
	s, ok := c.r.(io.Seeker)
	if !ok || c.block {
		return 0, errNoSeek
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return s.Seek(off, whence)
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if !c.block {
		return c.r.Read(p)
	}
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, len(p))
	done := make(chan result, 1)
	go func() {
		n, err := c.r.Read(buf)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		copy(p, buf[:r.n])
		return r.n, r.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

// notes tells the user on stderr that a recording did not end normally.
func notes(env *cmdEnv, rec *recording, ev *review.Events) {
	if rec.info != nil {
		if what := review.Explain(*rec.info); what != "" {
			fmt.Fprintf(env.stderr, "note: %s %s\n", rec.info.Key, what)
		}
	}
	if ev.Truncated() {
		fmt.Fprintf(env.stderr, "note: %s ends in a partial line (cut off); shown up to its last complete event\n", rec.name)
	}
}

// formatDuration shows seconds as 4.2s, 3m07s or 1h02m03s.
func formatDuration(sec float64) string {
	if sec < 60 {
		return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}

// formatSize shows a byte count with a binary unit: 512B, 1.5KiB, 12MiB.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
}
