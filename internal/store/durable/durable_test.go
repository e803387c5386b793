package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSyncGroupShares: many concurrent callers are covered by far fewer
// syncs, and each caller's sync started after it called.
func TestSyncGroupShares(t *testing.T) {
	var g SyncGroup
	var syncs atomic.Int64 // syncs started
	const callers = 64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := syncs.Load()
			err := g.Do(func() error {
				syncs.Add(1)
				time.Sleep(5 * time.Millisecond)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			if syncs.Load() <= before {
				t.Errorf("Do returned without any sync starting after the call")
			}
		}()
	}
	wg.Wait()
	if n := syncs.Load(); n < 1 || n > callers/4 {
		t.Errorf("%d callers caused %d syncs; want sharing", callers, n)
	}
}

func TestSyncGroupErrorIsSticky(t *testing.T) {
	var g SyncGroup
	boom := errors.New("EIO")
	if err := g.Do(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("first Do = %v, want %v", err, boom)
	}
	if err := g.Do(func() error { return nil }); !errors.Is(err, boom) {
		t.Errorf("Do after a failed sync = %v; a later success must not hide the lost write", err)
	}
}

func TestWriteFileAndLastNewline(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b")
	if err := MkdirAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("line\n", 30000) + "partial"
	if err := WriteFile(p, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != body {
		t.Fatalf("WriteFile did not replace the file")
	}
	if _, err := os.Stat(p + ".tmp"); err == nil {
		t.Error("temp file left behind")
	}
	f, _ := os.Open(p)
	defer f.Close()
	for _, tc := range []struct {
		size, want int64
	}{
		{int64(len(body)), int64(len(body) - len("partial"))},
		{5, 5},
		{4, 0},
		{0, 0},
	} {
		if got, err := LastNewline(f, tc.size); err != nil || got != tc.want {
			t.Errorf("LastNewline(size %d) = %d, %v; want %d", tc.size, got, err, tc.want)
		}
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Errorf("Remove of a missing file: %v", err)
	}
}
