package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/index/indexer"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/screentext"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	st *fsstore.Store
	ix index.Index
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.Open(filepath.Join(dir, "rec"), fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(context.Background(), filepath.Join(dir, "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close(); st.Close() })
	return &env{st: st, ix: ix}
}

func (e *env) start(t *testing.T, catchUp bool) *indexer.Indexer {
	t.Helper()
	in := &indexer.Indexer{Store: e.st, Index: e.ix, Chunks: screentext.Options{Span: 10}, IdleTick: time.Hour}
	in.Start(context.Background(), catchUp)
	t.Cleanup(func() { in.Close() })
	return in
}

func wait(t *testing.T, in *indexer.Indexer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	if err := in.Wait(ctx); err != nil {
		t.Fatalf("indexer did not settle: %v (%s)", err, in)
	}
}

const header = `{"version":2,"width":80,"height":24,"timestamp":1793527200,"srcNode":"laptop","srcNodeID":"nL","srcNodeUser":"alice@example.com","env":{},"sshUser":"alice","localUser":"root","connectionID":"c1","command":"bash -l"}` + "\n"

// lines returns event lines printing "word-i" for i in [from, to), one
// per second from time from.
func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		ev, _ := json.Marshal([]any{float64(i) + 0.5, "o", fmt.Sprintf("word-%d done\r\n", i)})
		b.Write(ev)
		b.WriteByte('\n')
	}
	return b.String()
}

type hit struct {
	Line string
	At   float64
}

func hits(t *testing.T, ix index.Index, q string) []hit {
	t.Helper()
	var out []hit
	after := ""
	for {
		hs, next, err := ix.Search(context.Background(), q, index.Filter{}, index.Page{Limit: 1000, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			out = append(out, hit{h.Line, h.At})
		}
		if next == "" {
			return out
		}
		after = next
	}
}

func row(t *testing.T, ix index.Index, key string) index.Recording {
	t.Helper()
	r, err := ix.GetRecording(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// write appends s to w and syncs.
func write(t *testing.T, w store.Writer, s string) {
	t.Helper()
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestLiveThenClosed: a live recording is listed as it starts, its text
// becomes searchable while it runs, and when it closes its row says so and
// its text is complete: every line once, at its moment.
func TestLiveThenClosed(t *testing.T) {
	e := newEnv(t)
	in := e.start(t, false)
	ctx := context.Background()
	w, err := e.st.Create(ctx, "node1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := w.Key()
	in.Notify(key, recorder.Change{What: recorder.Created})
	wait(t, in)
	if r := row(t, e.ix, key); r.Status != "live" || r.Node != "node1" {
		t.Errorf("new recording: %+v", r)
	}
	write(t, w, header+lines(0, 40))
	in.Notify(key, recorder.Change{What: recorder.Grew})
	wait(t, in)
	r := row(t, e.ix, key)
	if r.Status != "live" || r.User != "alice@example.com" || r.Login != "alice" || r.LocalUser != "root" || r.Command != "bash -l" || r.Kind != index.KindSSH {
		t.Errorf("live row: %+v", r)
	}
	if r.Indexed >= r.Size {
		t.Errorf("live row: Indexed %d is not below Size %d before the text is complete", r.Indexed, r.Size)
	}
	// Lines scrolled off and screens of past buckets are searchable now.
	if h := hits(t, e.ix, "word-3 done"); len(h) != 1 || h[0].At != 3.5 {
		t.Errorf("live search word-3: %+v", h)
	}
	write(t, w, lines(40, 60))
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	in.Notify(key, recorder.Change{What: recorder.Closed})
	wait(t, in)
	r = row(t, e.ix, key)
	if r.Status != "complete" || r.Indexed != r.Size || r.End.Sub(r.Start) != 59500*time.Millisecond {
		t.Errorf("closed row: status %s indexed %d size %d duration %v", r.Status, r.Indexed, r.Size, r.End.Sub(r.Start))
	}
	got := hits(t, e.ix, "done")
	var want []hit
	for i := range 60 {
		want = append(want, hit{fmt.Sprintf("word-%d done", i), float64(i) + 0.5})
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("text of the closed recording (-want +got):\n%s", d)
	}
}

// TestResume: an indexer stopped part-way (a crash) leaves the index
// with part of a recording's text; the next one resumes from Indexed and
// the text ends up exactly as an uninterrupted run makes it.
func TestResume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w, err := e.st.Create(ctx, "node1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := w.Key()
	in := &indexer.Indexer{Store: e.st, Index: e.ix, Chunks: screentext.Options{Span: 10}, IdleTick: time.Hour}
	in.Start(ctx, false)
	write(t, w, header+lines(0, 100))
	in.Notify(key, recorder.Change{What: recorder.Grew})
	wait(t, in)
	in.Close() // the crash: its extractor state is lost
	partial := row(t, e.ix, key).Indexed
	if partial == 0 {
		t.Fatal("nothing indexed before the crash")
	}
	write(t, w, lines(100, 150))
	if err := w.Close(store.StatusInterrupted, "the recorder crashed"); err != nil {
		t.Fatal(err)
	}
	in2 := e.start(t, true) // catch-up finds it
	wait(t, in2)
	r := row(t, e.ix, key)
	if r.Status != "interrupted" || r.Indexed != r.Size {
		t.Errorf("after resuming: status %s indexed %d size %d", r.Status, r.Indexed, r.Size)
	}
	got := hits(t, e.ix, "done")

	// The same recording indexed in one go, into a fresh index.
	fresh, err := index.Open(ctx, filepath.Join(t.TempDir(), "fresh.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	in3 := &indexer.Indexer{Store: e.st, Index: fresh, Chunks: screentext.Options{Span: 10}, IdleTick: time.Hour}
	in3.Start(ctx, true)
	defer in3.Close()
	wait(t, in3)
	want := hits(t, fresh, "done")
	if len(want) != 150 {
		t.Errorf("fresh index has %d lines, want 150", len(want))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resumed text differs from a fresh run (-fresh +resumed):\n%s", d)
	}
}

// TestCatchUp: recordings the index has never heard of, and rows left
// stale (live, though the store has closed them), are brought up to date.
func TestCatchUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var keys []string
	for i := range 5 {
		w, err := e.st.Create(ctx, fmt.Sprintf("n%d", i%2), time.Now().Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, header+lines(i*10, i*10+10))
		if err := w.Close(store.StatusComplete, ""); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, w.Key())
	}
	// A stale row: the index thinks keys[0] is live.
	info, _ := e.st.Stat(ctx, keys[0])
	stale := indexer.Row(info, nil, 0)
	stale.Status = "live"
	if err := e.ix.PutRecording(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.PutEvent(ctx, "n1", time.Now(), []byte(`{"type":"kubernetes-api-request","kubernetes":{"Verb":"delete","Resource":"pods","Namespace":"prod","Name":"web-0"},"source":{"node":"ws.ts.net","nodeUser":"carol@example.com"}}`)); err != nil {
		t.Fatal(err)
	}
	in := e.start(t, true)
	wait(t, in)
	for _, k := range keys {
		if r := row(t, e.ix, k); r.Status != "complete" || r.Indexed != r.Size {
			t.Errorf("%s: status %s, indexed %d of %d", k, r.Status, r.Indexed, r.Size)
		}
	}
	if got := hits(t, e.ix, "done"); len(got) != 50 {
		t.Errorf("%d lines indexed, want 50", len(got))
	}
	evs, _, err := e.ix.ListEvents(ctx, index.Filter{User: "carol@example.com"}, index.EventFilter{Verb: "delete", Resource: "pods", Namespace: "prod"}, index.Page{})
	if err != nil || len(evs) != 1 || evs[0].Name != "web-0" || evs[0].Node != "n1" {
		t.Errorf("event after catch-up: %+v, %v", evs, err)
	}
	// A second catch-up finds nothing to do and changes nothing.
	before := hits(t, e.ix, "done")
	if err := in.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	wait(t, in)
	if d := cmp.Diff(before, hits(t, e.ix, "done")); d != "" {
		t.Errorf("second catch-up changed the text:\n%s", d)
	}
}

// TestNotifiedEvent: an event the recorder stored is indexed with its
// fields.
func TestNotifiedEvent(t *testing.T) {
	e := newEnv(t)
	in := e.start(t, false)
	ctx := context.Background()
	data := []byte(`{"type":"kubernetes-api-request","request":{"path":"/api/v1/namespaces/dev/pods/x/exec"},"kubernetes":{"Verb":"create","Resource":"pods","Subresource":"exec","Namespace":"dev","Name":"x"},"source":{"node":"ws","nodeUser":"dave@example.com"}}`)
	at := time.Now()
	id, err := e.st.PutEvent(ctx, "n1", at, data)
	if err != nil {
		t.Fatal(err)
	}
	in.Notify(id, recorder.Change{What: recorder.EventStored, Event: &store.Event{ID: id, Node: "n1", At: at, Data: data}})
	wait(t, in)
	evs, _, err := e.ix.ListEvents(ctx, index.Filter{}, index.EventFilter{}, index.Page{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events: %+v, %v", evs, err)
	}
	want := index.Event{ID: id, Node: "n1", At: at.UTC(), User: "dave@example.com", Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "dev", Name: "x", Data: data}
	got := evs[0]
	got.Path = ""
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("event row (-want +got):\n%s", d)
	}
}

// slowIndex blocks PutRecording until released.
type slowIndex struct {
	index.Index
	release chan struct{}
	puts    atomic.Int64
}

func (s *slowIndex) PutRecording(ctx context.Context, r index.Recording) error {
	s.puts.Add(1)
	<-s.release
	return s.Index.PutRecording(ctx, r)
}

// TestNotifyNeverBlocks: with the index stuck, the recorder's hook still
// returns at once, however often it is called, and the changes coalesce:
// once the index is back, one pass per recording brings it up to date.
func TestNotifyNeverBlocks(t *testing.T) {
	e := newEnv(t)
	slow := &slowIndex{Index: e.ix, release: make(chan struct{})}
	in := &indexer.Indexer{Store: e.st, Index: slow, IdleTick: time.Hour}
	in.Start(context.Background(), false)
	defer in.Close()
	ctx := context.Background()
	var keys []string
	for i := range 3 {
		w, err := e.st.Create(ctx, "n", time.Now().Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, header+lines(0, 3))
		w.Close(store.StatusComplete, "")
		keys = append(keys, w.Key())
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 100000 {
			in.Notify(keys[i%3], recorder.Change{What: recorder.Grew})
		}
		close(done)
	}()
	testutil.Recv(t, "100000 notifications with the index stuck", done)
	wg.Wait()
	close(slow.release)
	wait(t, in)
	for _, k := range keys {
		if r := row(t, e.ix, k); r.Status != "complete" {
			t.Errorf("%s: %+v", k, r)
		}
	}
	// Coalesced: a handful of passes, not one per notification.
	if n := slow.puts.Load(); n > 30 {
		t.Errorf("%d row writes for 3 recordings and 100000 notifications", n)
	}
}

// TestRebuild: rebuild rewrites every row and text from the store, drops
// rows of recordings the store no longer has (but not live rows, which a
// recorder sharing the index may be writing), and reports progress.
func TestRebuild(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w, err := e.st.Create(ctx, "n", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, header+lines(0, 20))
	w.Close(store.StatusComplete, "")
	key := w.Key()
	// The index is wrong about it, and has rows for nothing.
	info, _ := e.st.Stat(ctx, key)
	wrong := indexer.Row(info, nil, 0)
	wrong.Status = "failed"
	gone := index.Recording{Key: "n/2020-01-01T00-00-00.000000000Z.cast", Node: "n", Start: time.Unix(1577836800, 0), Status: "complete"}
	other := index.Recording{Key: "m/2020-01-01T00-00-00.000000000Z.cast", Node: "m", Start: time.Unix(1577836800, 0), Status: "live"}
	for _, r := range []index.Recording{wrong, gone, other} {
		if err := e.ix.PutRecording(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ix.AddChunks(ctx, key, info.Size, []index.Chunk{{Key: key, Seq: 7, Text: "stale done text\n"}}); err != nil {
		t.Fatal(err)
	}
	in := e.start(t, false)
	var last indexer.Progress
	if err := in.Rebuild(ctx, func(p indexer.Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if last.Done != 1 || last.Total != 1 || last.DoneBytes != info.Size {
		t.Errorf("last progress %+v", last)
	}
	if r := row(t, e.ix, key); r.Status != "complete" || r.Indexed != r.Size {
		t.Errorf("rebuilt row: %+v", r)
	}
	if got := hits(t, e.ix, "done"); len(got) != 20 {
		t.Errorf("%d lines after rebuild, want 20 (stale text dropped): %v", len(got), got)
	}
	if _, err := e.ix.GetRecording(ctx, gone.Key); err == nil {
		t.Error("the row of a recording the store does not have survived the rebuild")
	}
	if _, err := e.ix.GetRecording(ctx, other.Key); err != nil {
		t.Errorf("a live row of another recorder was deleted: %v", err)
	}
}

// TestDesktopRow: a desktop recording (reel vnc) is listed with kind
// desktop, its user, desktop and screen size while it runs; once closed,
// its end is its last record's time and its (empty) text is complete:
// its pixels are never read as terminal output.
func TestDesktopRow(t *testing.T) {
	e := newEnv(t)
	in := e.start(t, false)
	ctx := context.Background()
	start := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	w, err := e.st.CreateKind(ctx, "node1", start, store.KindDesktop)
	if err != nil {
		t.Fatal(err)
	}
	key := w.Key()
	enc, err := desktop.NewEncoder(w, desktop.Header{Width: 64, Height: 48, Start: start, User: "alice@example.com", Host: "lab", DesktopName: "x11", SrcNodeTags: []string{"tag:dev"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	img := desktop.NewImage(64, 48)
	for i := range img.Pix {
		img.Pix[i] = uint32(i) * 0x010203 // bytes that would be "output" if read as text
	}
	enc.Keyframe(0, img)
	enc.Region(1500*time.Millisecond, img, desktop.Rect{W: 8, H: 8})
	w.Sync()
	in.Notify(key, recorder.Change{What: recorder.Created})
	wait(t, in)
	r := row(t, e.ix, key)
	if r.Kind != index.KindDesktop || r.Status != "live" || r.User != "alice@example.com" || r.Title != "lab x11" || r.Width != 64 || r.Height != 48 || !slices.Equal(r.Tags, []string{"tag:dev"}) {
		t.Errorf("live desktop row: %+v", r)
	}
	enc.Pointer(2750*time.Millisecond, 3, 4, 0)
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	in.Notify(key, recorder.Change{What: recorder.Closed})
	wait(t, in)
	r = row(t, e.ix, key)
	if r.Kind != index.KindDesktop || r.Status != "complete" || r.End.Sub(r.Start) != 2750*time.Millisecond || r.Indexed != r.Size || r.Size == 0 {
		t.Errorf("closed desktop row: %+v", r)
	}
	rows, _, err := e.ix.List(ctx, index.Filter{Kind: index.KindDesktop}, index.Page{})
	if err != nil || len(rows) != 1 || rows[0].Key != key {
		t.Errorf("desktop recordings listed: %v, %v", rows, err)
	}
}

// TestYieldsWhileBusy: while the recorder is busy, a live recording's
// text waits after each batch (the recording's row does not), and it
// catches up once the recorder is no longer busy.
func TestYieldsWhileBusy(t *testing.T) {
	e := newEnv(t)
	var busy atomic.Bool
	busy.Store(true)
	var asked atomic.Int64
	in := &indexer.Indexer{Store: e.st, Index: e.ix, Chunks: screentext.Options{Span: 10}, IdleTick: time.Hour,
		Busy:      func() bool { asked.Add(1); return busy.Load() },
		BusyShare: 1e-9, // a pause of years after any batch
	}
	in.Start(context.Background(), false)
	t.Cleanup(func() { in.Close() })
	ctx := context.Background()
	w, err := e.st.Create(ctx, "node1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := w.Key()
	write(t, w, header+lines(0, 40))
	in.Notify(key, recorder.Change{What: recorder.Grew})
	testutil.WaitFor(t, "the indexer to yield", func() bool { return asked.Load() >= 2 })
	// It is paused after its first batch: the row is there, the batch's
	// text is stored, and the indexer has not settled.
	if r := row(t, e.ix, key); r.Status != "live" || r.User != "alice@example.com" {
		t.Errorf("row while yielding: %+v", r)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	err = in.Wait(wctx)
	cancel()
	if err == nil {
		t.Fatal("the indexer settled while it should be yielding")
	}
	busy.Store(false)
	write(t, w, lines(40, 60))
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	in.Notify(key, recorder.Change{What: recorder.Closed})
	wait(t, in)
	if r := row(t, e.ix, key); r.Status != "complete" || r.Indexed != r.Size {
		t.Errorf("after the burst: status %s indexed %d size %d", r.Status, r.Indexed, r.Size)
	}
	if h := hits(t, e.ix, "word-59 done"); len(h) != 1 {
		t.Errorf("the text did not catch up: %+v", h)
	}
}
