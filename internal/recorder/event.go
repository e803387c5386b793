package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/reel-rec/reel/internal/store"
)

// unsizedEvent bounds an event body sent without a Content-Length.
// Tailscale's senders always send one.
const unsizedEvent = 1 << 20

// postEvent stores one event. What it holds in memory is bounded: the body
// is refused past MaxEventSize, read into one buffer of its announced
// length (never grown past MaxEventSize), within EventTimeout, and only
// once EventMemory has room for it.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) {
	if s.shutting.Load() {
		http.Error(w, "reel recorder: shutting down; try another recorder", http.StatusServiceUnavailable)
		return
	}
	node, err := s.Identify(r)
	if err != nil {
		s.Metrics.errors.add("identify")
		http.Error(w, "reel recorder: cannot identify sender: "+err.Error(), http.StatusForbidden)
		return
	}
	tooLarge := func() {
		s.Metrics.errors.add("event_too_large")
		http.Error(w, fmt.Sprintf("reel recorder: event larger than %d bytes", s.MaxEventSize), http.StatusRequestEntityTooLarge)
	}
	if r.ContentLength > s.MaxEventSize {
		tooLarge()
		return
	}
	// Reserve what the body may hold, and a byte to see that it holds
	// more. A body of unknown length reserves at most unsizedEvent, so
	// that a few senders trickling such bodies cannot take all of
	// EventMemory.
	want, size := min(s.MaxEventSize, unsizedEvent)+1, int64(64<<10)
	if r.ContentLength >= 0 {
		want, size = r.ContentLength+1, r.ContentLength+1
	}
	if err := s.eventMem.Acquire(r.Context(), want); err != nil {
		return // the sender went away while waiting
	}
	defer s.eventMem.Release(want)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.EventTimeout))
	body, err := readBounded(r.Body, int(size), int(want))
	if err != nil {
		s.Metrics.errors.add("event_read")
		http.Error(w, "reel recorder: reading event: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case int64(len(body)) > s.MaxEventSize || (r.ContentLength >= 0 && int64(len(body)) > r.ContentLength):
		tooLarge()
		return
	case int64(len(body)) == want:
		s.Metrics.errors.add("event_too_large")
		http.Error(w, fmt.Sprintf("reel recorder: an event larger than %d bytes needs a Content-Length", unsizedEvent), http.StatusLengthRequired)
		return
	}
	rc.SetReadDeadline(time.Time{})
	if err := checkEvent(body); err != nil {
		s.Metrics.errors.add("event_malformed")
		s.Log.Warn("refused malformed event", "node", node, "remote", r.RemoteAddr, "err", err)
		http.Error(w, "reel recorder: malformed event: "+err.Error(), http.StatusBadRequest)
		return
	}
	at := s.Now()
	id, err := s.Store.PutEvent(r.Context(), node, at, body)
	if err != nil {
		s.Metrics.errors.add("event_store")
		s.Log.Error("storing event failed", "node", node, "err", err)
		http.Error(w, "reel recorder: storing event: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.Metrics.events.Add(1)
	s.notify(id, Change{What: EventStored, Event: &store.Event{ID: id, Node: node, At: at, Data: body}})
	s.Log.Debug("event stored", "node", node, "id", id)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"id\":%q}\n", id)
}

// readBounded reads r to EOF, or until it has limit bytes, into a buffer
// that starts at size bytes and never grows past limit.
func readBounded(r io.Reader, size, limit int) ([]byte, error) {
	b := make([]byte, 0, min(size, limit))
	for {
		if len(b) == cap(b) {
			if len(b) >= limit {
				return b, nil
			}
			nb := make([]byte, len(b), min(max(2*cap(b), 512), limit))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// checkEvent accepts one JSON object, in valid UTF-8, whose "type" (spelt
// exactly so, once) is a non-empty string.
//
// Invalid UTF-8 is refused rather than stored: JSON text must be UTF-8
// (RFC 8259, section 8.1), so a line holding it makes the whole events
// file unreadable to strict readers; Tailscale's senders build events with
// encoding/json, which never writes it, so only a broken or hostile sender
// does; and rewriting it (U+FFFD) would store something other than what was
// sent. The sender is told at once, with the offset of the first bad byte.
func checkEvent(body []byte) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("not valid UTF-8 (first bad byte at offset %d); JSON must be UTF-8", invalidUTF8At(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	types := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not a JSON object: %w", err)
		}
		if tok != "type" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("not a JSON object: %w", err)
			}
			continue
		}
		types++
		var typ string
		if err := dec.Decode(&typ); err != nil || typ == "" {
			return errors.New(`"type" must be a non-empty string`)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	switch types {
	case 0:
		return errors.New(`missing "type"`)
	case 1:
		return nil
	}
	return errors.New(`more than one "type"`)
}

// invalidUTF8At is the offset of the first byte of b that is not part of a
// valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
