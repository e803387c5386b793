package review

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
)

// Recording is a stored recording opened for reading.
type Recording struct {
	Info store.Info
	store.Reader
}

// Open opens the recording key in st, with its Info. A key that is not in
// the store is an error that wraps store.ErrNotFound.
func Open(ctx context.Context, st store.Store, key string) (*Recording, error) {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	rd, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &Recording{Info: info, Reader: rd}, nil
}

// Events reads a recording's events for replay, in any asciicast version
// (v1 and v3 are converted as asciicast.Decoder does). Lines that are not
// events are skipped and counted, so that what can be shown of a
// malformed recording is shown; a read error ends the events.
type Events struct {
	dec     *asciicast.Decoder
	rd      *errReader
	skipped int   // lines that are not events
	first   error // why the first of them is not
}

// NewEvents reads events from r, which starts at the header.
func NewEvents(r io.Reader) *Events {
	rd := &errReader{r: r}
	return &Events{dec: asciicast.NewDecoder(rd), rd: rd}
}

// Header returns the recording's header, reading it first if needed.
func (e *Events) Header() (asciicast.Header, error) { return e.dec.Header() }

// Next returns the next event, or io.EOF at the end.
func (e *Events) Next() (asciicast.Event, error) {
	var prev error
	for {
		ev, err := e.dec.Next()
		if err == nil || err == io.EOF || e.rd.err != nil || err == prev {
			return ev, err
		}
		if e.skipped == 0 {
			e.first = err
		}
		e.skipped++
		prev = err // the same error twice: the decoder is stuck on it
	}
}

// Truncated reports that the recording ends in a partial line, which was
// not returned (see asciicast.Decoder.Truncated).
func (e *Events) Truncated() bool { return e.dec.Truncated() }

// Skipped reports the lines Next skipped, or nil.
func (e *Events) Skipped() error {
	switch e.skipped {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("a line is not an asciicast event, skipped: %w", e.first)
	}
	return fmt.Errorf("%d lines are not asciicast events, skipped; the first: %w", e.skipped, e.first)
}

// errReader remembers the error of a failed Read, other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}
