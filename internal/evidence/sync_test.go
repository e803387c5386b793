package evidence

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
)

// faultStore is a memstore whose writers' syncs can be made to fail or
// to wait, and which syncs in batches (as fsstore does), so that Store
// takes its batch path.
type faultStore struct {
	*memstore.Store

	mu      sync.Mutex
	fail    map[string]error         // key -> what its Sync returns instead of syncing
	hold    map[string]chan struct{} // key -> closed to let its Sync go on
	entered map[string]chan struct{} // key -> closed when its held Sync began
	synced  map[string]int           // key -> Syncs that succeeded
}

func newFaultStore(ms *memstore.Store) *faultStore {
	return &faultStore{Store: ms, fail: map[string]error{}, hold: map[string]chan struct{}{}, entered: map[string]chan struct{}{}}
}

func (f *faultStore) Create(ctx context.Context, sender string, start time.Time) (store.Writer, error) {
	w, err := f.Store.Create(ctx, sender, start)
	if err != nil {
		return nil, err
	}
	return &faultWriter{Writer: w, f: f}, nil
}

func (f *faultStore) SyncAll(ws []store.Writer) []error {
	errs := make([]error, len(ws))
	parallel(len(ws), func(i int) { errs[i] = ws[i].Sync() })
	return errs
}

// holdSync makes key's next Sync wait until the returned release is
// called; entered is closed when it starts waiting.
func (f *faultStore) holdSync(key string) (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, e := make(chan struct{}), make(chan struct{})
	f.hold[key], f.entered[key] = h, e
	return e, func() { close(h) }
}

type faultWriter struct {
	store.Writer
	f *faultStore
}

func (w *faultWriter) Sync() error {
	f := w.f
	f.mu.Lock()
	err := f.fail[w.Key()]
	h, e := f.hold[w.Key()], f.entered[w.Key()]
	delete(f.hold, w.Key())
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if h != nil {
		close(e)
		<-h
	}
	return w.Writer.Sync()
}

// liveSyncs returns the sizes of the sync records in key's live chain file.
func liveSyncs(t *testing.T, s *Store, key string) []int64 {
	t.Helper()
	b, err := os.ReadFile(s.livePath(key))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := ParseChain(b)
	if err != nil {
		t.Fatalf("live chain of %s: %v\n%s", key, err, b)
	}
	var sizes []int64
	for _, sr := range cf.Syncs {
		sizes = append(sizes, sr.Size)
	}
	return sizes
}

// A round whose bytes fail to sync leaves no sync record for it in the
// live chain (the record, written before the sync, is taken back), while
// the recordings synced with it keep theirs; the next round covers the
// bytes again, and the seal's acked is the last good round.
func TestDataSyncFailureTakesRecordBack(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "Sync"
		if batch {
			name = "SyncAll"
		}
		t.Run(name, func(t *testing.T) {
			fs := newFaultStore(memstore.New(memstore.Options{}))
			k := mustKey(t)
			s := openSealer(t, fs, filepath.Join(t.TempDir(), "evidence"), k)
			defer s.Close()
			data := castData(3000)
			w1, _ := s.Create(t.Context(), "node-1", t0)
			w2, _ := s.Create(t.Context(), "node-2", t0)
			syncBoth := func() []error {
				if batch {
					return s.SyncAll([]store.Writer{w1, w2})
				}
				return []error{w1.Sync(), w2.Sync()}
			}
			w1.Write(data[:50000])
			w2.Write(data[:50000])
			for _, err := range syncBoth() {
				if err != nil {
					t.Fatal(err)
				}
			}
			w1.Write(data[50000:90000])
			w2.Write(data[50000:90000])
			fault := errors.New("EIO writing back the recording")
			fs.mu.Lock()
			fs.fail[w1.Key()] = fault
			fs.mu.Unlock()
			errs := syncBoth()
			if !errors.Is(errs[0], fault) || errs[1] != nil {
				t.Fatalf("sync errors = %v; want the fault for the first recording only", errs)
			}
			if got := liveSyncs(t, s, w1.Key()); len(got) != 1 || got[0] != 50000 {
				t.Errorf("live chain of the recording whose sync failed has sync records at %v; want [50000]", got)
			}
			if got := liveSyncs(t, s, w2.Key()); len(got) != 2 || got[1] != 90000 {
				t.Errorf("live chain of the recording synced with it has sync records at %v; want [50000 90000]", got)
			}

			// The sync works again: the next round covers the bytes.
			fs.mu.Lock()
			delete(fs.fail, w1.Key())
			fs.mu.Unlock()
			w1.Write(data[90000:100000])
			if err := w1.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := liveSyncs(t, s, w1.Key()); len(got) != 2 || got[1] != 100000 {
				t.Errorf("after a good round: sync records at %v; want [50000 100000]", got)
			}
			for _, w := range []store.Writer{w1, w2} {
				if err := w.Close(store.StatusComplete, ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			rep := verify(t, fs, VerifyOptions{Keys: ring(k)})
			if !rep.OK() {
				t.Fatalf("after a failed round:\n%s", describe(rep))
			}
		})
	}
}

// lockedBuffer is a log sink for a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A crash while a round's bytes are being synced leaves its sync record,
// written first, ahead of the stored bytes. Recovery drops that record as
// never acknowledged (a warning, not the error that says the bytes were
// changed), seals with the acked figure of the round before, and the
// store verifies clean.
func TestCrashWithRecordAheadOfBytes(t *testing.T) {
	ms := memstore.New(memstore.Options{})
	fs := newFaultStore(ms)
	k := mustKey(t)
	dir := filepath.Join(t.TempDir(), "evidence")
	s := openSealer(t, fs, dir, k)
	data := castData(3000)
	w1, _ := s.Create(t.Context(), "node-1", t0)
	w2, _ := s.Create(t.Context(), "node-2", t0)
	w1.Write(data[:60000])
	w2.Write(data[:60000])
	for _, err := range s.SyncAll([]store.Writer{w1, w2}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	w1.Write(data[60000:150000])
	w2.Write(data[60000:70000])
	entered, release := fs.holdSync(w1.Key())
	done := make(chan []error, 1)
	go func() { done <- s.SyncAll([]store.Writer{w1, w2}) }()
	<-entered // w1's bytes are being synced: its record is written
	if got := liveSyncs(t, s, w1.Key()); len(got) != 2 || got[1] != 150000 {
		t.Fatalf("while the round's bytes sync, the live chain has sync records at %v; want [60000 150000]", got)
	}

	s.crash()
	ms2 := ms.Crash()
	var logs lockedBuffer
	s2, err := Open(ms2, Options{Dir: dir, Signer: k, CheckpointEvery: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	release()
	if errs := <-done; errs[0] == nil {
		t.Errorf("the round the crash cut was acknowledged: %v", errs)
	}
	if err := s2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, err := store.ReadFile(t.Context(), ms2, w1.Key()+SealSuffix)
	if err != nil {
		t.Fatal(err)
	}
	sl, _ := ParseSeal(b)
	if !sl.Recovered || sl.Acked != 60000 || sl.Size != 60000 {
		t.Errorf("seal %+v; want recovered, size and acked 60000 (the round before the crash)", sl.SealData)
	}
	rep := verify(t, ms2, VerifyOptions{Keys: ring(k)})
	if !rep.OK() {
		t.Fatalf("after a crash with a record ahead of the bytes:\n%s", describe(rep))
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "got ahead of the stored bytes in a crash") || !strings.Contains(out, "record=150000") {
		t.Errorf("recovery did not warn that the record got ahead in a crash:\n%s", out)
	}
	if strings.Contains(out, "level=ERROR") {
		t.Errorf("recovery logged an error for a record a crash left ahead:\n%s", out)
	}
}
