// Package indextest is the conformance suite every index.Index passes
// (restic's backend test suite is the model): rows, status changes,
// keyset pagination under concurrent inserts, every sort and filter, the
// viewer's node restriction, substring search and its hits, events, text
// chunks and Indexed kept together, and concurrent use. It also starts
// private PostgreSQL clusters for tests (StartPostgres).
package indextest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reel-rec/reel/internal/index"
)

// Run runs the suite. open returns a new, empty index for each test; the
// suite closes it.
func Run(t *testing.T, open func(t *testing.T) index.Index) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ix index.Index)
	}{
		{"PutGetDelete", testPutGetDelete},
		{"StatusTransitions", testStatusTransitions},
		{"Sorts", testSorts},
		{"PaginationConcurrentInserts", testPagination},
		{"Filters", testFilters},
		{"ViewerNodes", testViewerNodes},
		{"Search", testSearch},
		{"SearchSpecial", testSearchSpecial},
		{"SearchPages", testSearchPages},
		{"SearchRepeatsAndBigChunks", testSearchRepeats},
		{"Chunks", testChunks},
		{"Events", testEvents},
		{"Concurrency", testConcurrency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := open(t)
			t.Cleanup(func() {
				if err := ix.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, ix)
		})
	}
}

var t0 = time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC)

// rec returns a recording started i minutes after t0 on node.
func rec(node string, i int) index.Recording {
	start := t0.Add(time.Duration(i) * time.Minute)
	return index.Recording{
		Key:    fmt.Sprintf("%s/%s.cast", node, start.Format("2006-01-02T15-04-05.000000000Z")),
		Node:   node,
		Start:  start,
		End:    start.Add(time.Duration(i%7+1) * time.Second),
		Size:   int64(1000 + (i*7919)%5000),
		Status: "complete",
		Kind:   index.KindSSH,
	}
}

func put(t *testing.T, ix index.Index, rs ...index.Recording) {
	t.Helper()
	for _, r := range rs {
		if err := ix.PutRecording(context.Background(), r); err != nil {
			t.Fatalf("PutRecording %s: %v", r.Key, err)
		}
	}
}

var ignoreUpdated = cmpopts.IgnoreFields(index.Recording{}, "Updated")

func keys(rs []index.Recording) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

// listAll pages through List and returns every row.
func listAll(t *testing.T, ix index.Index, f index.Filter, s index.Sort, limit int) []index.Recording {
	t.Helper()
	var all []index.Recording
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("List never ends")
		}
		rows, next, err := ix.List(context.Background(), f, index.Page{Limit: limit, After: after, Sort: s})
		if err != nil {
			t.Fatalf("List(%+v, %s): %v", f, s, err)
		}
		if len(rows) > max(limit, 1) {
			t.Fatalf("List returned %d rows, limit %d", len(rows), limit)
		}
		all = append(all, rows...)
		if next == "" {
			return all
		}
		if len(rows) == 0 {
			t.Fatal("List returned an empty page with a next cursor")
		}
		after = next
	}
}

func testPutGetDelete(t *testing.T, ix index.Index) {
	ctx := context.Background()
	r := index.Recording{
		Key: "n1/2026-11-01T14-00-00.000000000Z.cast", Node: "n1", Sender: "laptop.tail1.ts.net",
		Start: t0, End: t0.Add(90 * time.Second), Size: 12345, Status: "live",
		Kind: index.KindKubernetes, User: "alice@example.com", Login: "alice", LocalUser: "root",
		Tags: []string{"tag:prod", "tag:db"}, Command: "bash -l", Title: "t <b>", Width: 120, Height: 40,
		Pod: "web-0", Namespace: "prod", Container: "app",
	}
	put(t, ix, r)
	got, err := ix.GetRecording(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got, ignoreUpdated); d != "" {
		t.Errorf("GetRecording (-put +got):\n%s", d)
	}
	if got.Updated.IsZero() {
		t.Error("Updated not set")
	}
	if _, err := ix.GetRecording(ctx, "n1/nope.cast"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("GetRecording of a missing key: %v, want ErrNotFound", err)
	}

	// Indexed belongs to AddChunks: PutRecording neither sets nor resets it.
	if err := ix.AddChunks(ctx, r.Key, 500, nil); err != nil {
		t.Fatal(err)
	}
	r2 := r
	r2.Size, r2.Status, r2.Indexed, r2.Tags = 20000, "complete", 7, nil
	put(t, ix, r2)
	got, _ = ix.GetRecording(ctx, r.Key)
	r2.Indexed = 500
	if d := cmp.Diff(r2, got, ignoreUpdated); d != "" {
		t.Errorf("after a second PutRecording (-want +got):\n%s", d)
	}

	if err := ix.DeleteRecording(ctx, r.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.GetRecording(ctx, r.Key); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("GetRecording after delete: %v, want ErrNotFound", err)
	}
	if err := ix.DeleteRecording(ctx, r.Key); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("second DeleteRecording: %v, want ErrNotFound", err)
	}
	if rows, _, err := ix.List(ctx, index.Filter{}, index.Page{}); err != nil || len(rows) != 0 {
		t.Errorf("List after delete: %v, %v", keys(rows), err)
	}
}

func testStatusTransitions(t *testing.T, ix index.Index) {
	ctx := context.Background()
	r := rec("n1", 1)
	r.Status, r.End, r.Size = "live", time.Time{}, 10
	put(t, ix, r)
	for _, st := range []struct{ status, reason string }{
		{"live", ""}, {"interrupted", "the sender's upload broke off"}, {"complete", ""}, {"malformed", "line 3: not JSON"}, {"failed", "storage failed: disk full"},
	} {
		r.Status, r.Reason = st.status, st.reason
		r.Size += 100
		r.End = r.Start.Add(time.Duration(r.Size) * time.Millisecond)
		put(t, ix, r)
		got, err := ix.GetRecording(ctx, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != st.status || got.Reason != st.reason || got.Size != r.Size || !got.End.Equal(r.End) {
			t.Errorf("after %s: got status %q reason %q size %d end %v", st.status, got.Status, got.Reason, got.Size, got.End)
		}
		rows, _, err := ix.List(ctx, index.Filter{Status: st.status}, index.Page{})
		if err != nil || len(rows) != 1 {
			t.Errorf("List status %s: %v, %v", st.status, keys(rows), err)
		}
		for _, other := range []string{"live", "complete"} {
			if other == st.status {
				continue
			}
			rows, _, _ := ix.List(ctx, index.Filter{Status: other}, index.Page{})
			if len(rows) != 0 {
				t.Errorf("status %s listed under %s", st.status, other)
			}
		}
	}
}

func testSorts(t *testing.T, ix index.Index) {
	var all []index.Recording
	for i := range 37 {
		r := rec([]string{"a", "b", "c"}[i%3], i/3) // equal starts across nodes: ties by key
		all = append(all, r)
	}
	put(t, ix, all...)
	for _, tc := range []struct {
		sort index.Sort
		less func(a, b index.Recording) bool
	}{
		{"", func(a, b index.Recording) bool {
			return a.Start.After(b.Start) || a.Start.Equal(b.Start) && a.Key > b.Key
		}},
		{index.SortStartDesc, func(a, b index.Recording) bool {
			return a.Start.After(b.Start) || a.Start.Equal(b.Start) && a.Key > b.Key
		}},
		{index.SortStartAsc, func(a, b index.Recording) bool {
			return a.Start.Before(b.Start) || a.Start.Equal(b.Start) && a.Key < b.Key
		}},
		{index.SortSizeDesc, func(a, b index.Recording) bool { return a.Size > b.Size || a.Size == b.Size && a.Key > b.Key }},
		{index.SortDurDesc, func(a, b index.Recording) bool {
			da, db := a.End.Sub(a.Start), b.End.Sub(b.Start)
			return da > db || da == db && a.Key > b.Key
		}},
	} {
		want := slices.Clone(all)
		sort.Slice(want, func(i, j int) bool { return tc.less(want[i], want[j]) })
		for _, limit := range []int{1, 5, 50} {
			got := listAll(t, ix, index.Filter{}, tc.sort, limit)
			if d := cmp.Diff(keys(want), keys(got)); d != "" {
				t.Errorf("sort %q limit %d (-want +got):\n%s", tc.sort, limit, d)
			}
		}
	}
	if _, _, err := ix.List(context.Background(), index.Filter{}, index.Page{Sort: "bogus"}); err == nil {
		t.Error("an unknown sort was accepted")
	}
	// A cursor is opaque but checked.
	if _, _, err := ix.List(context.Background(), index.Filter{}, index.Page{After: "!!not a cursor"}); err == nil {
		t.Error("a garbage cursor was accepted")
	}
}

// testPagination pages through a list while other recordings are
// inserted, newer and older than the page being read: every row present
// at the start is seen exactly once, in order (keyset, never OFFSET).
func testPagination(t *testing.T, ix index.Index) {
	ctx := context.Background()
	var base []index.Recording
	for i := range 60 {
		base = append(base, rec("n", 1000+i*10))
	}
	put(t, ix, base...)
	for _, s := range []index.Sort{index.SortStartDesc, index.SortStartAsc} {
		seen := map[string]int{}
		var order []index.Recording
		after := ""
		extra := 0
		for {
			rows, next, err := ix.List(ctx, index.Filter{}, index.Page{Limit: 7, After: after, Sort: s})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				seen[r.Key]++
				order = append(order, r)
			}
			// Between pages: a newer, an older and an in-between row.
			extra++
			put(t, ix, rec("n", 5000+extra+len(s)*1000), rec("n", -extra-len(s)*1000), rec("m", 1000+extra*10+5))
			if next == "" {
				break
			}
			after = next
		}
		for _, r := range base {
			if seen[r.Key] != 1 {
				t.Errorf("sort %s: %s seen %d times", s, r.Key, seen[r.Key])
			}
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("sort %s: %s seen %d times", s, k, n)
			}
		}
		for i := 1; i < len(order); i++ {
			a, b := order[i-1], order[i]
			if s == index.SortStartAsc && b.Start.Before(a.Start) || s == index.SortStartDesc && b.Start.After(a.Start) {
				t.Errorf("sort %s: out of order at %d: %s then %s", s, i, a.Key, b.Key)
			}
		}
	}
}

func testFilters(t *testing.T, ix index.Index) {
	ctx := context.Background()
	mk := func(node string, i int, f func(*index.Recording)) index.Recording {
		r := rec(node, i)
		f(&r)
		return r
	}
	rs := []index.Recording{
		mk("web-1", 1, func(r *index.Recording) { r.User, r.Login, r.LocalUser = "alice@example.com", "alice", "root" }),
		mk("web-2", 2, func(r *index.Recording) { r.User, r.Login, r.LocalUser = "Bob@Example.com", "bob", "bob" }),
		mk("db-1", 3, func(r *index.Recording) {
			r.User, r.Kind, r.Pod, r.Namespace = "carol@example.com", index.KindKubernetes, "web-0", "prod"
		}),
		mk("db-1", 4, func(r *index.Recording) {
			r.Login, r.LocalUser, r.Status, r.Reason = "dave", "ubuntu", "interrupted", "cut"
		}),
		mk("web-10", 5, func(r *index.Recording) { r.User, r.Status = "alicia@example.com", "live" }),
		mk("x", 6, func(r *index.Recording) { r.User, r.Kind, r.Status = "édith@exemple.fr", index.KindDesktop, "failed" }),
	}
	put(t, ix, rs...)
	// k lists rs[is...] newest first (rs is in start order).
	k := func(is ...int) []string {
		var out []string
		for j := len(is) - 1; j >= 0; j-- {
			out = append(out, rs[is[j]].Key)
		}
		return out
	}
	byStart := keys
	for _, tc := range []struct {
		name string
		f    index.Filter
		want []string
	}{
		{"all", index.Filter{}, k(0, 1, 2, 3, 4, 5)},
		{"node exact", index.Filter{Node: "web-1"}, k(0)},
		{"node prefix", index.Filter{Node: "web-1*"}, k(0, 4)},
		{"node prefix all web", index.Filter{Node: "web*"}, k(0, 1, 4)},
		{"node none", index.Filter{Node: "web"}, nil},
		{"user whole", index.Filter{User: "alice@example.com"}, k(0)},
		{"user local part", index.Filter{User: "alice"}, k(0)},
		{"user case", index.Filter{User: "BOB"}, k(1)},
		{"user login", index.Filter{User: "dave"}, k(3)},
		{"user local user", index.Filter{User: "root"}, k(0)},
		{"user prefix", index.Filter{User: "ali*"}, k(0, 4)},
		{"user unicode", index.Filter{User: "ÉDITH"}, k(5)},
		{"kind ssh", index.Filter{Kind: index.KindSSH}, k(0, 1, 3, 4)},
		{"kind kubernetes", index.Filter{Kind: index.KindKubernetes}, k(2)},
		{"status", index.Filter{Status: "interrupted"}, k(3)},
		{"statuses", index.Filter{Status: "live,failed"}, k(4, 5)},
		{"since", index.Filter{Since: rs[3].Start}, k(3, 4, 5)},
		{"until", index.Filter{Until: rs[3].Start}, k(0, 1, 2)},
		{"since until", index.Filter{Since: rs[1].Start, Until: rs[4].Start}, k(1, 2, 3)},
		{"combined", index.Filter{Node: "web*", User: "ali*", Status: "complete"}, k(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := listAll(t, ix, tc.f, "", 2)
			if d := cmp.Diff(tc.want, byStart(got), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	// Text: only recordings whose screen text has it.
	if err := ix.AddChunks(ctx, rs[1].Key, 10, []index.Chunk{{Key: rs[1].Key, Seq: 0, TStart: 1, TEnd: 2, Text: "make deploy\nDeploying...\n"}}); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddChunks(ctx, rs[4].Key, 10, []index.Chunk{{Key: rs[4].Key, Seq: 0, TStart: 1, TEnd: 2, Text: "no such thing\n"}}); err != nil {
		t.Fatal(err)
	}
	got := listAll(t, ix, index.Filter{Text: "DEPLOY"}, "", 10)
	if d := cmp.Diff(k(1), keys(got)); d != "" {
		t.Errorf("Text filter (-want +got):\n%s", d)
	}
	if _, _, err := ix.List(ctx, index.Filter{Text: "de"}, index.Page{}); !errors.Is(err, index.ErrQueryShort) {
		t.Errorf("Text filter of 2 characters: %v, want ErrQueryShort", err)
	}
}

// testViewerNodes: Filter.Nodes restricts List, Search and ListEvents to
// the nodes a viewer may see; an empty, non-nil list shows nothing.
func testViewerNodes(t *testing.T, ix index.Index) {
	ctx := context.Background()
	a, b := rec("a", 1), rec("b", 2)
	put(t, ix, a, b)
	for _, r := range []index.Recording{a, b} {
		if err := ix.AddChunks(ctx, r.Key, 1, []index.Chunk{{Key: r.Key, TStart: 0, TEnd: 1, Text: "secret on " + r.Node + "\n"}}); err != nil {
			t.Fatal(err)
		}
		if err := ix.PutEvent(ctx, index.Event{ID: r.Node + "/e1", Node: r.Node, At: r.Start, Data: []byte(`{"type":"secret"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		nodes []string
		want  []string
	}{
		{nil, []string{"b", "a"}},
		{[]string{"a"}, []string{"a"}},
		{[]string{"b", "zzz"}, []string{"b"}},
		{[]string{}, nil},
	} {
		f := index.Filter{Nodes: tc.nodes}
		rows, _, err := ix.List(ctx, f, index.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.Node)
		}
		if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("List Nodes %q (-want +got):\n%s", tc.nodes, d)
		}
		hits, _, err := ix.Search(ctx, "secret", f, index.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, h := range hits {
			got = append(got, h.Recording.Node)
		}
		if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("Search Nodes %q (-want +got):\n%s", tc.nodes, d)
		}
		evs, _, err := ix.ListEvents(ctx, f, index.EventFilter{}, index.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, e := range evs {
			got = append(got, e.Node)
		}
		if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("ListEvents Nodes %q (-want +got):\n%s", tc.nodes, d)
		}
	}
}

type hitView struct {
	Key   string
	Line  string
	Match string
	At    float64
}

func viewHits(hs []index.Hit) []hitView {
	var out []hitView
	for _, h := range hs {
		out = append(out, hitView{h.Recording.Key, h.Line, h.Line[h.Match[0]:h.Match[1]], h.At})
	}
	return out
}

func search(t *testing.T, ix index.Index, q string, f index.Filter) []index.Hit {
	t.Helper()
	hits, _, err := ix.Search(context.Background(), q, f, index.Page{Limit: 1000})
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	return hits
}

func testSearch(t *testing.T, ix index.Index) {
	ctx := context.Background()
	old, young := rec("n", 1), rec("n", 2)
	young.User = "bob"
	put(t, ix, old, young)
	add := func(r index.Recording, indexed int64, cs ...index.Chunk) {
		t.Helper()
		for i := range cs {
			cs[i].Key = r.Key
		}
		if err := ix.AddChunks(ctx, r.Key, indexed, cs); err != nil {
			t.Fatal(err)
		}
	}
	add(old, 100,
		index.Chunk{Seq: 0, TStart: 0.5, TEnd: 20, Text: "$ ssh prod-db\nWelcome to Ubuntu\n$ sudo systemctl restart nginx\n", Times: []float64{0.5, 3.25, 19}},
		index.Chunk{Seq: 1, TStart: 30, TEnd: 40, Text: "Job for nginx.service failed\n"})
	add(young, 50, index.Chunk{Seq: 0, TStart: 1, TEnd: 2, Text: "NGINX -t ok\n"})

	got := viewHits(search(t, ix, "nginx", index.Filter{}))
	want := []hitView{
		{young.Key, "NGINX -t ok", "NGINX", 1},
		{old.Key, "$ sudo systemctl restart nginx", "nginx", 19},
		{old.Key, "Job for nginx.service failed", "nginx", 30},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Search nginx (-want +got):\n%s", d)
	}
	// A hit carries its chunk's span and its whole row.
	hits := search(t, ix, "restart nginx", index.Filter{})
	if len(hits) != 1 || hits[0].TStart != 0.5 || hits[0].TEnd != 20 || hits[0].Recording.Size != old.Size || hits[0].At != 19 {
		t.Errorf("Search phrase: %+v", hits)
	}
	// A phrase matches only as a whole: its words apart do not.
	if hits := search(t, ix, "nginx restart", index.Filter{}); len(hits) != 0 {
		t.Errorf("words out of order matched: %+v", viewHits(hits))
	}
	// Trigrams all present in a chunk, but not as one substring.
	if hits := search(t, ix, "sshprod", index.Filter{}); len(hits) != 0 {
		t.Errorf("scattered trigrams matched: %+v", viewHits(hits))
	}
	// Filters apply to hits.
	if got := viewHits(search(t, ix, "nginx", index.Filter{User: "bob"})); len(got) != 1 || got[0].Key != young.Key {
		t.Errorf("Search with user filter: %+v", got)
	}
	if got := search(t, ix, "nginx", index.Filter{Since: young.Start.Add(time.Second)}); len(got) != 0 {
		t.Errorf("Search with since after all: %+v", viewHits(got))
	}
	for _, q := range []string{"", "a", "ng", "é!"} {
		if _, _, err := ix.Search(ctx, q, index.Filter{}, index.Page{}); !errors.Is(err, index.ErrQueryShort) {
			t.Errorf("Search(%q): %v, want ErrQueryShort", q, err)
		}
	}
	// Deleting a recording removes its text.
	if err := ix.DeleteRecording(ctx, young.Key); err != nil {
		t.Fatal(err)
	}
	if got := viewHits(search(t, ix, "NGINX -t", index.Filter{})); len(got) != 0 {
		t.Errorf("hits of a deleted recording: %+v", got)
	}
}

// testSearchSpecial: characters that mean something to LIKE, FTS or SQL
// are searched for literally; case folds beyond ASCII.
func testSearchSpecial(t *testing.T, ix index.Index) {
	ctx := context.Background()
	r := rec("n", 1)
	put(t, ix, r)
	text := strings.Join([]string{
		`disk at 100% now`,
		`snake_case_name here`,
		`say "hello" and 'bye'`,
		`back\slash\path`,
		`École Über straße`,
		`日本語のテキスト`,
		`emoji 🎉🎉 party`,
		`a OR b AND NOT c NEAR(d)`,
		`ordinary line`,
	}, "\n") + "\n"
	if err := ix.AddChunks(ctx, r.Key, 1, []index.Chunk{{Key: r.Key, TStart: 0, TEnd: 1, Text: text}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, line, match string }{
		{"100%", "disk at 100% now", "100%"},
		{"0% n", "disk at 100% now", "0% n"},
		{"_ca", "snake_case_name here", "_ca"},
		{`"hello"`, `say "hello" and 'bye'`, `"hello"`},
		{`'bye'`, `say "hello" and 'bye'`, `'bye'`},
		{`k\s`, `back\slash\path`, `k\s`},
		{"école", "École Über straße", "École"},
		{"ÜBER", "École Über straße", "Über"},
		{"本語の", "日本語のテキスト", "本語の"},
		{"🎉🎉 ", "emoji 🎉🎉 party", "🎉🎉 "},
		{"OR b AND", "a OR b AND NOT c NEAR(d)", "OR b AND"},
		{"NEAR(d)", "a OR b AND NOT c NEAR(d)", "NEAR(d)"},
	} {
		got := viewHits(search(t, ix, tc.q, index.Filter{}))
		want := []hitView{{r.Key, tc.line, tc.match, 0}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Search(%q) (-want +got):\n%s", tc.q, d)
		}
	}
	// Wildcards of LIKE and GLOB are not wildcards here.
	for _, q := range []string{"%%%", "___", "a_c", "***", "[a]", "?????"} {
		if got := search(t, ix, q, index.Filter{}); len(got) != 0 {
			t.Errorf("Search(%q) matched: %+v", q, viewHits(got))
		}
	}
}

// testSearchPages: hits page stably, within a chunk and across chunks and
// recordings, with no hit lost or repeated.
func testSearchPages(t *testing.T, ix index.Index) {
	ctx := context.Background()
	var want []string
	for i := 3; i >= 1; i-- { // newest first
		r := rec("n", i)
		put(t, ix, r)
		var cs []index.Chunk
		for s := range 3 {
			var b strings.Builder
			for l := range 4 {
				fmt.Fprintf(&b, "line %d-%d-%d match\nfiller\n", i, s, l)
			}
			cs = append(cs, index.Chunk{Key: r.Key, Seq: s, TStart: float64(s * 30), TEnd: float64(s*30 + 29), Text: b.String()})
		}
		if err := ix.AddChunks(ctx, r.Key, 100, cs); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i >= 1; i-- {
		for s := range 3 {
			for l := range 4 {
				want = append(want, fmt.Sprintf("line %d-%d-%d match", i, s, l))
			}
		}
	}
	for _, limit := range []int{1, 5, 12, 13, 100} {
		var got []string
		after := ""
		for n := 0; n < 100; n++ {
			hits, next, err := ix.Search(ctx, "match", index.Filter{}, index.Page{Limit: limit, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) > limit {
				t.Fatalf("%d hits, limit %d", len(hits), limit)
			}
			for _, h := range hits {
				got = append(got, h.Line)
			}
			if next == "" {
				break
			}
			after = next
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("limit %d (-want +got):\n%s", limit, d)
		}
	}
}

// testSearchRepeats: a line repeated within a chunk (top redrawing, a
// prompt shown again) is a hit at each of its moments, the first
// included, even though the SQLite index lists each trigram of a chunk
// once; a hit deep in a large chunk (screentext.DefaultMaxBytes is 256 KiB)
// is at its own line's moment, within the chunk's span; and a chunk given
// twice in one call is stored once, with its last text.
func testSearchRepeats(t *testing.T, ix index.Index) {
	ctx := context.Background()
	r := rec("n", 1)
	put(t, ix, r)
	var text strings.Builder
	var times []float64
	line := func(s string, at float64) {
		text.WriteString(s + "\n")
		times = append(times, at)
	}
	line("top - 14:00:01 up 3 days, load average: 0.52", 30.5)
	for i := range 6000 { // some 240 KB
		line(fmt.Sprintf("%6d root 20 0 1.2g R 99.0 kworker/%d", i, i%7), 30.5+float64(i)/1000)
		if i%2000 == 1999 {
			line("top - 14:00:01 up 3 days, load average: 0.52", 31+float64(i)/1000)
		}
	}
	line("needle-7f3a deep in the chunk", 58.25)
	c := index.Chunk{Key: r.Key, Seq: 0, TStart: 30.5, TEnd: 58.25, Text: text.String(), Times: times}
	stale := c
	stale.Text, stale.Times = "stale-text-9b2e\n", []float64{30.5}
	if err := ix.AddChunks(ctx, r.Key, 10, []index.Chunk{stale, c}); err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, h := range search(t, ix, "LOAD AVERAGE: 0.52", index.Filter{}) {
		got = append(got, h.At)
	}
	if d := cmp.Diff([]float64{30.5, 32.999, 34.999, 36.999}, got, cmpopts.EquateApprox(0, 0.0005)); d != "" {
		t.Errorf("moments of a repeated line (-want +got):\n%s", d)
	}
	hits := search(t, ix, "needle-7f3a", index.Filter{})
	if len(hits) != 1 || hits[0].At != 58.25 || hits[0].At < hits[0].TStart || hits[0].At > hits[0].TEnd {
		t.Errorf("hit deep in a big chunk: %+v, want one at 58.25 within its span", viewHits(hits))
	}
	if hits := search(t, ix, "stale-text", index.Filter{}); len(hits) != 0 {
		t.Errorf("the first of a chunk given twice is searchable: %+v", viewHits(hits))
	}
	if hits := search(t, ix, "kworker/3", index.Filter{}); len(hits) != 857 {
		t.Errorf("%d hits of a line in many forms, want 857", len(hits))
	}
}

// testChunks: AddChunks and Indexed go together; a chunk added again
// replaces itself; ResetText drops the text; a failed AddChunks changes
// nothing.
func testChunks(t *testing.T, ix index.Index) {
	ctx := context.Background()
	r := rec("n", 1)
	put(t, ix, r)
	c0 := index.Chunk{Key: r.Key, Seq: 0, TStart: 0, TEnd: 5, Text: "alpha one\n"}
	c1 := index.Chunk{Key: r.Key, Seq: 1, TStart: 30, TEnd: 31, Text: "alpha two\n"}
	if err := ix.AddChunks(ctx, r.Key, 100, []index.Chunk{c0}); err != nil {
		t.Fatal(err)
	}
	indexed := func() int64 {
		got, err := ix.GetRecording(ctx, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		return got.Indexed
	}
	if n := indexed(); n != 100 {
		t.Errorf("Indexed %d, want 100", n)
	}
	// Resuming after a crash adds chunks already stored again: no duplicate.
	if err := ix.AddChunks(ctx, r.Key, 250, []index.Chunk{c0, c1}); err != nil {
		t.Fatal(err)
	}
	if got := viewHits(search(t, ix, "alpha", index.Filter{})); len(got) != 2 {
		t.Errorf("after adding a chunk twice: %+v", got)
	}
	if n := indexed(); n != 250 {
		t.Errorf("Indexed %d, want 250", n)
	}
	// A replaced chunk's old text is gone.
	c1b := c1
	c1b.Text = "beta two\n"
	if err := ix.AddChunks(ctx, r.Key, 260, []index.Chunk{c1b}); err != nil {
		t.Fatal(err)
	}
	if got := viewHits(search(t, ix, "alpha", index.Filter{})); len(got) != 1 || got[0].Line != "alpha one" {
		t.Errorf("after replacing chunk 1: %+v", got)
	}
	// A failed AddChunks (its context is done) leaves text and Indexed.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := ix.AddChunks(cctx, r.Key, 999, []index.Chunk{{Key: r.Key, Seq: 2, Text: "gamma three\n"}}); err == nil {
		t.Error("AddChunks with a cancelled context succeeded")
	}
	if n := indexed(); n != 260 {
		t.Errorf("Indexed %d after a failed AddChunks, want 260", n)
	}
	if got := search(t, ix, "gamma", index.Filter{}); len(got) != 0 {
		t.Errorf("text of a failed AddChunks is searchable: %+v", viewHits(got))
	}
	// Unknown recording.
	if err := ix.AddChunks(ctx, "n/missing.cast", 1, []index.Chunk{c0}); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("AddChunks for a missing recording: %v, want ErrNotFound", err)
	}
	if err := ix.ResetText(ctx, "n/missing.cast"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("ResetText for a missing recording: %v, want ErrNotFound", err)
	}
	// ResetText.
	if err := ix.ResetText(ctx, r.Key); err != nil {
		t.Fatal(err)
	}
	if n := indexed(); n != 0 {
		t.Errorf("Indexed %d after ResetText", n)
	}
	if got := search(t, ix, "alpha", index.Filter{}); len(got) != 0 {
		t.Errorf("text after ResetText: %+v", viewHits(got))
	}
}

func testEvents(t *testing.T, ix index.Index) {
	ctx := context.Background()
	mk := func(i int, node, user, verb, res, ns string) index.Event {
		return index.Event{
			ID: fmt.Sprintf("%s/ev-%03d", node, i), Node: node, At: t0.Add(time.Duration(i) * time.Second),
			User: user, Verb: verb, Resource: res, Namespace: ns, Name: fmt.Sprintf("obj-%d", i), Path: "/api/v1/x", Code: 200,
			Data: []byte(fmt.Sprintf(`{"type":"kubernetes-api-request","n":%d,"note":"Needle-%d"}`, i, i%3)),
		}
	}
	var all []index.Event
	for i := range 30 {
		e := mk(i, []string{"p1", "p2"}[i%2], []string{"Alice@example.com", "bob@example.com", "carol"}[i%3],
			[]string{"get", "list", "create"}[i%3], []string{"pods", "secrets"}[i%2], []string{"prod", "dev", "kube-system"}[i%3])
		all = append(all, e)
		if err := ix.PutEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Putting again replaces.
	if err := ix.PutEvent(ctx, all[0]); err != nil {
		t.Fatal(err)
	}
	ids := func(es []index.Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	want := func(keep func(index.Event) bool) []string {
		var out []string
		for i := len(all) - 1; i >= 0; i-- {
			if keep(all[i]) {
				out = append(out, all[i].ID)
			}
		}
		return out
	}
	listEvents := func(f index.Filter, ef index.EventFilter) []index.Event {
		var out []index.Event
		after := ""
		for {
			es, next, err := ix.ListEvents(ctx, f, ef, index.Page{Limit: 4, After: after})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, es...)
			if next == "" {
				return out
			}
			after = next
		}
	}
	got := listEvents(index.Filter{}, index.EventFilter{})
	if d := cmp.Diff(want(func(index.Event) bool { return true }), ids(got)); d != "" {
		t.Errorf("all events, newest first (-want +got):\n%s", d)
	}
	if d := cmp.Diff(all[29], got[0], cmpopts.EquateEmpty()); d != "" {
		t.Errorf("event round trip (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		name string
		f    index.Filter
		ef   index.EventFilter
		keep func(index.Event) bool
	}{
		{"node", index.Filter{Node: "p1"}, index.EventFilter{}, func(e index.Event) bool { return e.Node == "p1" }},
		{"user", index.Filter{User: "alice@EXAMPLE.com"}, index.EventFilter{}, func(e index.Event) bool { return e.User == "Alice@example.com" }},
		{"user prefix", index.Filter{User: "bob*"}, index.EventFilter{}, func(e index.Event) bool { return e.User == "bob@example.com" }},
		{"since until", index.Filter{Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second)}, index.EventFilter{}, func(e index.Event) bool {
			return !e.At.Before(t0.Add(10*time.Second)) && e.At.Before(t0.Add(20*time.Second))
		}},
		{"text", index.Filter{Text: "needle-2"}, index.EventFilter{}, func(e index.Event) bool { return strings.Contains(string(e.Data), "Needle-2") }},
		{"verb", index.Filter{}, index.EventFilter{Verb: "create"}, func(e index.Event) bool { return e.Verb == "create" }},
		{"resource namespace", index.Filter{}, index.EventFilter{Resource: "secrets", Namespace: "prod"}, func(e index.Event) bool {
			return e.Resource == "secrets" && e.Namespace == "prod"
		}},
		{"node and verb", index.Filter{Node: "p2"}, index.EventFilter{Verb: "get"}, func(e index.Event) bool { return e.Node == "p2" && e.Verb == "get" }},
	} {
		if d := cmp.Diff(want(tc.keep), ids(listEvents(tc.f, tc.ef)), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

// testConcurrency: writers and readers at once; every write lands once.
func testConcurrency(t *testing.T, ix index.Index) {
	ctx := context.Background()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("w%d", w)
			for i := range each {
				r := rec(node, i)
				r.Status = "live"
				if err := ix.PutRecording(ctx, r); err != nil {
					errs <- err
					return
				}
				if err := ix.AddChunks(ctx, r.Key, int64(i+1), []index.Chunk{{Key: r.Key, Seq: 0, TStart: 0, TEnd: 1, Text: fmt.Sprintf("concurrent %s %d\n", node, i)}}); err != nil {
					errs <- err
					return
				}
				r.Status = "complete"
				if err := ix.PutRecording(ctx, r); err != nil {
					errs <- err
					return
				}
				if err := ix.PutEvent(ctx, index.Event{ID: fmt.Sprintf("%s/%d", node, i), Node: node, At: r.Start, Data: []byte("{}")}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := ix.List(ctx, index.Filter{}, index.Page{Limit: 10}); err != nil {
					errs <- err
					return
				}
				if _, _, err := ix.Search(ctx, "concurrent", index.Filter{}, index.Page{Limit: 10}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all := listAll(t, ix, index.Filter{Status: "complete"}, "", 1000)
	if len(all) != writers*each {
		t.Errorf("%d complete recordings, want %d", len(all), writers*each)
	}
	hits, _, err := ix.Search(ctx, "concurrent", index.Filter{}, index.Page{Limit: 1000})
	if err != nil || len(hits) != writers*each {
		t.Errorf("%d hits, want %d (%v)", len(hits), writers*each, err)
	}
	for _, r := range all {
		if r.Indexed == 0 {
			t.Errorf("%s: Indexed 0 after AddChunks", r.Key)
		}
	}
}
