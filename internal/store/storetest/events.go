package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
)

// putEvents stores n events for node, the i-th received at at(i), and
// returns them as ListEvents should yield them.
func putEvents(t *testing.T, st store.Store, node string, n int, at func(i int) time.Time) []store.Event {
	t.Helper()
	evs := make([]store.Event, n)
	for i := range n {
		data := fmt.Appendf(nil, `{"type":"kubernetes-api-request","node":%q,"n":%d,"request":{"method":"GET","path":"/api/v1/pods"}}`, node, i)
		id, err := st.PutEvent(ctxT(t), node, at(i), data)
		if err != nil {
			t.Fatalf("PutEvent(%q, #%d): %v", node, i, err)
		}
		evs[i] = store.Event{ID: id, Node: node, At: at(i).UTC(), Data: data}
	}
	return evs
}

func listEvents(t *testing.T, st store.Store, node string, since, until time.Time) []store.Event {
	t.Helper()
	out := []store.Event{}
	for ev, err := range st.ListEvents(ctxT(t), node, since, until) {
		if err != nil {
			t.Fatalf("ListEvents(%q, %v, %v): %v", node, since, until, err)
		}
		out = append(out, ev)
	}
	return out
}

// checkGetEvents checks that GetEvent finds every event by its id.
func checkGetEvents(t *testing.T, st store.Store, evs []store.Event) {
	t.Helper()
	for _, ev := range evs {
		got, err := st.GetEvent(ctxT(t), ev.ID)
		if err != nil {
			t.Errorf("GetEvent(%q): %v", ev.ID, err)
			continue
		}
		if !bytes.Equal(got, ev.Data) {
			t.Errorf("GetEvent(%q) = %s, want %s", ev.ID, got, ev.Data)
		}
	}
}

func (s *suite) testEvents(t *testing.T) {
	st := s.newStore(t)
	// 1,000 events 37 s apart: about ten hours, across a UTC midnight.
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 37 * time.Second) }
	evs := putEvents(t, st, "proxy-1", 1000, at)
	other := putEvents(t, st, "proxy-2", 10, at)

	ids := map[string]bool{}
	for _, ev := range append(slices.Clip(evs), other...) {
		if ids[ev.ID] {
			t.Errorf("event id %q returned twice", ev.ID)
		}
		ids[ev.ID] = true
	}
	checkGetEvents(t, st, evs)
	checkGetEvents(t, st, other)

	midnight := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		node         string
		since, until time.Time
		want         []store.Event
	}{
		{name: "all", node: "proxy-1", want: evs},
		{name: "other node", node: "proxy-2", want: other},
		{name: "window", node: "proxy-1", since: at(100), until: at(200), want: evs[100:200]},
		{name: "since only", node: "proxy-1", since: at(990), want: evs[990:]},
		{name: "until only", node: "proxy-1", until: at(5), want: evs[:5]},
		{name: "between events", node: "proxy-1", since: at(10).Add(time.Second), until: at(12).Add(time.Second), want: evs[11:13]},
		{name: "across midnight", node: "proxy-1", since: midnight.Add(-time.Minute), until: midnight.Add(time.Minute), want: evsAround(evs, midnight.Add(-time.Minute), midnight.Add(time.Minute))},
		{name: "after midnight", node: "proxy-1", since: midnight, want: evsAround(evs, midnight, time.Time{})},
		{name: "empty window", node: "proxy-1", since: at(3), until: at(3), want: []store.Event{}},
		{name: "before all", node: "proxy-1", until: base, want: []store.Event{}},
		{name: "no events", node: "proxy-3", want: []store.Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.want) == 0 && tt.want == nil {
				t.Fatal("bad test: want is nil")
			}
			got := listEvents(t, st, tt.node, tt.since, tt.until)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ListEvents(%q, %v, %v) (-want +got):\n%s", tt.node, tt.since, tt.until, diff)
			}
		})
	}
	if n := len(evsAround(evs, midnight, time.Time{})); n == 0 || n == len(evs) {
		t.Errorf("bad test: %d of %d events after midnight; want events on both days", n, len(evs))
	}

	t.Run("concurrent", func(t *testing.T) {
		const n = 200
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ids[i], errs[i] = st.PutEvent(ctxT(t), "proxy-4", base.Add(time.Duration(i)*time.Millisecond), fmt.Appendf(nil, `{"n":%d}`, i))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, id := range ids {
			if seen[id] {
				t.Errorf("id %q returned twice", id)
			}
			seen[id] = true
			if got, err := st.GetEvent(ctxT(t), id); err != nil || string(got) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Errorf("GetEvent(%q) = %s, %v; want {\"n\":%d}", id, got, err, i)
			}
		}
		if got := listEvents(t, st, "proxy-4", time.Time{}, time.Time{}); len(got) != n {
			t.Errorf("ListEvents(proxy-4) = %d events, want %d", len(got), n)
		}
	})
}

// evsAround returns the events received in [since, until).
func evsAround(evs []store.Event, since, until time.Time) []store.Event {
	out := []store.Event{}
	for _, ev := range evs {
		if !ev.At.Before(since) && (until.IsZero() || ev.At.Before(until)) {
			out = append(out, ev)
		}
	}
	return out
}
