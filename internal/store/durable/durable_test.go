package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestSyncGroupShares: many concurrent callers are covered by far fewer
// syncs, and each caller's sync started after it called.
func TestSyncGroupShares(t *testing.T) {
	var g SyncGroup
	var syncs atomic.Int64   // syncs started
	var arrived atomic.Int64 // callers about to call Do
	const callers = 64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			before := syncs.Load()
			arrived.Add(1)
			err := g.Do(func() error {
				if syncs.Add(1) == 1 {
					// The first sync lasts until every caller has come, so
					// that they all overlap it, as they do on a busy disk.
					if err := testutil.Poll(testutil.DefaultWait, func() bool { return arrived.Load() == callers }); err != nil {
						t.Errorf("waiting for every caller to arrive: %v", err)
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			if syncs.Load() <= before {
				t.Errorf("Do returned without any sync starting after the call")
			}
		})
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

// sparse makes a file of size bytes at p that holds data only where data
// says (offset -> bytes); the rest is holes.
func sparse(t *testing.T, p string, size int64, data map[int64]string) *os.File {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt([]byte(b), off); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestLastNewlineSkipsHoles(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name string
		size int64
		data map[int64]string
		want int64
	}{
		{"newline before a long hole", 2 * gib, map[int64]string{0: "header\n[1"}, 7},
		{"data after the hole", 2 * gib, map[int64]string{0: "a\n", 2*gib - 3: "xyz"}, 2},
		{"newline after the hole", gib, map[int64]string{0: "a\n", gib - 70000: "b\nc"}, gib - 70000 + 2},
		{"newline between holes", gib, map[int64]string{300 << 20: "\n"}, 300<<20 + 1},
		{"only a hole", gib, nil, 0},
		{"newline at the very end", gib, map[int64]string{gib - 1: "\n"}, gib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sparse(t, filepath.Join(t.TempDir(), "f"), tt.size, tt.data)
			got, err := LastNewline(f, tt.size)
			if err != nil || got != tt.want {
				t.Errorf("LastNewline = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestCopyRange: the bytes are copied exactly, holes stay holes, and the
// source's offset does not move.
func TestCopyRange(t *testing.T) {
	dir := t.TempDir()
	const size = 1<<30 + 5
	data := map[int64]string{0: "start", 100: "some data", 512 << 20: "middle", size - 5: "end!!"}
	src := sparse(t, filepath.Join(dir, "src"), size, data)
	if _, err := src.Seek(42, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		off, n  int64
		samples map[int64]string // offset in the copy -> bytes
	}{
		{"whole", 0, size, map[int64]string{0: "start", 100: "some data", 512 << 20: "middle", size - 5: "end!!", 1000: "\x00\x00"}},
		{"from the middle of data", 102, size - 102, map[int64]string{0: "me data", 512<<20 - 102: "middle", size - 107: "end!!"}},
		{"ending in a hole", 3, 200, map[int64]string{0: "rt", 97: "some data", 198: "\x00\x00"}},
		{"only a hole", 1 << 20, 1 << 20, map[int64]string{0: "\x00", 1<<20 - 1: "\x00"}},
		{"empty", 7, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "dst")
			if err := CopyRange(p, src, tt.off, tt.n); err != nil {
				t.Fatal(err)
			}
			dst, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(dst.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != tt.n {
				t.Errorf("copy is %d bytes, want %d", st.Size, tt.n)
			}
			if used := st.Blocks * 512; used > 64<<20 {
				t.Errorf("copy uses %d MiB of disk: holes were filled", used>>20)
			}
			got, want := map[int64]string{}, map[int64]string{}
			for off, b := range tt.samples {
				buf := make([]byte, len(b))
				if _, err := dst.ReadAt(buf, off); err != nil {
					t.Fatalf("read copy at %d: %v", off, err)
				}
				got[off], want[off] = string(buf), b
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("copy (-want +got):\n%s", diff)
			}
			if pos, _ := src.Seek(0, io.SeekCurrent); pos != 42 {
				t.Errorf("source offset moved to %d", pos)
			}
			if _, err := os.Stat(p + ".tmp"); err == nil {
				t.Error("temp file left behind")
			}
		})
	}
}

// TestLock: a second Lock fails with a *store.InUseError naming the holder;
// once it lets go, the lock can be taken.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	f, err := Lock(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(p, dir)
	var iu *store.InUseError
	if !errors.Is(err, store.ErrInUse) || !errors.As(err, &iu) {
		t.Fatalf("second Lock: %v; want a *store.InUseError", err)
	}
	if diff := cmp.Diff(&store.InUseError{Dir: dir, PID: os.Getpid()}, iu); diff != "" {
		t.Errorf("second Lock (-want +got):\n%s", diff)
	}
	f.Close()
	f, err = Lock(p, dir)
	if err != nil {
		t.Fatalf("Lock after the holder let go: %v", err)
	}
	f.Close()
}

func TestReleaseAtLeast(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.44-fc-v1252": true, "5.8.0": true, "5.10": true, "10.0.0": true,
		"5.7.19": false, "4.19.0-13-amd64": false, "": false, "linux": false,
	} {
		if got := releaseAtLeast(release, 5, 8); got != want {
			t.Errorf("releaseAtLeast(%q, 5, 8) = %v, want %v", release, got, want)
		}
	}
}
