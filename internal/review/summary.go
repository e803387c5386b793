package review

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/store"
)

// Defaults for Limits.
const (
	DefaultMaxHeader = 1 << 20 // the longest header line read
	DefaultMaxTail   = 1 << 20 // how far back from the end the last event is looked for
)

// Limits bound what summarising one recording reads. The zero value uses
// the defaults.
type Limits struct {
	// MaxHeader is the longest header read, in bytes; a longer one is a
	// HeaderErr. Zero means DefaultMaxHeader.
	MaxHeader int64
	// MaxTail is how many bytes back from the end the last event line is
	// looked for. When no line starts within them (a last line that long,
	// or that many blank lines), the duration is unknown (DurationErr
	// wraps ErrTailLimit). Zero means DefaultMaxTail.
	MaxTail int64
}

func (l Limits) maxHeader() int64 {
	if l.MaxHeader > 0 {
		return l.MaxHeader
	}
	return DefaultMaxHeader
}

func (l Limits) maxTail() int64 {
	if l.MaxTail > 0 {
		return l.MaxTail
	}
	return DefaultMaxTail
}

// Summary is what a list shows about one recording: the store's Info and
// what its first and last lines say.
type Summary struct {
	store.Info
	// Kind is what the recording holds (store.KindOf its key): a terminal
	// session (asciicast, Header) or a desktop (Desktop).
	Kind store.Kind `json:"kind"`
	// Duration is the last event's time in seconds, or when that cannot be
	// found (and for asciicast v1 and v3) the header's duration, if any;
	// nil when unknown, and then DurationErr says why.
	Duration *float64 `json:"duration"`
	// User is who ran the session, for a list's USER column (see User; for
	// a desktop, the authenticated user).
	User string `json:"user"`
	// Command is what ran, for a list's COMMAND column (see Command; for
	// a desktop, "desktop HOST").
	Command string `json:"command"`
	// Header is the recording's header; nil when it cannot be read, and
	// then HeaderErr says why.
	Header *asciicast.Header `json:"header,omitempty"`
	// Desktop is a desktop recording's header; nil for a terminal one, and
	// when it cannot be read (HeaderErr says why).
	Desktop *desktop.Header `json:"desktop,omitempty"`

	HeaderErr   error `json:"-"`
	DurationErr error `json:"-"`
}

// MarshalJSON writes the summary as one JSON object: the Info fields, then
// duration (seconds or null), user, command, header, and headerError and
// durationError when set. HTML characters are not escaped.
func (s Summary) MarshalJSON() ([]byte, error) {
	type fields Summary // without this method
	v := struct {
		fields
		HeaderError   string `json:"headerError,omitempty"`
		DurationError string `json:"durationError,omitempty"`
	}{fields: fields(s)}
	if s.HeaderErr != nil {
		v.HeaderError = s.HeaderErr.Error()
	}
	if s.DurationErr != nil {
		v.DurationError = s.DurationErr.Error()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Summarize opens the recording info describes and summarises it, as a
// terminal recording (ReadSummary) or a desktop one (ReadDesktopSummary)
// by its key. It reads only the recording's two ends, within lim; an error is reported in
// the summary (HeaderErr), except ctx's, which is also returned.
func Summarize(ctx context.Context, st store.Store, info store.Info, lim Limits) (Summary, error) {
	rd, err := st.Open(ctx, info.Key)
	if err != nil {
		s := Summary{Info: info, Kind: store.KindOf(info.Key), HeaderErr: err}
		return s, ctx.Err()
	}
	defer rd.Close()
	var s Summary
	if store.KindOf(info.Key) == store.KindDesktop {
		s = ReadDesktopSummary(ctx, rd, rd.Size(), lim)
	} else {
		s = ReadSummary(ctx, rd, rd.Size(), lim)
	}
	s.Info = info
	return s, ctx.Err()
}

// ReadSummary summarises the recording in r's first size bytes: the header
// from its start, the duration from its last event line, read backwards
// from the end. It reads at most lim.MaxHeader bytes at the start and
// lim.MaxTail at the end, in blocks, and stops between blocks when ctx is
// done. Info is left zero.
func ReadSummary(ctx context.Context, r io.ReaderAt, size int64, lim Limits) Summary {
	s := Summary{Kind: store.KindTerminal}
	h, hdrEnd, err := readHeader(ctx, r, size, lim.maxHeader())
	if err != nil {
		s.HeaderErr = err
		s.DurationErr = fmt.Errorf("no header: %w", err)
		return s
	}
	s.Header = &h
	s.User, s.Command = User(&h), Command(&h)
	if h.Duration > 0 {
		d := h.Duration
		s.Duration = &d
	}
	if h.Version != 2 {
		// v1 is one JSON document; v3 stores intervals, so the last line's
		// time is not the duration.
		if s.Duration == nil {
			s.DurationErr = fmt.Errorf("asciicast v%d without a duration in the header", h.Version)
		}
		return s
	}
	t, err := lastEventTime(ctx, r, size, hdrEnd, lim.maxTail(), tailBlock)
	switch {
	case err == nil:
		s.Duration = &t
	case s.Duration == nil || ctx.Err() != nil:
		s.Duration, s.DurationErr = nil, err
	}
	// else: the header's duration stands.
	return s
}

// readHeader decodes the header at the start of r and returns where the
// line after it starts (size when there is none). It reads forwards in
// blocks, at most max+1 bytes.
func readHeader(ctx context.Context, r io.ReaderAt, size, max int64) (h asciicast.Header, next int64, err error) {
	head, next, err := readFirstLine(ctx, r, size, max)
	if err != nil {
		return h, 0, err
	}
	// The decoder reads the header line (or a v1 document) from what was
	// read, and on from r if it needs more.
	limit := min(size, max+1)
	rest := io.NewSectionReader(r, int64(len(head)), limit-int64(len(head)))
	dec := asciicast.NewDecoder(io.MultiReader(bytes.NewReader(head), rest))
	dec.MaxLine = int(max)
	h, err = dec.Header()
	return h, next, err
}

// readFirstLine reads the start of r forwards in blocks until its first
// newline, at most max+1 bytes, checking ctx between blocks. It returns
// what it read (the first line and perhaps more) and where the line after
// the first starts (size when there is no newline in what it read).
func readFirstLine(ctx context.Context, r io.ReaderAt, size, max int64) (head []byte, next int64, err error) {
	limit := min(size, max+1)
	next = size
	for off := int64(0); off < limit; {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		n := min(int64(tailBlock), limit-off)
		head = append(head, make([]byte, n)...)
		m, err := r.ReadAt(head[off:off+n], off)
		head = head[:off+int64(m)]
		off += int64(m)
		if i := bytes.IndexByte(head[off-int64(m):], '\n'); i >= 0 {
			next = off - int64(m) + int64(i) + 1
			break
		}
		if err == io.EOF || m == 0 && err == nil {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("header: %w", err)
		}
	}
	return head, next, nil
}
