package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// castData returns an asciicast recording of n output lines.
func castData(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":2,"width":80,"height":24,"timestamp":1777629600}` + "\n")
	for i := range n {
		fmt.Fprintf(&b, "[%d.%03d,\"o\",\"line %06d: the quick brown fox jumps over the lazy dog\\r\\n\"]\n", i/10, i%10*100, i)
	}
	return b.Bytes()
}

// record writes data as one recording through st, syncing every syncEvery
// bytes, and closes it with status.
func record(t *testing.T, st store.Store, sender string, start time.Time, data []byte, syncEvery int, status store.Status) string {
	t.Helper()
	w, err := st.Create(t.Context(), sender, start)
	if err != nil {
		t.Fatal(err)
	}
	for p, since := data, 0; len(p) > 0; {
		n := min(len(p), 1000)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p, since = p[n:], since+n
		if syncEvery > 0 && since >= syncEvery {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			since = 0
		}
	}
	if err := w.Close(status, ""); err != nil {
		t.Fatal(err)
	}
	return w.Key()
}

func openSealer(t *testing.T, b Backend, dir string, k *Key) *Store {
	t.Helper()
	s, err := Open(b, Options{Dir: dir, Signer: k, CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKey(t *testing.T) *Key {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(keys ...Signer) Keyring {
	kr := Keyring{}
	for _, k := range keys {
		kr.Add(k.Public())
	}
	return kr
}

func verify(t *testing.T, st Backend, opts VerifyOptions) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

// describe prints a report for failure messages.
func describe(rep *Report) string {
	var b strings.Builder
	for _, r := range rep.Recordings {
		fmt.Fprintf(&b, "%s (%s, sealed %v): %v %q\n", r.Key, r.Status, r.Sealed, r.Problems, r.Notes)
	}
	for _, m := range rep.Manifests {
		fmt.Fprintf(&b, "manifest %s (%d entries, trusted %v): %v %q\n", m.KeyID, m.Entries, m.Trusted, m.Problems, m.Notes)
	}
	return b.String()
}

func TestSealAndVerifyMemstore(t *testing.T) {
	ms := memstore.New(memstore.Options{})
	k := mustKey(t)
	s := openSealer(t, ms, filepath.Join(t.TempDir(), "evidence"), k)
	data := castData(2000)
	key := record(t, s, "node-1", t0, data, 20000, store.StatusComplete)
	key2 := record(t, s, "node-1", t0.Add(time.Minute), castData(3), 0, store.StatusMalformed)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	seal, err := store.ReadFile(t.Context(), ms, key+SealSuffix)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := ParseSeal(seal)
	if err != nil {
		t.Fatal(err)
	}
	if sl.Size != int64(len(data)) || sl.Seq != 1 || sl.Status != store.StatusComplete || sl.Acked == 0 {
		t.Errorf("seal = %+v", sl.SealData)
	}
	rep := verify(t, ms, VerifyOptions{Keys: ring(k)})
	if !rep.OK() || len(rep.Recordings) != 2 || !rep.Recordings[0].Sealed || !rep.Recordings[1].Sealed {
		t.Fatalf("untouched store:\n%s", describe(rep))
	}
	if rep.Manifests[0].Entries != 2 {
		t.Errorf("manifest entries = %d", rep.Manifests[0].Entries)
	}
	_ = key2
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashSealsWhatWasAcked(t *testing.T) {
	t.Run("syncfs", testCrashSealsWhatWasAcked)
	t.Run("syncfs fails", func(t *testing.T) {
		// Each live chain is then synced on its own: the same outcome.
		calls := 0
		orig := syncFS
		syncFS = func(string) error { calls++; return errors.New("EIO from another program's file") }
		defer func() { syncFS = orig }()
		testCrashSealsWhatWasAcked(t)
		if calls == 0 {
			t.Error("the batch sync did not use syncfs")
		}
	})
}

func testCrashSealsWhatWasAcked(t *testing.T) {
	ms := memstore.New(memstore.Options{})
	k := mustKey(t)
	dir := filepath.Join(t.TempDir(), "evidence")
	s := openSealer(t, ms, dir, k)
	data := castData(3000)
	done := record(t, s, "node-1", t0, castData(10), 0, store.StatusComplete)

	w, err := s.Create(t.Context(), "node-1", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	acked := 100_000
	w.Write(data[:acked])
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Write(data[acked : acked+5000]) // never synced, never acked
	// Two more, synced twice together through SyncAll (the batch path:
	// their sync records made durable by one syncfs).
	w2, _ := s.Create(t.Context(), "node-2", t0.Add(time.Second))
	w3, _ := s.Create(t.Context(), "node-3", t0.Add(time.Second))
	w2.Write(data[:40000])
	w3.Write(data[:70000])
	for _, err := range s.SyncAll([]store.Writer{w2, w3}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	w2.Write(data[40000:60001])
	w3.Write(data[70000:70001])
	for _, err := range s.SyncAll([]store.Writer{w2, w3}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	w3.Write(data[70001:80000]) // never synced, never acked

	s.crash()
	ms2 := ms.Crash()
	s2 := openSealer(t, ms2, dir, k)
	defer s2.Close()
	if err := s2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, ms2, VerifyOptions{Keys: ring(k)})
	if !rep.OK() {
		t.Fatalf("after a crash:\n%s", describe(rep))
	}
	for _, tt := range []struct {
		key   string
		acked int64
	}{{w.Key(), int64(acked)}, {w2.Key(), 60001}, {w3.Key(), 70001}} {
		b, err := store.ReadFile(t.Context(), ms2, tt.key+SealSuffix)
		if err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
		sl, _ := ParseSeal(b)
		if sl.Status != store.StatusInterrupted || !sl.Recovered || sl.Acked != tt.acked || sl.Size < tt.acked {
			t.Errorf("%s: seal %+v; want interrupted, recovered, acked %d", tt.key, sl.SealData, tt.acked)
		}
	}
	var notes []string
	for _, r := range rep.Recordings {
		if r.Key == done && (r.Status != store.StatusComplete || !r.Sealed) {
			t.Errorf("the recording closed before the crash: %+v", r)
		}
		notes = append(notes, r.Notes...)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "interrupted") {
		t.Errorf("notes do not say interrupted: %q", notes)
	}
}

// A desktop recording, made through store.KindCreator, is sealed and
// verified like a terminal one, and a flipped byte in it is detected.
func TestSealDesktopKind(t *testing.T) {
	e := newFSEnv(t)
	b := e.recorder(t)
	k := mustKey(t)
	s := openSealer(t, b, filepath.Join(t.TempDir(), "evidence"), k)
	var _ store.KindCreator = s
	w, err := s.CreateKind(t.Context(), "node-1", t0, store.KindDesktop)
	if err != nil {
		t.Fatal(err)
	}
	if store.KindOf(w.Key()) != store.KindDesktop {
		t.Fatalf("key %q is not a desktop recording's", w.Key())
	}
	data := bytes.Repeat([]byte{0, 1, 2, 0xff, 'x'}, 5000)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, e.reader(t), VerifyOptions{Keys: ring(k)})
	if !rep.OK() || len(rep.Recordings) != 1 || !rep.Recordings[0].Sealed || rep.Recordings[0].Key != w.Key() {
		t.Fatalf("untouched desktop recording:\n%s", describe(rep))
	}
	got := e.get(t, w.Key())
	if !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, wrote %d", len(got), len(data))
	}
	got[100] ^= 1
	e.put(t, w.Key(), got)
	rep = verify(t, e.reader(t), VerifyOptions{Keys: ring(k)})
	if rep.OK() {
		t.Fatalf("altered desktop recording verified clean:\n%s", describe(rep))
	}
}
