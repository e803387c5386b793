package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// dialect is what differs between the SQL databases behind sqlIndex.
type dialect interface {
	// ph is the placeholder of the n-th argument (1-based).
	ph(n int) string
	// chunkFrom is the FROM clause that gives chunks as c and their text.
	chunkFrom() string
	// chunkText is the expression of a chunk's text in chunkFrom.
	chunkText() string
	// textMatch is a condition on chunkFrom: the chunk's text contains q.
	textMatch(b *builder, q string) string
	// candidates is a condition on chunkFrom that keeps every chunk whose
	// text contains q, and maybe others (Search checks each line), cheaply.
	candidates(b *builder, q string) string
	// textsByID selects (id, text) of the chunks whose ids are listed.
	textsByID(placeholders string) string
	// eventMatch is a condition on events e: the event's JSON contains q,
	// ignoring case.
	eventMatch(b *builder, q string) string
	// putChunks inserts or replaces chunks of recording rid.
	putChunks(ctx context.Context, tx *sql.Tx, rid int64, cs []Chunk) error
	// deleteChunks removes every chunk of recording rid.
	deleteChunks(ctx context.Context, tx *sql.Tx, rid int64) error
	// retry reports whether err is a transient conflict worth retrying
	// (SQLite's busy database).
	retry(err error) bool
	// unindexed is col in a form the planner will not use an index for
	// (SQLite: +col), or "" when the dialect's planner needs no such
	// hint (PostgreSQL estimates ranges from its statistics).
	unindexed(col string) string
	// putDone is told, after each batch, how many rows it put
	// (SQLite keeps its planner statistics fresh in the writer, db, and
	// the readers, rdb).
	putDone(ctx context.Context, db, rdb *sql.DB, n int)
}

// sqlIndex is the Index over database/sql shared by SQLite and
// PostgreSQL. Both keep the same tables: recordings (one row per
// recording, id an integer key), rec_users (the names Filter.User finds
// a recording by), chunks (rid, seq, times; the text where the dialect
// keeps it) and events.
type sqlIndex struct {
	db    *sql.DB // writes (SQLite: one connection)
	rdb   *sql.DB // reads; may be db
	d     dialect
	now   func() time.Time
	close func() error
}

// builder gathers a query's arguments.
type builder struct {
	d    dialect
	args []any
	// wideNode: Filter.Node is a prefix that matches many rows, so the
	// node condition is checked row by row, not looked up by index.
	wideNode bool
	// busyUser: Filter.User has many rows and a node filters too, so the
	// user is checked row by row, not looked up by index.
	busyUser bool
}

// SQLite's planner cannot tell how many rows a node prefix or a user
// matches (its statistics hold averages), so List counts them in the
// index first, up to these bounds (a few milliseconds), and hints.
var (
	// wideNodeRows is how many rows a node prefix must match for List to
	// walk the index of its sort order and check the node on each row
	// (about limit × rows/wideNodeRows of them) rather than find every
	// matching row by node and sort them all.
	wideNodeRows = 10000
	// busyUserRows is how many recordings a user must have for List,
	// when a node also filters, to walk the node's index in sort order
	// and check the user against the set of the user's ids in memory
	// (the index entries hold the id), rather than fetch every one of
	// the user's rows and sort them.
	busyUserRows = 500
)

// hints sets b.wideNode and b.busyUser for f (SQLite only).
func (x *sqlIndex) hints(ctx context.Context, b *builder, f Filter) error {
	if x.d.unindexed("r.id") == "" {
		return nil
	}
	count := func(table, col, v string, max int) (bool, error) {
		c := &builder{d: x.d}
		w := c.match(col, v)
		var n int
		err := x.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+table+` WHERE `+w+` LIMIT `+c.arg(max)+`)`, c.args...).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("index: list: %w", err)
		}
		return n >= max, nil
	}
	var err error
	if _, _, pre := prefixRange(f.Node); pre {
		if b.wideNode, err = count("recordings", "node", f.Node, wideNodeRows); err != nil {
			return err
		}
	}
	byNode := (f.Node != "" && !b.wideNode) || len(f.Nodes) > 0
	if f.User != "" && byNode {
		b.busyUser, err = count("rec_users", "name", strings.ToLower(f.User), busyUserRows)
	}
	return err
}

func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	return b.d.ph(len(b.args))
}

// match is the condition that col equals v, or starts with it when v
// ends in "*".
func (b *builder) match(col, v string) string {
	lo, hi, pre := prefixRange(v)
	switch {
	case !pre:
		return col + " = " + b.arg(lo)
	case hi == "":
		return col + " >= " + b.arg(lo)
	}
	return col + " >= " + b.arg(lo) + " AND " + col + " < " + b.arg(hi)
}

// in is the condition that col is one of vs (none: false).
func (b *builder) in(col string, vs []string) string {
	if len(vs) == 0 {
		return "1 = 0"
	}
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = b.arg(v)
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")"
}

const recCols = `r.id, r.key, r.node, r.sender, r.start_ns, r.end_ns, r.size, r.status, r.reason, r.kind, r.user_name, r.login, r.local_user, r.tags, r.command, r.title, r.width, r.height, r.pod, r.namespace, r.container, r.indexed, r.updated_ns`

type scanner interface{ Scan(...any) error }

func scanRecording(s scanner, extra ...any) (int64, Recording, error) {
	var (
		r                   Recording
		id, start, end, upd int64
		tags, kind, status  string
	)
	dst := []any{&id, &r.Key, &r.Node, &r.Sender, &start, &end, &r.Size, &status, &r.Reason, &kind, &r.User, &r.Login, &r.LocalUser, &tags, &r.Command, &r.Title, &r.Width, &r.Height, &r.Pod, &r.Namespace, &r.Container, &r.Indexed, &upd}
	if err := s.Scan(append(dst, extra...)...); err != nil {
		return 0, r, err
	}
	r.Status, r.Kind = status, Kind(kind)
	r.Start = time.Unix(0, start).UTC()
	if end != 0 {
		r.End = time.Unix(0, end).UTC()
	}
	r.Updated = time.Unix(0, upd).UTC()
	if tags != "" {
		json.Unmarshal([]byte(tags), &r.Tags)
	}
	return id, r, nil
}

// tx runs fn in a transaction, retrying a transient conflict.
func (x *sqlIndex) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := x.tx1(ctx, fn)
		if err == nil || attempt >= 20 || !x.d.retry(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
}

func (x *sqlIndex) tx1(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (x *sqlIndex) PutRecording(ctx context.Context, r Recording) error {
	return x.PutRecordings(ctx, []Recording{r})
}

// PutRecordings puts several rows in one transaction (Batcher).
func (x *sqlIndex) PutRecordings(ctx context.Context, rs []Recording) error {
	for _, r := range rs {
		if r.Key == "" {
			return errors.New("index: recording without a key")
		}
	}
	err := x.tx(ctx, func(tx *sql.Tx) error {
		// The statements are prepared once per batch, not once per row.
		var st putStmts
		defer st.close()
		var err error
		if st.upsert, err = tx.PrepareContext(ctx, x.upsertSQL()); err != nil {
			return fmt.Errorf("index: put: %w", err)
		}
		if st.delUsers, err = tx.PrepareContext(ctx, `DELETE FROM rec_users WHERE rid = `+x.d.ph(1)); err != nil {
			return fmt.Errorf("index: put: %w", err)
		}
		if st.addUser, err = tx.PrepareContext(ctx, `INSERT INTO rec_users (name, rid) VALUES (`+x.d.ph(1)+`, `+x.d.ph(2)+`)`); err != nil {
			return fmt.Errorf("index: put: %w", err)
		}
		for _, r := range rs {
			if err := x.putRecording(ctx, &st, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		x.d.putDone(ctx, x.db, x.rdb, len(rs))
	}
	return err
}

// putStmts are PutRecordings' statements, prepared in its transaction.
type putStmts struct{ upsert, delUsers, addUser *sql.Stmt }

func (st *putStmts) close() {
	for _, s := range []*sql.Stmt{st.upsert, st.delUsers, st.addUser} {
		if s != nil {
			s.Close()
		}
	}
}

// recPutCols are the columns putRecording writes, in its argument order.
var recPutCols = []string{"key", "node", "sender", "start_ns", "end_ns", "dur_ns", "size", "status", "reason", "kind", "user_name", "login", "local_user", "tags", "command", "title", "width", "height", "pod", "namespace", "container", "updated_ns"}

// upsertSQL inserts or updates one recording by key and returns its id.
func (x *sqlIndex) upsertSQL() string {
	ph := make([]string, len(recPutCols))
	for i := range ph {
		ph[i] = x.d.ph(i + 1)
	}
	set := make([]string, 0, len(recPutCols))
	for _, c := range recPutCols[1:] {
		set = append(set, c+" = excluded."+c)
	}
	return `INSERT INTO recordings (` + strings.Join(recPutCols, ", ") + `, indexed) VALUES (` + strings.Join(ph, ", ") + `, 0)
		ON CONFLICT (key) DO UPDATE SET ` + strings.Join(set, ", ") + ` RETURNING id`
}

func (x *sqlIndex) putRecording(ctx context.Context, st *putStmts, r Recording) error {
	tags := ""
	if len(r.Tags) > 0 {
		b, _ := json.Marshal(r.Tags)
		tags = string(b)
	}
	var end int64
	if !r.End.IsZero() {
		end = r.End.UnixNano()
	}
	vals := []any{r.Key, r.Node, r.Sender, r.Start.UnixNano(), end, durNanos(r), r.Size, r.Status, r.Reason, string(r.Kind), r.User, r.Login, r.LocalUser, tags, r.Command, r.Title, r.Width, r.Height, r.Pod, r.Namespace, r.Container, x.now().UnixNano()}
	var id int64
	if err := st.upsert.QueryRowContext(ctx, vals...).Scan(&id); err != nil {
		return fmt.Errorf("index: put %q: %w", r.Key, err)
	}
	if _, err := st.delUsers.ExecContext(ctx, id); err != nil {
		return fmt.Errorf("index: put %q: %w", r.Key, err)
	}
	for _, n := range userNames(r) {
		if _, err := st.addUser.ExecContext(ctx, n, id); err != nil {
			return fmt.Errorf("index: put %q: %w", r.Key, err)
		}
	}
	return nil
}

func (x *sqlIndex) GetRecording(ctx context.Context, key string) (Recording, error) {
	_, r, err := scanRecording(x.rdb.QueryRowContext(ctx, `SELECT `+recCols+` FROM recordings r WHERE r.key = `+x.d.ph(1), key))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	if err != nil {
		return r, fmt.Errorf("index: get %q: %w", key, err)
	}
	return r, nil
}

// recID returns the id of key's row inside tx.
func (x *sqlIndex) recID(ctx context.Context, tx *sql.Tx, key string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM recordings WHERE key = `+x.d.ph(1), key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return id, err
}

func (x *sqlIndex) DeleteRecording(ctx context.Context, key string) error {
	return x.tx(ctx, func(tx *sql.Tx) error {
		id, err := x.recID(ctx, tx, key)
		if err != nil {
			return err
		}
		if err := x.d.deleteChunks(ctx, tx, id); err != nil {
			return fmt.Errorf("index: delete %q: %w", key, err)
		}
		for _, q := range []string{`DELETE FROM rec_users WHERE rid = `, `DELETE FROM recordings WHERE id = `} {
			if _, err := tx.ExecContext(ctx, q+x.d.ph(1), id); err != nil {
				return fmt.Errorf("index: delete %q: %w", key, err)
			}
		}
		return nil
	})
}

func (x *sqlIndex) AddChunks(ctx context.Context, key string, indexed int64, chunks []Chunk) error {
	return x.tx(ctx, func(tx *sql.Tx) error {
		id, err := x.recID(ctx, tx, key)
		if err != nil {
			return err
		}
		if err := x.d.putChunks(ctx, tx, id, chunks); err != nil {
			return fmt.Errorf("index: add chunks of %q: %w", key, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE recordings SET indexed = `+x.d.ph(1)+`, updated_ns = `+x.d.ph(2)+` WHERE id = `+x.d.ph(3), indexed, x.now().UnixNano(), id)
		if err != nil {
			return fmt.Errorf("index: add chunks of %q: %w", key, err)
		}
		return nil
	})
}

func (x *sqlIndex) ResetText(ctx context.Context, key string) error {
	return x.tx(ctx, func(tx *sql.Tx) error {
		id, err := x.recID(ctx, tx, key)
		if err != nil {
			return err
		}
		if err := x.d.deleteChunks(ctx, tx, id); err != nil {
			return fmt.Errorf("index: reset text of %q: %w", key, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE recordings SET indexed = 0, updated_ns = `+x.d.ph(1)+` WHERE id = `+x.d.ph(2), x.now().UnixNano(), id)
		return err
	})
}

// recWhere returns the conditions f puts on recordings r.
func (x *sqlIndex) recWhere(b *builder, f Filter) []string {
	var w []string
	if f.Node != "" {
		col := "r.node"
		if b.wideNode {
			col = x.d.unindexed(col)
		}
		w = append(w, b.match(col, f.Node))
	}
	if f.Nodes != nil {
		w = append(w, b.in("r.node", f.Nodes))
	}
	if f.User != "" {
		col := "r.id"
		if b.busyUser {
			col = x.d.unindexed(col)
		}
		w = append(w, col+" IN (SELECT rid FROM rec_users WHERE "+b.match("name", strings.ToLower(f.User))+")")
	}
	if f.Kind != "" {
		w = append(w, "r.kind = "+b.arg(string(f.Kind)))
	}
	if ss := statuses(f.Status); len(ss) > 0 {
		w = append(w, b.in("r.status", ss))
	}
	if !f.Since.IsZero() {
		w = append(w, "r.start_ns >= "+b.arg(f.Since.UnixNano()))
	}
	if !f.Until.IsZero() {
		w = append(w, "r.start_ns < "+b.arg(f.Until.UnixNano()))
	}
	if f.Text != "" {
		w = append(w, "r.id IN (SELECT c.rid FROM "+x.d.chunkFrom()+" WHERE "+x.d.textMatch(b, f.Text)+")")
	}
	return w
}

func where(w []string) string {
	if len(w) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w, " AND ")
}

func (x *sqlIndex) List(ctx context.Context, f Filter, p Page) ([]Recording, string, error) {
	q, args, err := x.listQuery(ctx, f, p)
	if err != nil {
		return nil, "", err
	}
	spec, _ := sortOf(p.Sort)
	limit := pageLimit(p)
	rows, err := x.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("index: list: %w", err)
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		_, r, err := scanRecording(rows)
		if err != nil {
			return nil, "", fmt.Errorf("index: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("index: list: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = cursor{Sort: p.Sort, V: spec.value(last), K: last.Key}.encode()
	}
	return out, next, nil
}

// listQuery is List's query for f and p, and its arguments.
func (x *sqlIndex) listQuery(ctx context.Context, f Filter, p Page) (string, []any, error) {
	if f.Text != "" {
		if err := checkQuery(f.Text); err != nil {
			return "", nil, err
		}
	}
	spec, err := sortOf(p.Sort)
	if err != nil {
		return "", nil, err
	}
	cur, err := decodeCursor(p.After)
	if err != nil {
		return "", nil, err
	}
	b := &builder{d: x.d}
	if err := x.hints(ctx, b, f); err != nil {
		return "", nil, err
	}
	w := x.recWhere(b, f)
	op, dir := ">", "ASC"
	if spec.desc {
		op, dir = "<", "DESC"
	}
	if cur != nil {
		if cur.Sort != p.Sort {
			return "", nil, errors.New("index: page cursor is for another sort")
		}
		w = append(w, "(r."+spec.col+", r.key) "+op+" ("+b.arg(cur.V)+", "+b.arg(cur.K)+")")
	}
	q := `SELECT ` + recCols + ` FROM recordings r` + where(w) +
		` ORDER BY r.` + spec.col + ` ` + dir + `, r.key ` + dir + ` LIMIT ` + b.arg(pageLimit(p)+1)
	return q, b.args, nil
}

func (x *sqlIndex) Search(ctx context.Context, text string, f Filter, p Page) ([]Hit, string, error) {
	if err := checkQuery(text); err != nil {
		return nil, "", err
	}
	if f.Text != "" {
		if err := checkQuery(f.Text); err != nil {
			return nil, "", err
		}
	}
	cur, err := decodeCursor(p.After)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(p)
	// Candidate chunks are found in hit order, in batches, by the text
	// index alone (no text read); then the batch's texts are read and the
	// lines that hold the text picked out, until the page is full and one
	// more hit shows there is a next page.
	var hits []Hit
	var pos []cursor
	batch := 16
	type cand struct {
		r            Recording
		id           int64
		seq          int
		tstart, tend float64
		times        []byte
	}
	for len(hits) <= limit {
		b := &builder{d: x.d}
		w := x.recWhere(b, f)
		if cur != nil {
			v, k, s := b.arg(cur.V), b.arg(cur.K), b.arg(cur.S)
			w = append(w, "(r.start_ns < "+v+" OR (r.start_ns = "+v+" AND (r.key < "+k+" OR (r.key = "+k+" AND c.seq >= "+s+"))))")
		}
		w = append(w, x.d.candidates(b, text))
		q := `SELECT ` + recCols + `, c.id, c.seq, c.tstart, c.tend, c.times` +
			` FROM ` + x.d.chunkFrom() + ` JOIN recordings r ON r.id = c.rid` + where(w) +
			` ORDER BY r.start_ns DESC, r.key DESC, c.seq ASC LIMIT ` + b.arg(batch)
		rows, err := x.rdb.QueryContext(ctx, q, b.args...)
		if err != nil {
			return nil, "", fmt.Errorf("index: search: %w", err)
		}
		var cands []cand
		for rows.Next() {
			var c cand
			if _, c.r, err = scanRecording(rows, &c.id, &c.seq, &c.tstart, &c.tend, &c.times); err != nil {
				rows.Close()
				return nil, "", fmt.Errorf("index: search: %w", err)
			}
			cands = append(cands, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, "", fmt.Errorf("index: search: %w", err)
		}
		if len(cands) == 0 {
			break
		}
		ids := make([]int64, len(cands))
		for i, c := range cands {
			ids[i] = c.id
		}
		texts, err := x.texts(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for _, c := range cands {
			after := -1
			if cur != nil && cur.K == c.r.Key && cur.V == c.r.Start.UnixNano() && cur.S == c.seq {
				after = cur.L
			}
			hs, lines := chunkHits(c.r, c.seq, c.tstart, c.tend, texts[c.id], decodeTimes(c.tstart, c.times), text, after, limit+1-len(hits))
			for i := range hs {
				hits = append(hits, hs[i])
				pos = append(pos, cursor{V: c.r.Start.UnixNano(), K: c.r.Key, S: c.seq, L: lines[i]})
			}
			// The next batch starts after this chunk.
			cur = &cursor{V: c.r.Start.UnixNano(), K: c.r.Key, S: c.seq + 1, L: -1}
			if len(hits) > limit {
				break
			}
		}
		if len(cands) < batch {
			break
		}
		batch = min(batch*2, 1024)
	}
	next := ""
	if len(hits) > limit {
		hits = hits[:limit]
		next = pos[limit-1].encode()
	}
	return hits, next, nil
}

// texts reads the texts of chunks by id.
func (x *sqlIndex) texts(ctx context.Context, ids []int64) (map[int64]string, error) {
	b := &builder{d: x.d}
	ph := make([]string, len(ids))
	for i, id := range ids {
		ph[i] = b.arg(id)
	}
	rows, err := x.rdb.QueryContext(ctx, x.d.textsByID(strings.Join(ph, ", ")), b.args...)
	if err != nil {
		return nil, fmt.Errorf("index: search: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]string, len(ids))
	for rows.Next() {
		var id int64
		var t string
		if err := rows.Scan(&id, &t); err != nil {
			return nil, fmt.Errorf("index: search: %w", err)
		}
		out[id] = t
	}
	return out, rows.Err()
}

func (x *sqlIndex) PutEvent(ctx context.Context, e Event) error {
	if e.ID == "" {
		return errors.New("index: event without an id")
	}
	return x.tx(ctx, func(tx *sql.Tx) error {
		b := &builder{d: x.d}
		vals := []any{e.ID, e.Node, e.At.UnixNano(), e.User, strings.ToLower(e.User), e.Verb, e.Resource, e.Subresource, e.Namespace, e.Name, e.Path, e.Code, string(e.Data)}
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = b.arg(v)
		}
		cols := []string{"id", "node", "at_ns", "user_name", "user_lc", "verb", "resource", "subresource", "namespace", "name", "path", "code", "data"}
		set := make([]string, 0, len(cols))
		for _, c := range cols[1:] {
			set = append(set, c+" = excluded."+c)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO events (`+strings.Join(cols, ", ")+`) VALUES (`+strings.Join(ph, ", ")+`)
			ON CONFLICT (id) DO UPDATE SET `+strings.Join(set, ", "), b.args...)
		if err != nil {
			return fmt.Errorf("index: put event %q: %w", e.ID, err)
		}
		return nil
	})
}

func (x *sqlIndex) ListEvents(ctx context.Context, f Filter, ef EventFilter, p Page) ([]Event, string, error) {
	cur, err := decodeCursor(p.After)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(p)
	b := &builder{d: x.d}
	var w []string
	if f.Node != "" {
		w = append(w, b.match("e.node", f.Node))
	}
	if f.Nodes != nil {
		w = append(w, b.in("e.node", f.Nodes))
	}
	if f.User != "" {
		w = append(w, b.match("e.user_lc", strings.ToLower(f.User)))
	}
	if !f.Since.IsZero() {
		w = append(w, "e.at_ns >= "+b.arg(f.Since.UnixNano()))
	}
	if !f.Until.IsZero() {
		w = append(w, "e.at_ns < "+b.arg(f.Until.UnixNano()))
	}
	if f.Text != "" {
		if err := checkQuery(f.Text); err != nil {
			return nil, "", err
		}
		w = append(w, x.d.eventMatch(b, f.Text))
	}
	for _, c := range []struct{ col, v string }{{"verb", ef.Verb}, {"resource", ef.Resource}, {"namespace", ef.Namespace}} {
		if c.v != "" {
			w = append(w, "e."+c.col+" = "+b.arg(c.v))
		}
	}
	if cur != nil {
		w = append(w, "(e.at_ns, e.id) < ("+b.arg(cur.V)+", "+b.arg(cur.K)+")")
	}
	q := `SELECT e.id, e.node, e.at_ns, e.user_name, e.verb, e.resource, e.subresource, e.namespace, e.name, e.path, e.code, e.data FROM events e` +
		where(w) + ` ORDER BY e.at_ns DESC, e.id DESC LIMIT ` + b.arg(limit+1)
	rows, err := x.rdb.QueryContext(ctx, q, b.args...)
	if err != nil {
		return nil, "", fmt.Errorf("index: list events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var data string
		if err := rows.Scan(&e.ID, &e.Node, &at, &e.User, &e.Verb, &e.Resource, &e.Subresource, &e.Namespace, &e.Name, &e.Path, &e.Code, &data); err != nil {
			return nil, "", fmt.Errorf("index: list events: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		e.Data = []byte(data)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("index: list events: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = cursor{V: last.At.UnixNano(), K: last.ID}.encode()
	}
	return out, next, nil
}

func (x *sqlIndex) Close() error { return x.close() }
