package s3store

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPruneLanded(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sp := &spool{landed: map[string]time.Time{}, checkBefore: base}
	for i := range 10 {
		sp.landed[string(rune('a'+i))] = base.Add(time.Duration(i) * time.Minute)
	}
	sp.pruneLanded()
	if len(sp.landed) != 5 {
		t.Errorf("%d landed keys after pruning 10, want 5", len(sp.landed))
	}
	for key, start := range sp.landed {
		if start.Before(base.Add(5 * time.Minute)) {
			t.Errorf("kept %s (start %v), one of the older half", key, start)
		}
	}
	if want := base.Add(5 * time.Minute); !sp.checkBefore.Equal(want) {
		t.Errorf("checkBefore = %v, want %v: Create must ask the bucket about pruned starts", sp.checkBefore, want)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		lo, hi time.Duration
	}{
		{name: "first", n: 1, lo: 250 * time.Millisecond, hi: 500 * time.Millisecond},
		{name: "third", n: 3, lo: time.Second, hi: 2 * time.Second},
		{name: "capped", n: 40, lo: 15 * time.Second, hi: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				if d := backoff(500*time.Millisecond, 30*time.Second, tt.n); d < tt.lo || d > tt.hi {
					t.Fatalf("backoff after %d failures = %v, want within [%v, %v]", tt.n, d, tt.lo, tt.hi)
				}
			}
		})
	}
}

func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{
		"node-1/events/2026-03-14/2026-03-14T15-09-26.535897932Z.jsonl:0",
		"node-1/events/2026-03-14/2026-03-14T15-09-26.535897932Z.jsonl:1234",
		"../events/2026-03-14/x.jsonl:0", "node/events/x.jsonl:0", "a:b:c", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		seg, node, day, off, err := parseEventID(id)
		if err != nil {
			return
		}
		if off < 0 || strings.Contains(seg, "..") || strings.HasPrefix(seg, "/") || strings.Contains(seg, "\\") {
			t.Errorf("parseEventID(%q) accepted segment %q offset %d", id, seg, off)
		}
		if want := node + "/events/" + day + "/"; !strings.HasPrefix(seg, want) {
			t.Errorf("parseEventID(%q): segment %q does not start with %q", id, seg, want)
		}
		if seg2, _, _, off2, err := parseEventID(seg + ":" + strconv.FormatInt(off, 10)); err != nil || seg2 != seg || off2 != off {
			t.Errorf("parseEventID(%q) does not round-trip: %q %d %v", id, seg2, off2, err)
		}
	})
}
