// Package storetest is the conformance suite that every store.Store backend
// passes (restic's backend test suite is the model). A backend's test calls
// Run with a Harness that makes fresh stores of that backend:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{New: ..., Crash: ...})
//	}
//
// The suite checks the behaviour written in package store's doc comments:
// byte-exact round trips, key format and uniqueness, listing with filters,
// statuses and the cut at the last complete line, reading live recordings,
// errors for missing and malformed keys, events, recovery after a crash,
// and the files kept beside recordings (store.Files).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

// Harness makes stores of one backend for the suite.
type Harness struct {
	// New returns a fresh, empty store, ready for Create (Recover need not
	// be called). The suite closes it; New registers any other cleanup
	// with t.Cleanup.
	New func(t *testing.T) store.Store

	// Crash simulates the process that uses s dying: s's writers are
	// abandoned, nothing more is written, synced or uploaded, and s must
	// not be used again. It returns the store that a restarted process
	// opens on the same storage, before its Recover is called. Only bytes
	// that were synced must survive; a backend may keep more.
	Crash func(t *testing.T, s store.Store) store.Store

	// ReadRaw returns the bytes stored under any key of the backend's
	// layout, such as store.TailKey(k), as they end up in the backing
	// storage (for a backend that uploads in the background, after the
	// upload). It returns an error wrapping store.ErrNotFound when there is
	// no such key.
	ReadRaw func(t *testing.T, s store.Store, key string) ([]byte, error)

	// Reader, if not nil, returns a second store that reads the same
	// storage as s the way a reviewer's command does (another process,
	// read-only), after waiting until s's background work has landed. The
	// suite checks that it sees what s shows of closed recordings and of
	// events. The suite closes it.
	Reader func(t *testing.T, s store.Store) store.Store

	// BigSize is the size of the large recording in the round-trip test;
	// zero means 12 MiB (more than two 5 MiB S3 parts).
	BigSize int
}

// Run runs the whole suite against the backend h describes.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Crash == nil || h.ReadRaw == nil {
		t.Fatal("storetest: Harness needs New, Crash and ReadRaw")
	}
	if h.BigSize == 0 {
		h.BigSize = 12 << 20
	}
	s := &suite{h: h}
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("Reader", s.testReader)
	t.Run("KeyFormat", s.testKeyFormat)
	t.Run("Senders", s.testSenders)
	t.Run("ConcurrentCreate", s.testConcurrentCreate)
	t.Run("ConcurrentWriters", s.testConcurrentWriters)
	t.Run("List", s.testList)
	t.Run("Statuses", s.testStatuses)
	t.Run("Live", s.testLive)
	t.Run("NotFound", s.testNotFound)
	t.Run("InvalidKeys", s.testInvalidKeys)
	t.Run("Events", s.testEvents)
	t.Run("Crash", s.testCrash)
	t.Run("CrashEvents", s.testCrashEvents)
	t.Run("Files", s.testFiles)
	t.Run("Kinds", s.testKinds)
	if h.Reader != nil {
		t.Run("ReaderView", s.testReaderView)
		t.Run("FilesReaderView", s.testFilesReaderView)
	}
}

type suite struct{ h Harness }

// newStore returns a fresh store closed at the end of the test.
func (s *suite) newStore(t *testing.T) store.Store {
	t.Helper()
	st := s.h.New(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close store: %v", err)
		}
	})
	return st
}

// crash crashes st and returns the reopened store, closed at the end of the
// test.
func (s *suite) crash(t *testing.T, st store.Store) store.Store {
	t.Helper()
	st2 := s.h.Crash(t, st)
	t.Cleanup(func() {
		if err := st2.Close(); err != nil {
			t.Errorf("Close reopened store: %v", err)
		}
	})
	return st2
}

// base is the start time most tests use: fixed, with nanoseconds, so that
// key formatting is exercised.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func ctxT(t *testing.T) context.Context { return t.Context() }

// create starts a recording or fails the test.
func create(t *testing.T, st store.Store, node string, start time.Time) store.Writer {
	t.Helper()
	w, err := st.Create(ctxT(t), node, start)
	if err != nil {
		t.Fatalf("Create(%q, %v): %v", node, start, err)
	}
	return w
}

// write writes p in chunks of at most chunk bytes.
func write(t *testing.T, w store.Writer, p []byte, chunk int) {
	t.Helper()
	for len(p) > 0 {
		n := min(chunk, len(p))
		m, err := w.Write(p[:n])
		if err != nil || m != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
		}
		p = p[n:]
	}
}

func closeW(t *testing.T, w store.Writer, status store.Status, reason string) {
	t.Helper()
	if err := w.Close(status, reason); err != nil {
		t.Fatalf("Close(%s) %s: %v", status, w.Key(), err)
	}
}

func syncW(t *testing.T, w store.Writer) {
	t.Helper()
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync %s: %v", w.Key(), err)
	}
}

// readAll opens key and returns its bytes, checking that Size agrees.
func readAll(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	r, err := st.Open(ctxT(t), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if int64(len(b)) != r.Size() {
		t.Errorf("Open(%q): read %d bytes, Size() = %d", key, len(b), r.Size())
	}
	return b
}

func stat(t *testing.T, st store.Store, key string) store.Info {
	t.Helper()
	info, err := st.Stat(ctxT(t), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func list(t *testing.T, st store.Store, f store.Filter) []store.Info {
	t.Helper()
	var out []store.Info
	for info, err := range st.List(ctxT(t), f) {
		if err != nil {
			t.Fatalf("List(%+v): %v", f, err)
		}
		out = append(out, info)
	}
	return out
}

// castLines returns an asciicast v2 recording: a header, then n output
// events of about lineLen bytes each.
func castLines(n, lineLen int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":2,"width":80,"height":24,"timestamp":1773500966,"srcNode":"suite"}` + "\n")
	pad := bytes.Repeat([]byte("x"), max(0, lineLen-40))
	for i := range n {
		fmt.Fprintf(&b, "[%d.%06d,\"o\",\"%07d %s\\r\\n\"]\n", i/1000, i%1000*1000, i, pad)
	}
	return b.Bytes()
}

// firstDiff describes where a and b first differ, for failure messages that
// do not print megabytes.
func firstDiff(a, b []byte) string {
	if bytes.Equal(a, b) {
		return "equal"
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	ctx := func(p []byte) string { return fmt.Sprintf("%q", p[i:min(len(p), i+40)]) }
	return fmt.Sprintf("len %d vs %d, first difference at byte %d: %s vs %s", len(a), len(b), i, ctx(a), ctx(b))
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
