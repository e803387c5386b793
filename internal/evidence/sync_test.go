package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// faultStore is a memstore whose writers' syncs can be made to fail or
// to wait, and which syncs in batches (as fsstore does), so that Store
// takes its batch path.
type faultStore struct {
	*memstore.Store

	mu       sync.Mutex
	syncs    gates          // by recording key: its writer's Syncs
	putFiles gates          // by file name: its PutFiles
	puts     map[string]int // file name -> PutFiles done
}

// gates make an operation on a name fail or wait; faultStore.mu guards
// them.
type gates struct {
	fail  map[string]error         // what the operation returns instead
	hold  map[string]chan struct{} // closed to let its next call go on
	enter map[string]chan struct{} // closed when that held call began
}

func newGates() gates {
	return gates{fail: map[string]error{}, hold: map[string]chan struct{}{}, enter: map[string]chan struct{}{}}
}

func newFaultStore(ms *memstore.Store) *faultStore {
	return &faultStore{Store: ms, syncs: newGates(), putFiles: newGates(), puts: map[string]int{}}
}

// holdNext makes the next operation of g on name wait until release is
// called; entered is closed when it starts waiting.
func (f *faultStore) holdNext(g *gates, name string) (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, e := make(chan struct{}), make(chan struct{})
	g.hold[name], g.enter[name] = h, e
	return e, func() { close(h) }
}

// pass is called by an operation of g on name before it runs: it returns
// the error to fail with, or waits while the call is held.
func (f *faultStore) pass(g *gates, name string) error {
	f.mu.Lock()
	err := g.fail[name]
	h, e := g.hold[name], g.enter[name]
	delete(g.hold, name)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if h != nil {
		close(e)
		<-h
	}
	return nil
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
	return f.holdNext(&f.syncs, key)
}

// holdPut makes the next PutFile of name wait until release is called.
func (f *faultStore) holdPut(name string) (entered <-chan struct{}, release func()) {
	return f.holdNext(&f.putFiles, name)
}

func (f *faultStore) PutFile(ctx context.Context, name string, data []byte) error {
	if err := f.pass(&f.putFiles, name); err != nil {
		return err
	}
	if err := f.Store.PutFile(ctx, name, data); err != nil {
		return err
	}
	f.mu.Lock()
	f.puts[name]++
	f.mu.Unlock()
	return nil
}

type faultWriter struct {
	store.Writer
	f *faultStore
}

func (w *faultWriter) Sync() error {
	if err := w.f.pass(&w.f.syncs, w.Key()); err != nil {
		return err
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
			fs.syncs.fail[w1.Key()] = fault
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
			delete(fs.syncs.fail, w1.Key())
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
	var logs testutil.Buffer
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

// Recordings that close while another's seal is being committed are
// committed together as the next group, numbered in order; when one of
// them cannot write its seal, the ones after it are renumbered (their
// seals written again), so the manifest has no gap, and the one that
// failed is sealed at the next start.
func TestSealsCommitInGroups(t *testing.T) {
	ms := memstore.New(memstore.Options{})
	fs := newFaultStore(ms)
	k := mustKey(t)
	dir := filepath.Join(t.TempDir(), "evidence")
	s := openSealer(t, fs, dir, k)
	data := castData(500)
	var ws []store.Writer
	for i := range 4 {
		w, err := s.Create(t.Context(), fmt.Sprintf("node-%d", i), t0)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	closed := make(chan error, len(ws))
	closeW := func(w store.Writer) { closed <- w.Close(store.StatusComplete, "") }
	queued := func() int {
		s.man.qmu.Lock()
		defer s.man.qmu.Unlock()
		return len(s.man.queue)
	}

	// The first seal's commit waits in its PutFile; three more close
	// meanwhile, one after another, and queue up.
	entered, release := fs.holdPut(ws[0].Key() + SealSuffix)
	go closeW(ws[0])
	testutil.Recv(t, "the first seal being written", entered)
	fault := errors.New("EIO writing the seal")
	fs.mu.Lock()
	fs.putFiles.fail[ws[2].Key()+SealSuffix] = fault
	fs.mu.Unlock()
	for i, w := range ws[1:] {
		go closeW(w)
		testutil.WaitFor(t, fmt.Sprintf("%d seals queued behind the first", i+1), func() bool { return queued() == i+1 })
	}
	release()
	for range ws {
		if err := testutil.Recv(t, "a close", closed); err != nil {
			t.Fatal(err)
		}
	}

	seqOf := func(st Backend, key string) int64 {
		t.Helper()
		b, err := store.ReadFile(t.Context(), st, key+SealSuffix)
		if err != nil {
			t.Fatalf("seal of %s: %v", key, err)
		}
		sl, err := ParseSeal(b)
		if err != nil {
			t.Fatal(err)
		}
		return sl.Seq
	}
	for i, want := range map[int]int64{0: 1, 1: 2, 3: 3} {
		if got := seqOf(fs, ws[i].Key()); got != want {
			t.Errorf("recording %d sealed as entry %d; want %d", i, got, want)
		}
	}
	fs.mu.Lock()
	rewritten := fs.puts[ws[3].Key()+SealSuffix]
	fs.mu.Unlock()
	if rewritten != 2 {
		t.Errorf("the seal after the failed one was written %d times; want 2 (numbered 4, then 3)", rewritten)
	}
	if _, err := os.Stat(s.livePath(ws[2].Key())); err != nil {
		t.Errorf("the recording whose seal failed lost its live chain: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The next start seals it as entry 4, and the store verifies clean.
	ms2 := ms.Crash() // the same data, a new store: a restart
	s2 := openSealer(t, ms2, dir, k)
	defer s2.Close()
	if err := s2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(ms2, ws[2].Key()); got != 4 {
		t.Errorf("recording whose seal failed sealed at the next start as entry %d; want 4", got)
	}
	rep := verify(t, ms2, VerifyOptions{Keys: ring(k)})
	if !rep.OK() || rep.Manifests[0].Entries != 4 {
		t.Fatalf("after a group with a failed seal:\n%s", describe(rep))
	}
}
