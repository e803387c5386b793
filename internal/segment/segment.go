// Package segment cuts a recording into snapshot segments in
// asciinema-player's "segmented" format (player 3.17,
// src/driver/recording/segmented.js), so the player can seek anywhere in a
// large recording by fetching one segment, never the whole file.
//
// Each segment opens with a snapshot: the terminal size and an ANSI dump of
// the screen at the segment's start (internal/vt's Dump of the state after
// every earlier event), then carries the events from its start to the
// next segment's. The index document lists the segments' start times and
// URLs, the duration and the markers. Everything is checked against what
// the player's loader demands: the first segment starts at 0, starts
// strictly increase and are the times of their segments' first events,
// events never go back and stay inside their segment, the last event is at
// the duration.
//
// What the player gets differs from the stored recording only where the
// player would misread it: times are given to the microsecond, as the
// events are written; times that step back (Tailscale's senders write
// a few slightly out of order) are raised to the previous time; resizes of
// recordings from Tailscale's Kubernetes proxy ("ROWSxCOLS") are written
// "COLSxROWS"; input ("i") and exit ("x") events are left out.
//
// A live view for a viewer who joins late is the same idea without
// segments: a vt.Terminal fed as the recording arrives, whose Dump is sent
// first.
package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/vt"
)

// Options tune where segments are cut. The zero value is usable.
type Options struct {
	// Span: a segment is cut at the first event at least Span seconds after
	// its start. Zero means 60.
	Span float64
	// MaxBytes: a segment is cut at the first event after its events' data
	// reach MaxBytes. Zero means 1 MiB.
	MaxBytes int
	// URL names segment i in the index. Nil means "<i>.json", relative to
	// the index's own URL.
	URL func(i int) string
}

// Segment is one segment: a snapshot of the terminal at Start, then the
// events from Start on.
type Segment struct {
	Index      int     // its place, from 0
	Start      float64 // seconds since the recording's start
	Cols, Rows int     // the terminal's size at Start
	Init       []byte  // output that recreates the screen at Start on a fresh terminal of that size
	Events     []asciicast.Event
}

// MarshalJSON writes the segment document the player fetches:
// {"snapshot":{"cols":C,"rows":R,"init":"..."},"events":[[t,"o","..."],...]}.
func (s *Segment) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(nil)
}

// AppendJSON appends the segment document to dst.
func (s *Segment) AppendJSON(dst []byte) ([]byte, error) {
	init, err := json.Marshal(string(s.Init))
	if err != nil {
		return nil, err
	}
	dst = append(dst, `{"snapshot":{"cols":`...)
	dst = strconv.AppendInt(dst, int64(s.Cols), 10)
	dst = append(dst, `,"rows":`...)
	dst = strconv.AppendInt(dst, int64(s.Rows), 10)
	dst = append(dst, `,"init":`...)
	dst = append(dst, init...)
	dst = append(dst, `},"events":[`...)
	for i, ev := range s.Events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = asciicast.AppendEvent(dst, ev)
	}
	return append(dst, "]}"...), nil
}

// Index is the index document the player loads first.
type Index struct {
	Version  int      `json:"version"` // 1
	Duration float64  `json:"duration"`
	Term     Term     `json:"term"`
	Segments []Ref    `json:"segments"`
	Markers  []Marker `json:"markers,omitempty"`
}

// Term is the terminal of the index: the size at the start, and the theme
// of the recording's header, if it has one.
type Term struct {
	Cols  int             `json:"cols"`
	Rows  int             `json:"rows"`
	Theme json.RawMessage `json:"theme,omitempty"`
}

// Ref points at a segment.
type Ref struct {
	Start float64 `json:"start"`
	URL   string  `json:"url"`
}

// Marker is a marker event: [time, label].
type Marker struct {
	Time  float64
	Label string
}

// MarshalJSON writes [time, label].
func (m Marker) MarshalJSON() ([]byte, error) { return json.Marshal([]any{m.Time, m.Label}) }

// ErrEmpty is returned for a recording with no event the player shows: the
// format cannot express it.
var ErrEmpty = errors.New("segment: the recording has no output, resize or marker events")

// Cutter cuts a recording into segments as its events arrive.
type Cutter struct {
	opt        Options
	kubernetes bool
	emit       func(*Segment) error
	term       *vt.Terminal
	index      Index

	cur     *Segment
	pending *Segment // complete, emitted once cur holds an event after its start
	bytes   int
	last    float64
	buf     []byte
	err     error
}

// NewCutter returns a Cutter for a recording whose header is h. emit is
// called with each segment once it is complete; the segment is not used
// again after emit returns. An error from emit stops the Cutter and is
// returned by Event and Close.
func NewCutter(h asciicast.Header, opt Options, emit func(*Segment) error) *Cutter {
	if opt.Span <= 0 {
		opt.Span = 60
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 1 << 20
	}
	if opt.URL == nil {
		opt.URL = func(i int) string { return strconv.Itoa(i) + ".json" }
	}
	cols, rows := h.Width, h.Height
	if cols <= 0 || rows <= 0 {
		cols, rows = 80, 24
	}
	c := &Cutter{opt: opt, kubernetes: h.ResizeRowsFirst(), emit: emit, term: vt.New(cols, rows)}
	cols, rows = c.term.Size()
	c.index = Index{Version: 1, Term: Term{Cols: cols, Rows: rows, Theme: h.Theme}}
	c.cur = &Segment{Cols: cols, Rows: rows}
	return c
}

// Event adds the recording's next event.
func (c *Cutter) Event(ev asciicast.Event) error {
	if c.err != nil {
		return c.err
	}
	switch ev.Code {
	case asciicast.Output, asciicast.Marker:
	case asciicast.Resize:
		cols, rows, err := asciicast.ParseResize(ev.Data, c.kubernetes)
		if err != nil {
			return nil // the player could not read it either: left out
		}
		ev.Data = strconv.Itoa(cols) + "x" + strconv.Itoa(rows)
	default:
		return nil
	}
	if ev.Time < c.last || ev.Time != ev.Time {
		ev.Time = c.last
	}
	ev.Time = c.round(ev.Time)
	cur := c.cur
	// Cut only where time moves on, so every event of a segment comes
	// before the next one's start. (A cut may fall inside an escape
	// sequence, as output is split anywhere: the snapshot ends with its
	// first part.)
	if len(cur.Events) > 0 && ev.Time > c.last &&
		(ev.Time-cur.Start >= c.opt.Span || c.bytes >= c.opt.MaxBytes) {
		if c.err = c.flush(); c.err != nil {
			return c.err
		}
		c.pending = cur
		c.bytes = 0
		cols, rows := c.term.Size()
		c.cur = &Segment{Index: cur.Index + 1, Start: ev.Time, Cols: cols, Rows: rows, Init: c.term.Dump()}
		cur = c.cur
	} else if ev.Time > cur.Start {
		// The current segment now ends after its start: the one before
		// it cannot be the last, whose start must come before the end.
		if c.err = c.flush(); c.err != nil {
			return c.err
		}
	}
	c.last = ev.Time
	cur.Events = append(cur.Events, ev)
	c.bytes += len(ev.Data)
	switch ev.Code {
	case asciicast.Output:
		c.term.WriteString(ev.Data)
	case asciicast.Resize:
		cols, rows, _ := asciicast.ParseResize(ev.Data, false)
		c.term.Resize(cols, rows)
	case asciicast.Marker:
		c.index.Markers = append(c.index.Markers, Marker{Time: ev.Time, Label: ev.Data})
	}
	return nil
}

// round returns t as the events are written: to the microsecond. Every
// time in the index is rounded so, or the player, which compares a
// segment's start with its first event's time, would refuse it.
func (c *Cutter) round(t float64) float64 {
	c.buf = asciicast.AppendEvent(c.buf[:0], asciicast.Event{Time: t})
	r, err := strconv.ParseFloat(string(c.buf[1:bytes.IndexByte(c.buf, ',')]), 64)
	if err != nil {
		return t // cannot happen: AppendEvent writes a plain number
	}
	return r
}

// flush emits the pending segment, if any, and records it in the index.
func (c *Cutter) flush() error {
	s := c.pending
	if s == nil {
		return nil
	}
	c.pending = nil
	c.index.Segments = append(c.index.Segments, Ref{Start: s.Start, URL: c.opt.URL(s.Index)})
	return c.emit(s)
}

// Close emits the last segment and returns the index. It returns ErrEmpty
// when no event the player shows came.
func (c *Cutter) Close() (*Index, error) {
	if c.err != nil {
		return nil, c.err
	}
	if len(c.cur.Events) == 0 {
		return nil, ErrEmpty
	}
	if p := c.pending; p != nil {
		// The last segment would start at the end: its events (all at
		// that time) join the segment before it.
		p.Events = append(p.Events, c.cur.Events...)
		c.cur = p
	}
	c.pending = c.cur
	if c.err = c.flush(); c.err != nil {
		return nil, c.err
	}
	c.err = errors.New("segment: Cutter closed")
	c.index.Duration = c.last
	return &c.index, nil
}

// Cut reads a whole recording and cuts it into segments. A malformed event
// line is skipped, as in screentext.Extract; a read error ends it.
func Cut(r io.Reader, opt Options, emit func(*Segment) error) (*Index, error) {
	dec := asciicast.NewDecoder(r)
	h, err := dec.Header()
	if err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	c := NewCutter(h, opt, emit)
	var last error
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if err == last {
				return nil, fmt.Errorf("segment: %w", err)
			}
			last = err
			continue
		}
		last = nil
		if err := c.Event(ev); err != nil {
			return nil, err
		}
	}
	return c.Close()
}
