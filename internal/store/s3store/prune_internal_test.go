package s3store

import (
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
