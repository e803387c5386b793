package storetest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
)

func (s *suite) testCrash(t *testing.T) {
	st := s.newStoreNoClose(t)
	lines := castLines(400, 90)
	half := `[99.0,"o","a line cut in the mid`

	// A: acked (synced) whole lines, then more that was never synced.
	a := create(t, st, "node-a", base)
	write(t, a, lines, 1000)
	syncW(t, a)
	aUnsynced := castLines(50, 30)[20:]
	write(t, a, aUnsynced, 100)
	aAll := append(slices.Clip(lines), aUnsynced...)

	// C: synced, ending in half a line.
	c := create(t, st, "node-a", base.Add(time.Second))
	cData := append(slices.Clip(lines[:5000]), half...)
	write(t, c, cData, 777)
	syncW(t, c)
	cMain, cTail := cutTail(cData)

	// D: live, nothing written.
	d := create(t, st, "node-b", base)

	// B and E were closed before the crash.
	b := create(t, st, "node-b", base.Add(time.Second))
	write(t, b, lines[:3000], 1000)
	closeW(t, b, store.StatusComplete, "")
	e := create(t, st, "node-b", base.Add(2*time.Second))
	eData := append(slices.Clip(lines[:2000]), half...)
	write(t, e, eData, 1000)
	closeW(t, e, store.StatusFailed, "disk full")
	eMain, eTail := cutTail(eData)

	st2 := s.crash(t, st)
	infos, err := st2.Recover(ctxT(t))
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	slices.SortFunc(infos, func(x, y store.Info) int { return strings.Compare(x.Key, y.Key) })
	gotKeys := infoKeys(infos)
	if diff := cmp.Diff([]string{a.Key(), c.Key(), d.Key()}, gotKeys); diff != "" {
		t.Fatalf("Recover repaired (-want +got):\n%s", diff)
	}
	for _, info := range infos {
		if info.Status != store.StatusInterrupted || info.Reason == "" {
			t.Errorf("Recover: %s has status %q reason %q; want interrupted with a reason", info.Key, info.Status, info.Reason)
		}
		if diff := cmp.Diff(info, stat(t, st2, info.Key)); diff != "" {
			t.Errorf("Recover's Info and Stat disagree (-recover +stat):\n%s", diff)
		}
	}

	t.Run("acked bytes kept, cut at a line", func(t *testing.T) {
		got := readAll(t, st2, a.Key())
		tail, err := s.h.ReadRaw(t, st2, store.TailKey(a.Key()))
		if err != nil && !isNotFound(err) {
			t.Fatalf("ReadRaw(tail): %v", err)
		}
		kept := append(slices.Clip(got), tail...)
		switch {
		case !bytes.HasPrefix(aAll, kept):
			t.Errorf("recording plus tail is not a prefix of what was written: %s", firstDiff(kept, aAll[:min(len(kept), len(aAll))]))
		case len(got) < len(lines):
			t.Errorf("kept %d bytes, fewer than the %d acked", len(got), len(lines))
		case len(got) > 0 && got[len(got)-1] != '\n':
			t.Errorf("recording does not end at a line end: ...%q", got[max(0, len(got)-20):])
		}
	})
	t.Run("synced half line moved to tail", func(t *testing.T) {
		if got := readAll(t, st2, c.Key()); !bytes.Equal(got, cMain) {
			t.Errorf("recording: %s", firstDiff(got, cMain))
		}
		if tail, err := s.h.ReadRaw(t, st2, store.TailKey(c.Key())); err != nil || !bytes.Equal(tail, cTail) {
			t.Errorf("tail = %q, %v; want %q", tail, err, cTail)
		}
	})
	t.Run("empty live recording", func(t *testing.T) {
		if got := readAll(t, st2, d.Key()); len(got) != 0 {
			t.Errorf("recording holds %d bytes, want none", len(got))
		}
	})
	t.Run("closed recordings untouched", func(t *testing.T) {
		if got := readAll(t, st2, b.Key()); !bytes.Equal(got, lines[:3000]) {
			t.Errorf("complete recording: %s", firstDiff(got, lines[:3000]))
		}
		if info := stat(t, st2, b.Key()); info.Status != store.StatusComplete {
			t.Errorf("complete recording has status %q", info.Status)
		}
		if got := readAll(t, st2, e.Key()); !bytes.Equal(got, eMain) {
			t.Errorf("failed recording: %s", firstDiff(got, eMain))
		}
		if info := stat(t, st2, e.Key()); info.Status != store.StatusFailed || info.Reason != "disk full" {
			t.Errorf("failed recording: status %q reason %q", info.Status, info.Reason)
		}
		if tail, err := s.h.ReadRaw(t, st2, store.TailKey(e.Key())); err != nil || !bytes.Equal(tail, eTail) {
			t.Errorf("failed recording's tail = %q, %v; want %q", tail, err, eTail)
		}
	})
	t.Run("listed", func(t *testing.T) {
		got := list(t, st2, store.Filter{})
		want := []string{a.Key(), c.Key(), b.Key(), e.Key(), d.Key()}
		slices.Sort(want)
		if diff := cmp.Diff(want, infoKeys(got)); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
		for _, info := range got {
			if info.Status == store.StatusLive {
				t.Errorf("%s still live after Recover", info.Key)
			}
		}
	})
	t.Run("second Recover repairs nothing", func(t *testing.T) {
		again, err := st2.Recover(ctxT(t))
		if err != nil || len(again) != 0 {
			t.Errorf("second Recover = %v, %v; want nothing", infoKeys(again), err)
		}
	})
	t.Run("new recordings get new keys", func(t *testing.T) {
		w := create(t, st2, "node-a", base)
		defer closeW(t, w, store.StatusComplete, "")
		for _, old := range []store.Writer{a, b, c, d, e} {
			if w.Key() == old.Key() {
				t.Errorf("Create after restart reused key %q", w.Key())
			}
		}
	})
}

// newStoreNoClose returns a fresh store that the test hands to Crash
// instead of closing.
func (s *suite) newStoreNoClose(t *testing.T) store.Store {
	t.Helper()
	return s.h.New(t)
}

func (s *suite) testCrashEvents(t *testing.T) {
	st := s.newStoreNoClose(t)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	evs := putEvents(t, st, "proxy-1", 50, at)

	st2 := s.crash(t, st)
	if _, err := st2.Recover(ctxT(t)); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	checkGetEvents(t, st2, evs)
	if diff := cmp.Diff(evs, listEvents(t, st2, "proxy-1", time.Time{}, time.Time{})); diff != "" {
		t.Errorf("ListEvents after crash (-want +got):\n%s", diff)
	}
	more := putEvents(t, st2, "proxy-1", 10, func(i int) time.Time { return at(50 + i) })
	for _, ev := range more {
		for _, old := range evs {
			if ev.ID == old.ID {
				t.Errorf("event id %q reused after restart", ev.ID)
			}
		}
	}
	all := append(slices.Clip(evs), more...)
	checkGetEvents(t, st2, all)
	if diff := cmp.Diff(all, listEvents(t, st2, "proxy-1", time.Time{}, time.Time{})); diff != "" {
		t.Errorf("ListEvents after restart and more events (-want +got):\n%s", diff)
	}
}

func (s *suite) testReaderView(t *testing.T) {
	st := s.newStore(t)
	lines := castLines(2000, 80)
	partial := append(slices.Clip(lines), `[1,"o","ha`...)
	tests := []struct {
		node   string
		data   []byte
		status store.Status
		reason string
	}{
		{node: "node-a", data: lines, status: store.StatusComplete},
		{node: "node-a", data: partial, status: store.StatusFailed, reason: "disk full"},
		{node: "node-b", data: []byte("junk\x00"), status: store.StatusMalformed, reason: "not asciicast"},
		{node: "node-b", data: partial, status: store.StatusInterrupted, reason: "gone"},
	}
	for i, tt := range tests {
		w := create(t, st, tt.node, base.Add(time.Duration(i)*time.Second))
		write(t, w, tt.data, 4096)
		closeW(t, w, tt.status, tt.reason)
	}
	evs := putEvents(t, st, "node-a", 100, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) })

	r := s.h.Reader(t, st)
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close reader: %v", err)
		}
	}()
	want := list(t, st, store.Filter{})
	if diff := cmp.Diff(want, list(t, r, store.Filter{})); diff != "" {
		t.Errorf("reader's List (-writer +reader):\n%s", diff)
	}
	if diff := cmp.Diff(want[:1], list(t, r, store.Filter{Node: "node-a", Until: base.Add(time.Second)})); diff != "" {
		t.Errorf("reader's List with filter (-writer +reader):\n%s", diff)
	}
	for _, info := range want {
		if diff := cmp.Diff(info, stat(t, r, info.Key)); diff != "" {
			t.Errorf("reader's Stat (-writer +reader):\n%s", diff)
		}
		if got, want := readAll(t, r, info.Key), readAll(t, st, info.Key); !bytes.Equal(got, want) {
			t.Errorf("reader's %s: %s", info.Key, firstDiff(got, want))
		}
	}
	checkGetEvents(t, r, evs)
	if diff := cmp.Diff(evs, listEvents(t, r, "node-a", time.Time{}, time.Time{})); diff != "" {
		t.Errorf("reader's ListEvents (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(evs[10:20], listEvents(t, r, "node-a", evs[10].At, evs[20].At)); diff != "" {
		t.Errorf("reader's ListEvents window (-want +got):\n%s", diff)
	}
}
