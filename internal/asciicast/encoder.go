package asciicast

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Encoder writes an asciicast v2 recording: one header line, then event
// lines. Each call writes exactly one line, ending in '\n', with a single
// Write to the underlying writer, so lines never interleave when the writer
// is shared under a lock.
//
// An Encoder only writes what a Checker accepts: a version 2 header of at
// most 1 MiB, then events with finite times that are not negative and do
// not go back.
// An Encoder is not safe for concurrent use.
type Encoder struct {
	w      io.Writer
	buf    []byte
	header bool    // the header is written
	last   float64 // time of the last event
}

// NewEncoder returns an Encoder that writes to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: w}
}

// WriteHeader writes the header line. A zero Version is written as 2; any
// other version but 2 is an error, as is a second header.
func (e *Encoder) WriteHeader(h Header) error {
	if e.header {
		return errors.New("asciicast: header already written")
	}
	switch h.Version {
	case 0:
		h.Version = 2
	case 2:
	default:
		return fmt.Errorf("asciicast: header version %d: the encoder writes version 2", h.Version)
	}
	b, err := h.MarshalJSON()
	if err != nil {
		return err
	}
	if len(b) > maxHeader {
		return fmt.Errorf("asciicast: header of %d bytes: the limit is %d", len(b), maxHeader)
	}
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("asciicast: write header: %w", err)
	}
	e.header = true
	return nil
}

// WriteEvent writes one event line. The time must be finite, not negative
// and not more than TimeSlack less than the previous event's time.
func (e *Encoder) WriteEvent(ev Event) error {
	if !e.header {
		return errors.New("asciicast: event before the header")
	}
	if math.IsNaN(ev.Time) || math.IsInf(ev.Time, 0) || ev.Time < 0 {
		return fmt.Errorf("asciicast: event time %v: want a finite number ≥ 0", ev.Time)
	}
	if ev.Time < e.last-TimeSlack {
		return fmt.Errorf("asciicast: event time %s is before the previous event's time %s",
			strconv.FormatFloat(ev.Time, 'f', -1, 64), strconv.FormatFloat(e.last, 'f', -1, 64))
	}
	e.last = ev.Time
	// Rounding to microseconds keeps the order of times (two close ones
	// may become equal, which is allowed).
	e.buf = AppendEvent(e.buf[:0], ev)
	e.buf = append(e.buf, '\n')
	if _, err := e.w.Write(e.buf); err != nil {
		return fmt.Errorf("asciicast: write event: %w", err)
	}
	return nil
}
