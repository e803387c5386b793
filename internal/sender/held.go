package sender

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strconv"

	"github.com/reel-rec/reel/internal/asciicast"
)

// StartHeld is Start for a session whose terminal size is not known yet
// (kubectl sends it only once the stream is up): the recorder is reached
// and the upload started as by Start, so a failure to record is known
// before the session begins, but the header is held back until
// ReleaseHeader gives the size. Events written meanwhile wait behind it.
// Close releases a header still held, with h's size.
func (c *Client) StartHeld(ctx context.Context, recorders []netip.AddrPort, h asciicast.Header) (*Recording, error) {
	return c.startCast(ctx, recorders, h, true)
}

// ReleaseHeader sends the header held by StartHeld, with the terminal size
// cols×rows when both are positive (else the size given to StartHeld). It
// does nothing for a recording started by Start, or after the first call.
func (r *Recording) ReleaseHeader(cols, rows int) {
	r.mu.Lock()
	released := r.releaseLocked(cols, rows)
	r.mu.Unlock()
	if released {
		r.signal()
	}
}

// releaseLocked makes the held header line; r.mu is held.
func (r *Recording) releaseLocked(cols, rows int) bool {
	if !r.hold {
		return false
	}
	r.hold = false
	h := *r.header
	if cols > 0 && rows > 0 {
		h.Width, h.Height = cols, rows
	}
	head, err := h.MarshalJSON()
	if err != nil { // cannot happen: Start marshalled the same header
		head, _ = r.header.MarshalJSON()
	}
	r.heldHead = append(head, '\n')
	return true
}

// Exit records the session's exit status as an "x" event (asciicast v3's
// code; v2 players skip events they do not know).
func (r *Recording) Exit(status int) error {
	return r.add('x', strconv.AppendInt(nil, int64(status), 10))
}

// Binary records output that is not valid UTF-8 (a file sent through
// "kubectl cp", say), which an "o" event cannot hold byte for byte: it is
// stored as a "b" event whose data is the standard base64 encoding of p.
// The session's output, byte for byte, is then the "o" data (UTF-8) and
// the decoded "b" data, in event order. Players skip "b" events.
func (r *Recording) Binary(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	return r.add('b', base64.StdEncoding.AppendEncode(nil, p))
}
