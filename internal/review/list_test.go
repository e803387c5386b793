package review

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
)

// countingStore counts what is read from its recordings.
type countingStore struct {
	store.Store
	r countingReaderAt
}

func (s *countingStore) Open(ctx context.Context, key string) (store.Reader, error) {
	rd, err := s.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return countingReader{rd, &s.r}, nil
}

type countingReader struct {
	store.Reader
	c *countingReaderAt
}

func (r countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.Reader.ReadAt(p, off)
	r.c.mu.Lock()
	r.c.reads++
	r.c.bytes += int64(n)
	r.c.mu.Unlock()
	return n, err
}

// putRecording stores body as a recording of node started at start.
func putRecording(t *testing.T, st store.Store, node string, start time.Time, body string, status store.Status) string {
	t.Helper()
	w, err := st.Create(context.Background(), node, start)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if status == store.StatusLive {
		t.Cleanup(func() { w.Close(store.StatusComplete, "") })
		return w.Key()
	}
	if err := w.Close(status, ""); err != nil {
		t.Fatal(err)
	}
	return w.Key()
}

const (
	aliceHeader = `{"version":2,"width":80,"height":24,"sshUser":"alice","localUser":"ubuntu","command":"bash -l","srcNodeUser":"alice@example.com"}`
	bobHeader   = `{"version":2,"width":80,"height":24,"sshUser":"bob","localUser":"bob","command":"top"}`
)

// TestListerWithStalledRecording: a store holding a recording that ends in
// 8 MiB of newlines lists the normal recordings around it, and the odd one
// costs a bounded read.
func TestListerWithStalledRecording(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	first := putRecording(t, st, "n1", day, aliceHeader+"\n"+`[1,"o","a"]`+"\n"+`[2,"o","b"]`+"\n", store.StatusComplete)
	odd := putRecording(t, st, "n1", day.Add(time.Hour), bobHeader+"\n"+`[5,"o","x"]`+"\n"+strings.Repeat("\n", 8<<20), store.StatusComplete)
	last := putRecording(t, st, "n2", day, bobHeader+"\n"+`[3.5,"o","y"]`+"\n", store.StatusInterrupted)

	cs := &countingStore{Store: st}
	l := &Lister{Store: cs}
	type row struct {
		Key, User, Command string
		Status             store.Status
		Duration           *float64
		TailLimit          bool
	}
	var got []row
	for s, err := range l.List(context.Background(), Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row{s.Key, s.User, s.Command, s.Status, s.Duration, errors.Is(s.DurationErr, ErrTailLimit)})
	}
	two, three := 2.0, 3.5
	want := []row{
		{first, "alice→ubuntu", "bash -l", store.StatusComplete, &two, false},
		{odd, "bob", "top", store.StatusComplete, nil, true},
		{last, "bob", "top", store.StatusInterrupted, &three, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed (-want +got)\n%s", diff)
	}
	if l.Listed != 3 {
		t.Errorf("Listed %d, want 3", l.Listed)
	}
	if max := int64(3*tailBlock + DefaultMaxTail); cs.r.bytes > max {
		t.Errorf("read %d bytes to list a store of 8 MiB; want at most %d", cs.r.bytes, max)
	}
}

func TestListerFilters(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	a := putRecording(t, st, "n1", day, aliceHeader+"\n", store.StatusComplete)
	b := putRecording(t, st, "n1", day.Add(time.Hour), bobHeader+"\n", store.StatusLive)
	c := putRecording(t, st, "n2", day.Add(2*time.Hour), "not asciicast\n", store.StatusMalformed)
	tests := []struct {
		name   string
		f      Filter
		want   []string
		listed int
	}{
		{"all", Filter{}, []string{a, b, c}, 3},
		{"node", Filter{Filter: store.Filter{Node: "n1"}}, []string{a, b}, 2},
		{"since", Filter{Filter: store.Filter{Since: day.Add(time.Minute)}}, []string{b, c}, 2},
		{"status", Filter{Statuses: []store.Status{store.StatusLive, store.StatusMalformed}}, []string{b, c}, 3},
		{"user", Filter{User: "ALICE@example.com"}, []string{a}, 3},
		{"user, local part", Filter{User: "alice"}, []string{a}, 3},
		{"nothing", Filter{User: "carol"}, nil, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Lister{Store: st}
			var got []string
			for s, err := range l.List(context.Background(), tc.f) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, s.Key)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if l.Listed != tc.listed {
				t.Errorf("Listed %d, want %d", l.Listed, tc.listed)
			}
		})
	}
}

// TestListerStopsWhenCancelled: a cancelled context ends the listing with
// its error.
func TestListerStopsWhenCancelled(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		putRecording(t, st, "n1", day.Add(time.Duration(i)*time.Hour), aliceHeader+"\n", store.StatusComplete)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &Lister{Store: st}
	n := 0
	var last error
	for _, err := range l.List(ctx, Filter{}) {
		n++
		last = err
		cancel()
	}
	if n != 2 || !errors.Is(last, context.Canceled) {
		t.Errorf("after cancelling at the first: %d yields, the last error %v; want 2 and context.Canceled", n, last)
	}
}

func TestSummaryJSON(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	key := putRecording(t, st, "n1", time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), `{"version":2,"width":80,"height":24,"command":"a<b"}`+"\n", store.StatusComplete)
	info, err := st.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(context.Background(), st, info, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"` + key + `","node":"n1","sender":"n1","start":"2026-11-01T10:00:00Z","size":53,"status":"complete","kind":"terminal","duration":null,"user":"","command":"a<b",` +
		`"header":{"version":2,"width":80,"height":24,"timestamp":0,"command":"a\u003cb"},"durationError":"no events"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// quietStore ends its list without a word once ctx is done.
type quietStore struct{ store.Store }

func (s quietStore) List(ctx context.Context, f store.Filter) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		if ctx.Err() != nil {
			return
		}
		for info, err := range s.Store.List(ctx, f) {
			if !yield(info, err) {
				return
			}
		}
	}
}

// TestListerReportsCancelOfAQuietStore: when the store's list ends quietly
// because ctx is done, the Lister still yields ctx's error, so an empty
// list is not taken for an empty store.
func TestListerReportsCancelOfAQuietStore(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	putRecording(t, st, "n1", time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), aliceHeader+"\n", store.StatusComplete)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var errs []error
	for _, err := range (&Lister{Store: quietStore{st}}).List(ctx, Filter{}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Errorf("yielded %v, want one context.Canceled", errs)
	}
}
