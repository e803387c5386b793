package recorder_test

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"

	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestNotify: the hook hears of a recording's creation, its growth as it
// becomes durable, its close with the final status, and a stored event,
// each with the key the store uses.
func TestNotify(t *testing.T) {
	var mu sync.Mutex
	type note struct {
		key string
		c   recorder.Change
	}
	var notes []note
	h := start(t, func(s *recorder.Server) {
		s.Notify = func(key string, c recorder.Change) {
			mu.Lock()
			notes = append(notes, note{key, c})
			mu.Unlock()
		}
	})
	body := append(castHeader(t), eventLine(0.5, "hello\r\n")...)
	if _, err := send(t, []netip.AddrPort{h.addr}, body); err != nil {
		t.Fatal(err)
	}
	info, _ := onlyRecording(t, h)
	if err := sessionrecording.SendEvent(h.addr, bytes.NewReader([]byte(`{"type":"kubernetes-api-request","kubernetes":{"Verb":"get"}}`)), dial); err != nil {
		t.Fatal(err)
	}
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		var b bytes.Buffer
		for _, n := range notes {
			b.WriteString(n.key + " " + string(rune('0'+n.c.What)) + " " + string(n.c.Status) + "\n")
		}
		return b.String()
	}
	testutil.WaitForSeen(t, testutil.DefaultWait, "an event notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(notes) > 0 && notes[len(notes)-1].c.What == recorder.EventStored
	}, seen)
	mu.Lock()
	defer mu.Unlock()
	var created, closed int
	for _, n := range notes[:len(notes)-1] {
		if n.key != info.Key {
			t.Errorf("notification for %q, want %q", n.key, info.Key)
		}
		switch n.c.What {
		case recorder.Created:
			created++
			if closed > 0 {
				t.Error("created after closed")
			}
		case recorder.Grew:
			if n.c.Size <= 0 || n.c.Size > int64(len(body)) {
				t.Errorf("grew to %d bytes of %d", n.c.Size, len(body))
			}
		case recorder.Closed:
			closed++
			if n.c.Status != store.StatusComplete || n.c.Size != int64(len(body)) {
				t.Errorf("closed: %+v, want complete with %d bytes", n.c, len(body))
			}
		default:
			t.Errorf("unexpected %+v", n.c)
		}
	}
	if created != 1 || closed != 1 {
		t.Errorf("created %d, closed %d times; want 1 and 1:\n%s", created, closed, seen())
	}
	ev := notes[len(notes)-1]
	got, err := h.st.GetEvent(t.Context(), ev.key)
	if err != nil || ev.c.Event == nil || ev.c.Event.ID != ev.key || ev.c.Event.Node != info.Node || !bytes.Equal(got, ev.c.Event.Data) {
		t.Errorf("event notification %+v does not match the stored event %s (%v)", ev.c.Event, got, err)
	}
}
