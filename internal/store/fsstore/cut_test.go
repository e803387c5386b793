package fsstore

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

// A sender that streams gigabytes without a newline and then drops leaves
// an unfinished last line that big. Cutting it off (at disconnect, or in
// Recover at the next start) must not need memory in proportion to it.
const (
	hugeLine  = 2<<30 + 3<<20 // more than 2 GiB, mostly a hole (sparse file)
	maxAlloc  = 16 << 20      // what a cut may allocate, all told
	tailStart = `[0.5,"o","`  // the unfinished line begins so
)

// hugeTail makes w's recording a header line followed by an unfinished
// line of hugeLine bytes: the bytes a sender wrote at its start and end,
// and a hole between them. It returns the header.
func hugeTail(t *testing.T, w store.Writer) (header []byte) {
	t.Helper()
	header = []byte(`{"version":2,"width":80,"height":24}` + "\n")
	if _, err := w.Write(append(header, tailStart...)); err != nil {
		t.Fatal(err)
	}
	// The hole: as if the sender had written zeros (it is the writer's own
	// file and bookkeeping; nothing else could tell the difference).
	fw := w.(*writer)
	hole := int64(hugeLine - len(tailStart) - 1<<20)
	if err := fw.f.Truncate(fw.size + hole); err != nil {
		t.Fatal(err)
	}
	if _, err := fw.f.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	fw.size += hole
	end := bytes.Repeat([]byte("y"), 1<<20)
	if _, err := w.Write(end); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	return header
}

// allocated runs f and returns how many bytes the Go heap allocated
// meanwhile (TotalAlloc never goes down: it bounds the peak from above).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkCut checks that the recording at p holds just header, and its
// .tail the huge unfinished line.
func checkCut(t *testing.T, p string, header []byte) {
	t.Helper()
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, header) {
		t.Errorf("recording after the cut: %q, %v; want just the header %q", b[:min(len(b), 200)], err, header)
	}
	f, err := os.Open(tailPath(p))
	if err != nil {
		t.Fatalf("the cut-off bytes are not kept: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != hugeLine {
		t.Fatalf(".tail holds %d bytes, want %d", fi.Size(), hugeLine)
	}
	// Samples: the start, inside the hole (zeros), across the hole's end,
	// the very end.
	for _, c := range []struct {
		off  int64
		want []byte
	}{
		{0, []byte(tailStart)},
		{1 << 30, make([]byte, 64)},
		{hugeLine - 1<<20 - 8, append(make([]byte, 8), "yyyyyyyy"...)},
		{hugeLine - 8, []byte("yyyyyyyy")},
	} {
		got := make([]byte, len(c.want))
		if _, err := f.ReadAt(got, c.off); err != nil || !bytes.Equal(got, c.want) {
			t.Errorf(".tail at %d: %q, %v; want %q", c.off, got, err, c.want)
		}
	}
}

// TestCutHugeLineAtDisconnect: a recording that ends (interrupted) in the
// middle of a line of more than 2 GiB is cut with bounded memory.
func TestCutHugeLineAtDisconnect(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Create(t.Context(), "n1", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	header := hugeTail(t, w)
	var closeErr error
	if n := allocated(func() { closeErr = w.Close(store.StatusInterrupted, "the sender's upload broke off") }); n > maxAlloc {
		t.Errorf("cutting a %d-byte line allocated %d MiB; want at most %d MiB", hugeLine, n>>20, maxAlloc>>20)
	}
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	checkCut(t, s.path(w.Key()), header)
	if info, err := s.Stat(t.Context(), w.Key()); err != nil || info.Status != store.StatusInterrupted || info.Size != int64(len(header)) {
		t.Errorf("Stat: %+v, %v; want interrupted, %d bytes", info, err, len(header))
	}
}

// TestRecoverHugeLine: Recover, at every start, cuts a recording a crash
// left in the middle of a line of more than 2 GiB with bounded memory.
func TestRecoverHugeLine(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(t.Context(), "n1", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	header := hugeTail(t, w)
	Crash(s)
	w.(*writer).f.Close()

	s2, err := Open(dir, Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var infos []store.Info
	var recErr error
	if n := allocated(func() { infos, recErr = s2.Recover(t.Context()) }); n > maxAlloc {
		t.Errorf("recovering a recording with a %d-byte last line allocated %d MiB; want at most %d MiB", hugeLine, n>>20, maxAlloc>>20)
	}
	if recErr != nil || len(infos) != 1 || infos[0].Key != w.Key() || infos[0].Size != int64(len(header)) {
		t.Fatalf("Recover = %+v, %v; want %s cut to %d bytes", infos, recErr, w.Key(), len(header))
	}
	checkCut(t, s2.path(w.Key()), header)
}
