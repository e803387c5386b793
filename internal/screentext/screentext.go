// Package screentext turns a terminal recording into the text that was on
// its screen, for search: each line as it was displayed (never escape
// sequences, never keystrokes from input events), with the time it
// appeared, in time-bucketed chunks so a search hit links to its moment.
//
// The output is fed through a terminal emulator (internal/vt). A line is
// taken when it leaves the main screen (scrolled off, cleared), in its last
// state, so a line that stays while others change, or a prompt being
// edited, counts once. What a full-screen program (top, vim, less) shows on
// the alternate screen is taken when that screen is about to be wiped or
// left, and at every bucket boundary, each distinct line once per
// full-screen session. Rows that wrapped are joined back into one line. At
// each bucket boundary and at the end, the lines still on the screen are
// taken too, so a live recording's recent output is searchable before it
// scrolls away; they are not taken again when they later scroll off
// unchanged.
//
// An Extractor works incrementally: feed it events as they arrive (Event,
// Output, Resize), and the time now and then while a live session is idle
// (Tick); it emits each chunk as it closes, and Close flushes the rest.
// Extract runs one over a whole recording.
package screentext

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/vt"
)

// Chunk is the screen text of a stretch of a recording.
type Chunk struct {
	// Start and End are the times, in seconds since the recording's
	// start, at which the earliest and the latest of its lines appeared.
	Start, End float64
	// Text holds the lines, each ended by '\n', in the order they were
	// taken (which is the order they appeared, except that a line that
	// stayed on the screen comes when it left it).
	Text string
	// Times[i] is the time line i of Text appeared: when its row last
	// changed before it was taken.
	Times []float64
}

// Options tune the chunks. The zero value is usable.
type Options struct {
	// Span is the length of a time bucket in seconds: a chunk holds lines
	// taken in one bucket, and the screen is read at each boundary. Zero
	// means 30.
	Span float64
	// MaxBytes closes a chunk early once its text is this long. Zero means
	// DefaultMaxBytes.
	MaxBytes int
}

// DefaultMaxBytes is the default Options.MaxBytes. Chunks this large still
// link every line to its own moment (Chunk.Times); what their size sets
// is how many rows the search index has for text that comes fast (logs,
// bulk output), and so how much work indexing it is: each row lists each
// distinct trigram of its text once.
const DefaultMaxBytes = 256 << 10

// maxSeen bounds the set of alternate-screen lines already taken.
const maxSeen = 1 << 14

// Extractor extracts the screen text of one recording. Feed it the
// recording's events in order; it is not safe for concurrent use.
type Extractor struct {
	span     float64
	maxBytes int
	emit     func(Chunk)
	term     *vt.Terminal
	k8s      bool // resizes are "ROWSxCOLS" (Tailscale's Kubernetes recorder)

	now    float64 // time of the current event
	bucket int64   // bucket of the current event
	alt    bool    // the alternate screen was showing after the last event

	part      []byte // rows of a wrapped line that scrolled off so far
	partStamp int64

	seed     maphash.Seed
	onScreen map[uint64]int      // main screen: keys of lines taken by the last capture
	next     map[uint64]int      // scratch for the next onScreen
	altSeen  map[uint64]struct{} // alternate screen: lines taken in this session
	line     []byte              // scratch

	text  []byte
	times []float64
}

// New returns an Extractor for a recording whose header is h: its Width and
// Height (80x24 when missing), and whether it comes from Tailscale's
// Kubernetes recorder, whose resizes read "ROWSxCOLS"
// (asciicast.Header.IsKubernetes). emit is called with each chunk as it
// closes, never with an empty one.
func New(h asciicast.Header, opt Options, emit func(Chunk)) *Extractor {
	cols, rows := h.Width, h.Height
	if cols <= 0 || rows <= 0 {
		cols, rows = 80, 24
	}
	x := &Extractor{
		span: opt.Span, maxBytes: opt.MaxBytes, emit: emit,
		term:     vt.New(cols, rows),
		k8s:      h.ResizeRowsFirst(),
		seed:     maphash.MakeSeed(),
		onScreen: map[uint64]int{}, next: map[uint64]int{}, altSeen: map[uint64]struct{}{},
	}
	if x.span <= 0 {
		x.span = 30
	}
	if x.maxBytes <= 0 {
		x.maxBytes = DefaultMaxBytes
	}
	x.term.LineOff = x.lineOff
	x.term.AltWipe = x.captureAlt
	return x
}

// Event feeds one event: output ("o") and resizes ("r") change the screen;
// input, markers and the rest are ignored. A resize it cannot read is an
// error and changes nothing.
func (x *Extractor) Event(ev asciicast.Event) error {
	switch ev.Code {
	case asciicast.Output:
		x.OutputString(ev.Time, ev.Data)
	case asciicast.Resize:
		cols, rows, err := asciicast.ParseResize(ev.Data, x.k8s)
		if err != nil {
			return fmt.Errorf("screentext: at %gs: %w", ev.Time, err)
		}
		x.Resize(ev.Time, cols, rows)
	}
	return nil
}

// Output feeds output written at time t (seconds since the start).
func (x *Extractor) Output(t float64, data []byte) {
	x.advance(t)
	x.term.Write(data)
	x.altChanged()
}

// OutputString is Output for a string.
func (x *Extractor) OutputString(t float64, data string) {
	x.advance(t)
	x.term.WriteString(data)
	x.altChanged()
}

// Resize feeds a terminal size change at time t.
func (x *Extractor) Resize(t float64, cols, rows int) {
	x.advance(t)
	x.term.Resize(cols, rows)
}

// Tick tells the Extractor that time t has come without output, as a live
// recording's indexer does now and then: when t is in a later bucket, the
// screen is taken and the chunk emitted, so an idle session's last lines
// become searchable without waiting for its next output.
func (x *Extractor) Tick(t float64) { x.advance(t) }

// Close takes what is still on the screen and emits the last chunk.
func (x *Extractor) Close() {
	x.captureScreen()
	x.flush()
}

// advance moves the clock to t. Times that go back (Tailscale's senders
// write a few slightly out of order) are taken as the latest time seen.
func (x *Extractor) advance(t float64) {
	if t < x.now || t != t {
		t = x.now
	}
	x.now = t
	if b := int64(t / x.span); b != x.bucket {
		x.captureScreen()
		x.flush()
		x.bucket = b
	}
	x.term.SetStamp(int64(t * 1e6))
}

// altChanged notices the alternate screen coming and going.
func (x *Extractor) altChanged() {
	if alt := x.term.AltScreen(); alt != x.alt {
		x.alt = alt
		if alt {
			clear(x.altSeen) // a new full-screen session
		}
	}
}

// lineOff takes a line leaving the main screen.
func (x *Extractor) lineOff(l vt.Line) {
	if l.Wrapped {
		x.part = append(x.part, l.Text...)
		x.partStamp = max(x.partStamp, l.Stamp)
		return
	}
	text, stamp := l.Text, l.Stamp
	if len(x.part) > 0 {
		x.part = append(x.part, text...)
		text, stamp = x.part, max(x.partStamp, stamp)
		x.part, x.partStamp = x.part[:0], 0
	}
	text = bytes.TrimRight(text, " ")
	if len(text) == 0 {
		return
	}
	k := x.key(text, stamp)
	if n := x.onScreen[k]; n > 0 {
		x.onScreen[k] = n - 1 // taken already, by a capture, unchanged since
		return
	}
	x.add(text, stamp)
}

// captureScreen takes the lines on the screen showing.
func (x *Extractor) captureScreen() {
	if x.term.AltScreen() {
		x.captureAlt()
		return
	}
	clear(x.next)
	x.screenLines(x.part, x.partStamp, func(text []byte, stamp int64) {
		k := x.key(text, stamp)
		x.next[k]++
		if x.next[k] > x.onScreen[k] {
			x.add(text, stamp)
		}
	})
	x.onScreen, x.next = x.next, x.onScreen
}

// key identifies a line of the main screen: its text and when it last
// changed. A line taken by a capture and left unchanged has the same key
// when it scrolls off; a line that changed, or a new line with the same
// text, does not.
func (x *Extractor) key(text []byte, stamp int64) uint64 {
	return maphash.Bytes(x.seed, text) ^ uint64(stamp)*0x9e3779b97f4a7c15
}

// captureAlt takes the lines of the alternate screen not taken yet in this
// full-screen session.
func (x *Extractor) captureAlt() {
	if len(x.altSeen) > maxSeen {
		clear(x.altSeen)
	}
	x.screenLines(nil, 0, func(text []byte, stamp int64) {
		h := maphash.Bytes(x.seed, text)
		if _, ok := x.altSeen[h]; !ok {
			x.altSeen[h] = struct{}{}
			x.add(text, stamp)
		}
	})
}

// screenLines calls fn with each non-blank line of the screen showing,
// wrapped rows joined, the first one after prefix.
func (x *Extractor) screenLines(prefix []byte, prefixStamp int64, fn func(text []byte, stamp int64)) {
	_, rows := x.term.Size()
	line := append(x.line[:0], prefix...)
	stamp := prefixStamp
	for y := range rows {
		line = x.term.AppendRow(line, y)
		wrapped, st := x.term.RowInfo(y)
		stamp = max(stamp, st)
		if wrapped && y < rows-1 {
			continue
		}
		if t := bytes.TrimRight(line, " "); len(t) > 0 {
			fn(t, stamp)
		}
		line, stamp = line[:0], 0
	}
	x.line = line
}

// add appends a line to the chunk being built.
func (x *Extractor) add(text []byte, stamp int64) {
	x.text = append(x.text, text...)
	x.text = append(x.text, '\n')
	x.times = append(x.times, float64(stamp)/1e6)
	if len(x.text) >= x.maxBytes {
		x.flush()
	}
}

// flush emits the chunk being built, if it has lines.
func (x *Extractor) flush() {
	if len(x.times) == 0 {
		return
	}
	c := Chunk{Text: string(x.text), Times: x.times, Start: x.times[0], End: x.times[0]}
	for _, t := range x.times {
		c.Start, c.End = min(c.Start, t), max(c.End, t)
	}
	x.text, x.times = x.text[:0], nil
	x.emit(c)
}

// Extract reads a whole recording from r (asciicast v1, v2 or v3) and
// calls emit with its chunks. A malformed event line is skipped; a read
// error or a header that cannot be read ends it with an error. A recording
// cut off in the middle of a line (a live one) ends cleanly before that
// line.
func Extract(r io.Reader, opt Options, emit func(Chunk)) error {
	dec := asciicast.NewDecoder(r)
	h, err := dec.Header()
	if err != nil {
		return fmt.Errorf("screentext: %w", err)
	}
	x := New(h, opt, emit)
	var last error
	for {
		ev, err := dec.NextRaw()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if err == last { // the decoder repeats a read error for ever
				return fmt.Errorf("screentext: %w", err)
			}
			last = err
			continue
		}
		last = nil
		switch string(ev.Code) {
		case asciicast.Output:
			x.Output(ev.Time, ev.Data)
		case asciicast.Resize:
			// An unreadable resize changes nothing.
			x.Event(asciicast.Event{Time: ev.Time, Code: asciicast.Resize, Data: string(ev.Data)})
		}
	}
	x.Close()
	return nil
}
