package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reel-rec/reel/internal/asciicast"
)

// Why a summary has no duration. Summary.DurationError wraps one of them.
var (
	// ErrNoEvents: the recording has no event line (yet): for a desktop
	// recording, no record.
	ErrNoEvents = errors.New("no events")
	// ErrNotEvent: the last complete line is not an event (an asciicast
	// event, or a desktop recording's record).
	ErrNotEvent = errors.New("the last line is not an event")
	// ErrTailLimit: no event line starts within Limits.MaxTail bytes of the
	// end (a very long last line, or a long run of blank lines). Summarising
	// gives up rather than read further.
	ErrTailLimit = errors.New("no event near the end")
)

// tailBlock is how much is read at a time, backwards from the end.
const tailBlock = 64 << 10

// tail reads the end of a recording backwards in blocks and finds its last
// event. Every byte is read once and looked at once: memory and I/O are
// bounded by the window it may look at, whatever the lines are like.
type tail struct {
	r     io.ReaderAt
	size  int64 // bytes of r to consider
	from  int64 // where the first event line may start (after the header)
	lo    int64 // lowest offset tail may read: max(from, size-maxTail)
	block int   // bytes per read

	buf   []byte // buf[len(buf)-n:] holds the bytes [start, size)
	start int64  // lowest offset read so far
}

// lineFormat is how lastLineTime reads the lines of one kind of
// recording.
type lineFormat struct {
	// blank reports a byte that is skipped between lines, besides '\n'.
	blank func(c byte) bool
	// time decodes one line: ok is false for a line that is skipped (a
	// blank one, or a final line, without a newline after it, that is not
	// whole); a line that is not an event is an error wrapping ErrNotEvent.
	time func(line []byte, final bool) (t float64, ok bool, err error)
}

// asciicastLines are asciicast v2 event lines.
var asciicastLines = lineFormat{
	blank: func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' },
	time:  eventTime,
}

// lastEventTime returns the time of the last asciicast event in r's bytes
// [from, size), reading at most maxTail bytes backwards from size, block
// bytes at a time, and checking ctx between reads.
//
// It trusts lines that end in a newline, and a final line without one that
// is a whole event; a partial line in flight (a live recording) or cut off
// is passed over. Blank lines are skipped. When the last complete line is
// not an event, it fails with ErrNotEvent; with no event line, ErrNoEvents;
// when no line start is found within maxTail bytes, ErrTailLimit.
func lastEventTime(ctx context.Context, r io.ReaderAt, size, from, maxTail int64, block int) (float64, error) {
	return lastLineTime(ctx, r, size, from, maxTail, block, asciicastLines)
}

// lastLineTime is lastEventTime for lines of format f.
func lastLineTime(ctx context.Context, r io.ReaderAt, size, from, maxTail int64, block int, f lineFormat) (float64, error) {
	if from >= size {
		return 0, ErrNoEvents
	}
	t := &tail{r: r, size: size, from: from, lo: max(from, size-maxTail), block: block, start: size}
	var (
		scan   = size  // bytes from scan on have been looked at
		end    int64   // the end of the line being read (exclusive), when inLine
		inLine = false // between a line's last byte and its start
		final  = true  // the line being read has no newline after it
	)
	for {
		if !inLine {
			// Skip blank bytes: blank lines, trailing spaces, CRs. A run of
			// them costs one pass, not one step per line.
			i := scan
			for i > t.start {
				c := t.at(i - 1)
				if c != '\n' && !f.blank(c) {
					break
				}
				if c == '\n' {
					final = false
				}
				i--
			}
			scan = i
			if i == t.start {
				if err := t.more(ctx, maxTail); err != nil {
					return 0, err
				}
				continue
			}
			end, inLine = i, true
		}
		// Find the newline before the line that ends at end.
		lineStart := int64(-1)
		if i := bytes.LastIndexByte(t.bytes(t.start, scan), '\n'); i >= 0 {
			lineStart = t.start + int64(i) + 1
		} else if t.start == t.from {
			lineStart = t.from // the first line after the header
		} else {
			scan = t.start
			if err := t.more(ctx, maxTail); err != nil {
				return 0, err
			}
			continue
		}
		tm, ok, err := f.time(t.bytes(lineStart, end), final)
		if ok || err != nil {
			return tm, err
		}
		// A final line that is not a whole event: in flight or cut off.
		if lineStart == t.from {
			return 0, ErrNoEvents
		}
		scan, inLine = lineStart, false
	}
}

// eventTime decodes one line with the asciicast scanner. ok is false for a
// blank line, and for a final line (no newline after it) that is not a
// whole event; any other line that is not an event is ErrNotEvent.
func eventTime(line []byte, final bool) (t float64, ok bool, err error) {
	if len(bytes.Trim(line, " \t\r")) == 0 {
		return 0, false, nil
	}
	var ev asciicast.Event
	if err := ev.UnmarshalJSON(line); err != nil || ev.Time < 0 {
		if final {
			return 0, false, nil
		}
		if err == nil {
			err = fmt.Errorf("negative time %v", ev.Time)
		}
		return 0, false, fmt.Errorf("%w: %v", ErrNotEvent, err)
	}
	return ev.Time, true, nil
}

// at returns the byte at offset i, which must have been read.
func (t *tail) at(i int64) byte {
	return t.buf[int64(len(t.buf))-(t.size-i)]
}

// more reads the block before what was read, or reports why it may not:
// ErrNoEvents when everything after the header was read, ErrTailLimit when
// the window is used up.
func (t *tail) more(ctx context.Context, maxTail int64) error {
	switch {
	case t.start == t.from:
		return ErrNoEvents
	case t.start == t.lo:
		return fmt.Errorf("%w: no event line starts in the last %d bytes", ErrTailLimit, maxTail)
	}
	return t.readMore(ctx)
}

// bytes returns the bytes [a, b) of the file, which must have been read.
func (t *tail) bytes(a, b int64) []byte {
	off := int64(len(t.buf)) - (t.size - t.start) // where t.start is in buf
	return t.buf[off+(a-t.start) : off+(b-t.start)]
}

// readMore reads the block before t.start, no lower than t.lo.
func (t *tail) readMore(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	next := max(t.lo, t.start-int64(t.block))
	n := t.start - next
	have := t.size - t.start
	if int64(len(t.buf)) < have+n { // grow, keeping the bytes at the end
		nb := make([]byte, max(have+n, min(2*int64(len(t.buf)), t.size-t.lo)))
		copy(nb[int64(len(nb))-have:], t.buf[int64(len(t.buf))-have:])
		t.buf = nb
	}
	off := int64(len(t.buf)) - have - n
	if m, err := t.r.ReadAt(t.buf[off:off+n], next); int64(m) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF // the recording shrank
		}
		return fmt.Errorf("read at %d: %w", next, err)
	}
	t.start = next
	return nil
}
