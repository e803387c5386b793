package main

// What the reviewer commands (ls, play, cat) share: naming a recording by
// path or key, and summarising one from its first and last lines without
// reading the rest.

import (
	"bytes"
	"context"
	"encoding/json"
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
	"unicode"
	"unicode/utf8"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
)

// storeFlags are the reviewer commands' storage flags: --dst and, for a
// bucket, the S3 flags "reel serve" takes.
type storeFlags struct {
	dst string
	s3  *s3Flags
	env *cmdEnv
}

func addStoreFlags(fs *flag.FlagSet, env *cmdEnv) *storeFlags {
	f := &storeFlags{env: env}
	fs.StringVar(&f.dst, "dst", envOr(env, "./recordings", "TSRECORDER_DST"),
		"where recordings are: a directory, or s3://endpoint/bucket (env TSRECORDER_DST)")
	f.s3 = addS3Flags(fs, env)
	return f
}

// open opens the store read-only, so it works while "reel serve" writes it.
func (f *storeFlags) open() (store.Store, error) {
	st, err := openStore(storeOptions{dst: f.dst, readOnly: true, s3: f.s3, getenv: f.env.getenv})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--dst %s: no such directory (set --dst or TSRECORDER_DST to where reel serve stores recordings)", f.dst)
	}
	return st, err
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
// .cast file, or a key "<node>/<name>.cast" in the store at dst. A path
// that lies inside dst also gets its store status.
func openRecording(ctx context.Context, env *cmdEnv, sf *storeFlags, arg string) (*recording, error) {
	if arg == "-" {
		return &recording{name: "stdin", r: env.stdin, close: func() error { return nil }}, nil
	}
	fi, statErr := os.Stat(arg)
	if statErr == nil && !fi.IsDir() {
		f, err := os.Open(arg)
		if err != nil {
			return nil, err
		}
		rec := &recording{name: arg, r: f, close: f.Close}
		rec.info = statUnder(ctx, sf, arg)
		return rec, nil
	}
	if statErr == nil {
		return nil, fmt.Errorf("%s is a directory, not a recording", arg)
	}
	if _, _, err := store.ParseKey(arg); err != nil {
		if errors.Is(statErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file, and not a recording key (<node>/<name>.cast) either", arg)
		}
		return nil, statErr
	}
	st, err := sf.open()
	if err != nil {
		return nil, err
	}
	info, err := st.Stat(ctx, arg)
	if err != nil {
		st.Close()
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("no recording %s in %s", arg, sf.dst)
		}
		return nil, err
	}
	rd, err := st.Open(ctx, arg)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &recording{name: arg, r: rd, info: &info, close: func() error {
		return errors.Join(rd.Close(), st.Close())
	}}, nil
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
	st, err := sf.open()
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

// statusNote returns a line for stderr about a recording that did not end
// normally, or "".
func statusNote(info *store.Info) string {
	if info == nil {
		return ""
	}
	var what string
	switch info.Status {
	case store.StatusComplete:
		return ""
	case store.StatusLive:
		what = "is still being recorded; this is what was stored so far"
	case store.StatusInterrupted:
		what = "was interrupted (the upload did not end normally); it was cut at its last complete line"
	case store.StatusFailed:
		what = "is incomplete: storing it failed"
	case store.StatusMalformed:
		what = "is malformed: the sender did not send valid asciicast"
	default:
		what = "has status " + string(info.Status)
	}
	if info.Reason != "" {
		what += " (" + info.Reason + ")"
	}
	return fmt.Sprintf("note: %s %s", info.Key, sanitize(what, 300))
}

// eventSource reads a recording's events. Lines that are not events are
// skipped (the decoder goes on after them) and counted, so that what can be
// shown of a malformed recording is shown; a read error ends it.
type eventSource struct {
	dec     *asciicast.Decoder
	rd      *errReader
	skipped int   // lines that are not events
	first   error // why the first of them is not
}

func newEventSource(r io.Reader) *eventSource {
	rd := &errReader{r: r}
	return &eventSource{dec: asciicast.NewDecoder(rd), rd: rd}
}

// next returns the next event, or io.EOF at the end.
func (s *eventSource) next() (asciicast.Event, error) {
	var prev error
	for {
		ev, err := s.dec.Next()
		if err == nil || err == io.EOF || s.rd.err != nil || err == prev {
			return ev, err
		}
		if s.skipped == 0 {
			s.first = err
		}
		s.skipped++
		prev = err // the same error twice: the decoder is stuck on it
	}
}

// skippedError reports the lines next skipped, or nil.
func (s *eventSource) skippedError() error {
	switch s.skipped {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("a line is not an asciicast event, skipped: %w", s.first)
	}
	return fmt.Errorf("%d lines are not asciicast events, skipped; the first: %w", s.skipped, s.first)
}

// errReader remembers the error of a failed Read, other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Limits for reading the ends of a recording.
const (
	maxHeaderLine = 1 << 20  // a header longer than this is not summarised
	tailChunk     = 64 << 10 // read backwards this much at a time
	maxTailScan   = 64 << 20 // look this far back for the last line's start
	timePrefix    = 64       // bytes of a line read to find its time
)

// summary is what ls shows beyond store.Info, read from the two ends of a
// recording.
type summary struct {
	header    *asciicast.Header
	headerErr error
	duration  float64 // seconds: the last event's time
	hasDur    bool
}

// summarize reads the header line from the start of r and the last event's
// time from its end. It never reads the middle of the recording.
func summarize(r io.ReaderAt, size int64) summary {
	var s summary
	dec := asciicast.NewDecoder(io.NewSectionReader(r, 0, min(size, maxHeaderLine+1)))
	dec.MaxLine = maxHeaderLine
	h, err := dec.Header()
	if err != nil {
		s.headerErr = err
		return s
	}
	s.header = &h
	if h.Duration > 0 {
		s.duration, s.hasDur = h.Duration, true
	}
	if h.Version != 2 {
		// v1 is one JSON document; v3 stores intervals, so the last line's
		// time is not the duration.
		return s
	}
	line, err := readFirstLine(r, size, maxHeaderLine)
	if err != nil {
		return s
	}
	if t, ok, err := lastEventTime(r, size, int64(len(line))+1); err == nil && ok {
		s.duration, s.hasDur = t, true
	}
	return s
}

// readFirstLine returns the first line of r, without its newline. It fails
// if the line is longer than limit.
func readFirstLine(r io.ReaderAt, size int64, limit int) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 4096)
	for off := int64(0); off < size; {
		n, err := r.ReadAt(chunk[:min(int64(len(chunk)), size-off)], off)
		if i := bytes.IndexByte(chunk[:n], '\n'); i >= 0 {
			return append(buf, chunk[:i]...), nil
		}
		buf = append(buf, chunk[:n]...)
		off += int64(n)
		if len(buf) > limit {
			return nil, fmt.Errorf("header: first line longer than %d bytes", limit)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("header: %w", err)
		}
		if n == 0 {
			break
		}
	}
	if len(buf) == 0 {
		return nil, errors.New("header: empty recording")
	}
	return buf, nil // a header with no newline after it: no events yet
}

// lastEventTime returns the time of the last event line in r's first size
// bytes, reading backwards from the end. Lines that start before from (the
// header) are not considered. It trusts only lines that end in a newline,
// and a final unterminated line that parses whole as an event; a partial
// line in flight (a live recording) or cut off is skipped. ok is false when
// there is no event line.
func lastEventTime(r io.ReaderAt, size, from int64) (t float64, ok bool, err error) {
	return lastEventTimeChunk(r, size, from, tailChunk)
}

// lastEventTimeChunk is lastEventTime reading chunk bytes at a time.
func lastEventTimeChunk(r io.ReaderAt, size, from int64, chunk int) (t float64, ok bool, err error) {
	tr := tailReader{r: r, buf: make([]byte, chunk), limit: maxTailScan}
	end := size
	// A final line without a newline: accept it if it is short and whole.
	nl, err := tr.lastNewline(end, from)
	if err != nil {
		return 0, false, err
	}
	if start := nl + 1; start < end && end-start <= tailChunk {
		frag := make([]byte, end-start)
		if _, err := r.ReadAt(frag, start); err != nil && err != io.EOF {
			return 0, false, err
		}
		var ev asciicast.Event
		if json.Unmarshal(frag, &ev) == nil && ev.Time >= 0 {
			return ev.Time, true, nil
		}
	}
	// Then the newline-terminated lines, last first.
	for end = nl; end > from; end = nl {
		nl, err = tr.lastNewline(end, from)
		if err != nil {
			return 0, false, err
		}
		start := max(nl+1, from)
		if start >= end {
			continue // an empty line
		}
		pre := make([]byte, min(end-start, timePrefix))
		if _, err := r.ReadAt(pre, start); err != nil && err != io.EOF {
			return 0, false, err
		}
		if t, ok := parseEventTime(pre); ok {
			return t, true, nil
		}
		if len(bytes.TrimSpace(pre)) > 0 {
			return 0, false, nil // the last line is not an event: no duration
		}
	}
	return 0, false, nil
}

// tailReader finds newlines backwards in a ReaderAt with bounded memory.
type tailReader struct {
	r     io.ReaderAt
	buf   []byte // one chunk
	limit int64  // how far back to look for a line's start
}

// lastNewline returns the offset of the last '\n' in [from, end), or from-1
// when there is none. It fails with errLongLine when there is none in the
// last limit bytes.
func (tr *tailReader) lastNewline(end, from int64) (int64, error) {
	for scanned := int64(0); end > from; {
		if scanned >= tr.limit {
			return 0, errLongLine
		}
		start := max(from, end-int64(len(tr.buf)))
		b := tr.buf[:end-start]
		if _, err := tr.r.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, fmt.Errorf("read at %d: %w", start, err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i), nil
		}
		scanned += end - start
		end = start
	}
	return from - 1, nil
}

var errLongLine = errors.New("last line too long to find its start")

// parseEventTime reads the time at the start of an event line, from its
// first bytes: `[` then a JSON number then `,`. A number cut off by the end
// of b is not accepted.
func parseEventTime(b []byte) (float64, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	j := i
	for j < len(b) && strings.IndexByte("0123456789+-.eE", b[j]) >= 0 {
		j++
	}
	if k := skipSpace(b, j); j == i || k >= len(b) || b[k] != ',' {
		return 0, false
	}
	num := b[i:j]
	if !json.Valid(num) { // JSON's number grammar, stricter than ParseFloat's
		return 0, false
	}
	t, err := strconv.ParseFloat(string(num), 64)
	if err != nil || t < 0 {
		return 0, false
	}
	return t, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// headerUser is who a recording's USER column shows: the SSH user (with
// the local account it ran as, when different), else the sender's tailnet
// user. Kubernetes sessions show the tailnet user; the pod is in the
// command column.
func headerUser(h *asciicast.Header) string {
	if h == nil {
		return ""
	}
	switch {
	case h.SSHUser != "" && h.LocalUser != "" && h.SSHUser != h.LocalUser:
		return h.SSHUser + "→" + h.LocalUser
	case h.SSHUser != "":
		return h.SSHUser
	case h.LocalUser != "":
		return h.LocalUser
	}
	return h.SrcNodeUser
}

// headerCommand is what a recording's COMMAND column shows: the command, or
// for a Kubernetes session "exec namespace/pod container".
func headerCommand(h *asciicast.Header) string {
	if h == nil {
		return ""
	}
	if k := h.Kubernetes; k != nil {
		kind := k.SessionType
		if kind == "" {
			kind = "exec"
		}
		pod := k.PodName
		if k.Namespace != "" {
			pod = k.Namespace + "/" + pod
		}
		s := kind + " " + pod
		if k.Container != "" {
			s += " " + k.Container
		}
		if h.Command != "" {
			s += ": " + h.Command
		}
		return s
	}
	if h.Command != "" {
		return h.Command
	}
	return h.Title
}

// matchUser reports whether user names one of the recording's users: the
// SSH user, the local user or the sender's tailnet user (whole, or the part
// before '@'), ignoring case.
func matchUser(h *asciicast.Header, user string) bool {
	if h == nil {
		return false
	}
	for _, u := range []string{h.SSHUser, h.LocalUser, h.SrcNodeUser} {
		if u == "" {
			continue
		}
		if strings.EqualFold(u, user) {
			return true
		}
		if local, _, ok := strings.Cut(u, "@"); ok && strings.EqualFold(local, user) {
			return true
		}
	}
	return false
}

// sanitize makes s safe to print in a table on a terminal: control
// characters (escape sequences a sender might plant) become '?', and s is cut
// to at most n runes, ending in '…' when cut.
func sanitize(s string, n int) string {
	rs := []rune(s)
	cut := len(rs) > n
	if cut {
		rs = rs[:max(n-1, 0)]
	}
	for i, r := range rs {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			rs[i] = '?'
		}
	}
	if cut {
		return strings.TrimRightFunc(string(rs), unicode.IsSpace) + "…"
	}
	return string(rs)
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
