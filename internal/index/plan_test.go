package index

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSQLiteListPlans checks the query plans of the list filters that
// were slow at a million rows (bench/index -mode p5): SQLite must not
// pick them by a guess.
func TestSQLiteListPlans(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	// open returns an index of rs, opened again so that it has gathered
	// its statistics, as at a recorder's start.
	open := func(rs []Recording) *sqlIndex {
		t.Helper()
		path := filepath.Join(t.TempDir(), "index.db")
		ix, err := openSQLite(ctx, path, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.(Batcher).PutRecordings(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		if ix, err = openSQLite(ctx, path, log); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.Close() })
		return ix.(*sqlIndex)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 3000 recordings on 300 nodes by 20 users, nearly all complete.
	var rs []Recording
	for i := range 3000 {
		r := Recording{
			Key: fmt.Sprintf("node-%03d/%05d.cast", i%300, i), Node: fmt.Sprintf("node-%03d", i%300),
			Start: start.Add(time.Duration(i) * time.Minute), User: fmt.Sprintf("user%02d@example.com", i%20),
			Kind: KindSSH, Status: "complete",
		}
		if i%100 == 0 {
			r.Status = "failed"
		}
		rs = append(rs, r)
	}
	ix := open(rs)
	plan := func(x *sqlIndex, f Filter) string { t.Helper(); return listPlan(t, x, f) }

	// Node, user and status: the status index finds nearly every row.
	if p := plan(ix, Filter{Node: "node-007", User: "user07", Status: "complete"}); strings.Contains(p, "recordings_status") {
		t.Errorf("node + user + status: plan %q walks the status index", p)
	}

	defer func(n, u int) { wideNodeRows, busyUserRows = n, u }(wideNodeRows, busyUserRows)
	wideNodeRows = 100
	// A prefix that matches many rows (node-1*: 1000) walks the start
	// index in order and checks the node: no sort of every match.
	wide := plan(ix, Filter{Node: "node-1*"})
	if !strings.Contains(wide, "recordings_start") || strings.Contains(wide, "TEMP B-TREE") {
		t.Errorf("wide node prefix: plan %q, want a walk of recordings_start without a sort", wide)
	}
	// One that matches few (node-199*: 10) finds them by node.
	if p := plan(ix, Filter{Node: "node-199*"}); !strings.Contains(p, "recordings_node") {
		t.Errorf("narrow node prefix: plan %q, want recordings_node", p)
	}
	// Both ways give the same pages.
	list := func(ix *sqlIndex, f Filter) []string {
		var keys []string
		p := Page{Limit: 70}
		for {
			page, next, err := ix.List(ctx, f, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				keys = append(keys, r.Key)
			}
			if next == "" {
				return keys
			}
			p.After = next
		}
	}
	f := Filter{Node: "node-1*", Status: "complete"}
	got := list(ix, f)
	wideNodeRows = 1 << 30
	want := list(ix, f)
	if len(want) != 990 || !slices.Equal(got, want) {
		t.Errorf("node-1* walking the start index: %d rows, by node: %d rows (want 990, the same)", len(got), len(want))
	}

	// 3000 recordings on 3 nodes by 300 users, but one user (busy) has
	// 600 of them: by the averages, a user is the better way in.
	rs = rs[:0]
	for i := range 3000 {
		u := fmt.Sprintf("user%03d", i%300)
		if i%5 == 0 {
			u = "busy"
		}
		rs = append(rs, Recording{
			Key: fmt.Sprintf("n%d/%05d.cast", i%3, i), Node: fmt.Sprintf("n%d", i%3),
			Start: start.Add(time.Duration(i) * time.Minute), User: u + "@example.com", Kind: KindSSH, Status: "complete",
		})
	}
	ix = open(rs)
	busyUserRows = 100
	// The busy user: walk the node's index in order and check the user
	// on each entry (its id is there), rather than fetch and sort all 600.
	if p := plan(ix, Filter{Node: "n1", User: "busy", Status: "complete"}); !strings.Contains(p, "recordings_node") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("node + busy user + status: plan %q, want a walk of recordings_node without a sort", p)
	}
	// A quiet one (10 rows) is still found by user.
	if p := plan(ix, Filter{Node: "n1", User: "user001", Status: "complete"}); !strings.Contains(p, "rec_users") || strings.Contains(p, "recordings_node") {
		t.Errorf("node + quiet user + status: plan %q, want the user's rows", p)
	}
	u := Filter{Node: "n1", User: "busy"}
	got = list(ix, u)
	busyUserRows = 1 << 30
	want = list(ix, u)
	if len(want) != 200 || !slices.Equal(got, want) {
		t.Errorf("n1 + busy walking the node index: %d rows, by user: %d rows (want 200, the same)", len(got), len(want))
	}
}

// listPlan is SQLite's plan for List(f), its steps joined by "; ".
func listPlan(t *testing.T, x *sqlIndex, f Filter) string {
	ctx := context.Background()
	t.Helper()
	q, args, err := x.listQuery(ctx, f, Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := x.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "; ")
}

// TestSQLiteReadersSeeNewStatistics: a reader connection opened while the
// index was empty plans with statistics once the index has grown and
// gathered them, without a restart (at a million rows, node + user +
// status walked the status index: 235 ms instead of 1 ms).
func TestSQLiteReadersSeeNewStatistics(t *testing.T) {
	ctx := context.Background()
	defer func(n int64) { optimizeRows = n }(optimizeRows)
	optimizeRows = 1000
	ix, err := openSQLite(ctx, filepath.Join(t.TempDir(), "index.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	x := ix.(*sqlIndex)
	f := Filter{Node: "node-007", User: "user07", Status: "complete"}
	// Readers open now, on an empty index, and stay in the pool.
	for range readConns {
		if _, _, err := x.List(ctx, f, Page{}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rs []Recording
	for i := range 3000 {
		rs = append(rs, Recording{
			Key: fmt.Sprintf("node-%03d/%05d.cast", i%300, i), Node: fmt.Sprintf("node-%03d", i%300),
			Start: start.Add(time.Duration(i) * time.Minute), User: fmt.Sprintf("user%02d@example.com", i%20),
			Kind: KindSSH, Status: "complete",
		})
	}
	if err := x.PutRecordings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// The query first (its hints read through the pool too), then every
	// reader: held all at once so that the pool hands out each.
	q, args, err := x.listQuery(ctx, f, Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var conns []*sql.Conn
	for range readConns {
		c, err := x.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var steps []string
		rows, err := c.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		rows.Close()
		if p := strings.Join(steps, "; "); strings.Contains(p, "recordings_status") {
			t.Errorf("reader %d: node + user + status: plan %q walks the status index (statistics from the empty index)", i, p)
		}
		c.Close()
	}
}

// TestSQLiteFTSDeletesByRange: after a merge FTS5 deletes the pages of the
// merged segments by a range of rowids of its data table. Statistics
// gathered while the index was new said that table had 2 rows, and SQLite
// then scanned the whole table for each range: half of all indexing time
// on 200 MB of cast, and more as the index grew. Neither the statistics at
// open nor those gathered as rows are put may lead it there.
func TestSQLiteFTSDeletesByRange(t *testing.T) {
	ctx := context.Background()
	defer func(n int64) { optimizeRows = n }(optimizeRows)
	optimizeRows = 100
	path := filepath.Join(t.TempDir(), "index.db")
	log := slog.New(slog.DiscardHandler)
	plan := func(x *sqlIndex) string {
		t.Helper()
		rows, err := x.db.QueryContext(ctx, `EXPLAIN QUERY PLAN DELETE FROM chunks_fts_data WHERE id >= ? AND id <= ?`, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var steps []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		return strings.Join(steps, "; ")
	}
	check := func(x *sqlIndex, when string) {
		t.Helper()
		if p := plan(x); !strings.Contains(p, "SEARCH") || strings.Contains(p, "SCAN") {
			t.Errorf("%s: plan of FTS5's delete of a segment %q, want a search by rowid range", when, p)
		}
	}
	// A new index, closed (PRAGMA optimize) and opened again.
	ix, err := openSQLite(ctx, path, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if ix, err = openSQLite(ctx, path, log); err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	x := ix.(*sqlIndex)
	check(x, "at open")
	// Statistics gathered as recordings are put, with little text yet.
	var rs []Recording
	for i := range 300 {
		rs = append(rs, Recording{Key: fmt.Sprintf("n/%04d.cast", i), Node: "n", Start: time.Unix(int64(i), 0)})
	}
	if err := x.PutRecordings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := x.AddChunks(ctx, rs[0].Key, 1, []Chunk{{Key: rs[0].Key, Text: "some text\n"}}); err != nil {
		t.Fatal(err)
	}
	var stats int
	if err := x.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_stat1`).Scan(&stats); err != nil || stats == 0 {
		t.Fatalf("no statistics gathered (%d rows, %v)", stats, err)
	}
	check(x, "after statistics were gathered")
}

// TestSQLiteMigrateText: an index written by a reel before the trigram
// documents (schema 1: the text in an FTS5 trigram table) opens, has its
// text dropped and every recording marked for indexing again from the
// store (Indexed 0, which the indexer's catch-up takes up), and indexes
// and finds new text.
func TestSQLiteMigrateText(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	path := filepath.Join(t.TempDir(), "index.db")
	current := sqliteSchema
	sqliteSchema = current[:2]
	ix, err := openSQLite(ctx, path, log)
	sqliteSchema = current
	if err != nil {
		t.Fatal(err)
	}
	r := Recording{Key: "n/old.cast", Node: "n", Start: time.Unix(1, 0), Size: 100, Status: "complete"}
	x := ix.(*sqlIndex)
	if err := x.PutRecording(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE recordings SET indexed = 100`,
		`INSERT INTO chunks (id, rid, seq, tstart, tend) SELECT 1, id, 0, 0, 1 FROM recordings`,
		`INSERT INTO chunks_fts (rowid, text) VALUES (1, 'old text here')`,
	} {
		if _, err := x.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	if ix, err = openSQLite(ctx, path, log); err != nil {
		t.Fatalf("open an index of schema 1: %v", err)
	}
	defer ix.Close()
	got, err := ix.GetRecording(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Indexed != 0 {
		t.Errorf("Indexed %d after the migration, want 0 (index the text again)", got.Indexed)
	}
	if hits, _, err := ix.Search(ctx, "old text", Filter{}, Page{}); err != nil || len(hits) != 0 {
		t.Errorf("Search after the migration: %d hits, %v; want none", len(hits), err)
	}
	if err := ix.AddChunks(ctx, r.Key, 100, []Chunk{{Key: r.Key, TEnd: 1, Text: "old text here\n"}}); err != nil {
		t.Fatal(err)
	}
	if hits, _, err := ix.Search(ctx, "old text", Filter{}, Page{}); err != nil || len(hits) != 1 {
		t.Errorf("Search of text indexed again: %d hits, %v; want 1", len(hits), err)
	}
}
