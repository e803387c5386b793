package index

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// appID marks a SQLite file as reel's index ("reel").
const appID = 0x7265656c

// sqliteSchema is the SQLite schema, one migration per version: the file's
// user_version is the number applied.
var sqliteSchema = []string{
	1: `
PRAGMA application_id = 0x7265656c;
CREATE TABLE recordings (
	id INTEGER PRIMARY KEY,
	key TEXT NOT NULL UNIQUE,
	node TEXT NOT NULL,
	sender TEXT NOT NULL DEFAULT '',
	start_ns INTEGER NOT NULL,
	end_ns INTEGER NOT NULL DEFAULT 0,
	dur_ns INTEGER NOT NULL DEFAULT 0,
	size INTEGER NOT NULL DEFAULT 0,
	status TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	kind TEXT NOT NULL DEFAULT '',
	user_name TEXT NOT NULL DEFAULT '',
	login TEXT NOT NULL DEFAULT '',
	local_user TEXT NOT NULL DEFAULT '',
	tags TEXT NOT NULL DEFAULT '',
	command TEXT NOT NULL DEFAULT '',
	title TEXT NOT NULL DEFAULT '',
	width INTEGER NOT NULL DEFAULT 0,
	height INTEGER NOT NULL DEFAULT 0,
	pod TEXT NOT NULL DEFAULT '',
	namespace TEXT NOT NULL DEFAULT '',
	container TEXT NOT NULL DEFAULT '',
	indexed INTEGER NOT NULL DEFAULT 0,
	updated_ns INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recordings_start ON recordings (start_ns, key);
CREATE INDEX recordings_node ON recordings (node, start_ns, key);
CREATE INDEX recordings_kind ON recordings (kind, start_ns, key);
CREATE INDEX recordings_status ON recordings (status, start_ns, key);
CREATE INDEX recordings_size ON recordings (size, key);
CREATE INDEX recordings_dur ON recordings (dur_ns, key);
CREATE TABLE rec_users (name TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (name, rid)) WITHOUT ROWID;
CREATE INDEX rec_users_rid ON rec_users (rid);
CREATE TABLE chunks (
	id INTEGER PRIMARY KEY,
	rid INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	tstart REAL NOT NULL,
	tend REAL NOT NULL,
	times BLOB,
	UNIQUE (rid, seq)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5 (text, tokenize = 'trigram', detail = 'none');
CREATE TABLE events (
	id TEXT PRIMARY KEY,
	node TEXT NOT NULL,
	at_ns INTEGER NOT NULL,
	user_name TEXT NOT NULL DEFAULT '',
	user_lc TEXT NOT NULL DEFAULT '',
	verb TEXT NOT NULL DEFAULT '',
	resource TEXT NOT NULL DEFAULT '',
	subresource TEXT NOT NULL DEFAULT '',
	namespace TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL DEFAULT '',
	path TEXT NOT NULL DEFAULT '',
	code INTEGER NOT NULL DEFAULT 0,
	data TEXT NOT NULL
);
CREATE INDEX events_at ON events (at_ns, id);
CREATE INDEX events_node ON events (node, at_ns, id);
CREATE INDEX events_user ON events (user_lc, at_ns, id);
`,
	// 2: the text moves to chunks.text, and FTS5 indexes a document of each
	// chunk's distinct trigrams instead (trigramDoc): several times less
	// work for the same index. The old text is dropped and every
	// recording's Indexed set back to 0, so the indexer extracts the text
	// again from the store in the background (its catch-up at start);
	// converting it here would hold up the recorder's start.
	2: `
DROP TABLE chunks_fts;
DROP TABLE chunks;
CREATE TABLE chunks (
	id INTEGER PRIMARY KEY,
	rid INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	tstart REAL NOT NULL,
	tend REAL NOT NULL,
	times BLOB,
	text TEXT NOT NULL,
	UNIQUE (rid, seq)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5 (words, content = '', contentless_delete = 1, tokenize = 'ascii', detail = 'none');
UPDATE recordings SET indexed = 0;
`,
}

// quickCheckMax is the largest file checked page by page at open; a
// larger one is only checked for its header and schema, so a recorder
// with a big index starts at once.
const quickCheckMax = 256 << 20

// openSQLite opens (creating) the index in the SQLite file path. A file
// that is not a database, is corrupt, or belongs to something else is
// moved aside (logged, never deleted) and a new index made.
var _ Index = (*sqlIndex)(nil)

func openSQLite(ctx context.Context, path string, log *slog.Logger) (Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if reason := checkSQLiteFile(ctx, path); reason != "" {
		aside := fmt.Sprintf("%s.bad-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		for _, suf := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(path+suf, aside+suf); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("index: %s is unusable (%s) and cannot be moved aside: %w", path, reason, err)
			}
		}
		log.Warn("index file unusable: moved aside; a new index is built from the store", "path", path, "reason", reason, "moved_to", aside)
	}
	dsn := func(write bool) string {
		v := url.Values{}
		v.Add("_pragma", "busy_timeout(10000)")
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", "synchronous(NORMAL)")
		// Statement journals (an upsert's, inside a batch) and sorts in
		// memory, not in temporary files: they were most of a batch's
		// writes. Nothing durable is kept there.
		v.Add("_pragma", "temp_store(MEMORY)")
		// ANALYZE (PRAGMA optimize) reads a sample of each index: at a
		// million rows, 20000 rows tell a status (few values) from a node
		// (hundreds) in a second or two; 1000 did not.
		v.Add("_pragma", "analysis_limit(20000)")
		if write {
			v.Set("_txlock", "immediate")
			// A batch of 1000 rows dirties more pages than the default
			// 2 MB cache, which then spills them to the WAL mid-batch.
			v.Add("_pragma", "cache_size(-32768)")
		} else {
			v.Add("_pragma", "cache_size(-8192)")
		}
		return "file:" + path + "?" + v.Encode()
	}
	db, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // SQLite has one writer; queue here, not in busy waits
	if err := migrateSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	if err := tuneFTS(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	// The planner needs statistics to choose between the indexes (without
	// them a filter on status, 6 values, looks as selective as one on
	// node, hundreds): gather them now if they are missing or stale.
	if err := optimize(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	rdb.SetConnMaxLifetime(readerLifetime)
	return &sqlIndex{db: db, rdb: rdb, d: sqliteDialect{put: new(atomic.Int64)}, now: time.Now, close: func() error {
		_, err := db.Exec(`PRAGMA optimize`)
		return errors.Join(err, rdb.Close(), db.Close())
	}}, nil
}

// checkSQLiteFile returns why the file at path cannot be used as the
// index, or "" when it can (or does not exist yet).
func checkSQLiteFile(ctx context.Context, path string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return ""
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var app, version, tables int
	if err := db.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&app); err != nil {
		return "not a database: " + err.Error()
	}
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return "not a database: " + err.Error()
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&tables); err != nil {
		return "corrupt: " + err.Error()
	}
	switch {
	case app != appID && tables > 0:
		return fmt.Sprintf("not reel's index (application_id %#x)", app)
	case app == appID && version > len(sqliteSchema)-1:
		return "" // a newer reel's index: migrate refuses it with a clear error
	}
	if fi.Size() <= quickCheckMax {
		var res string
		if err := db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&res); err != nil {
			return "corrupt: " + err.Error()
		}
		if res != "ok" {
			return "corrupt: " + res
		}
	}
	return ""
}

func migrateSQLite(ctx context.Context, db *sql.DB) error {
	for {
		var version int
		if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return err
		}
		last := len(sqliteSchema) - 1
		if version > last {
			return fmt.Errorf("index schema version %d is newer than this reel knows (%d): upgrade reel, or remove the file and run reel index rebuild", version, last)
		}
		if version == last {
			return nil
		}
		// One migration per transaction; the version is read again inside
		// it, so that two processes opening at once apply each only once.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			tx.Rollback()
			return err
		}
		if v == version {
			if _, err := tx.ExecContext(ctx, sqliteSchema[v+1]); err != nil {
				tx.Rollback()
				return fmt.Errorf("schema migration %d: %w", v+1, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
}

// optimizeAll runs ANALYZE on every table whose statistics are missing
// or whose row count changed much since they were gathered (SQLite
// 3.46+: a no-op otherwise, so it is cheap to repeat).
const optimizeAll = `PRAGMA optimize=0x10002`

// optimize gathers statistics (optimizeAll), then drops those of FTS5's
// own tables. Gathered while the index was new, they said its data table
// had 2 rows, and the planner then chose to scan the whole table for each
// range of segment pages FTS5 deletes after a merge (PRAGMA optimize
// never updates them: the table has no index): half of all the indexing
// time at 200 MB of cast, and growing with the index. Without statistics
// SQLite assumes a large table and uses the rowid range. A connection
// keeps the row counts it loaded even when their statistics are gone, so
// the one that gathered them is closed.
func optimize(ctx context.Context, db *sql.DB) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, optimizeAll); err != nil {
		return err
	}
	var n int
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'`).Scan(&n); err != nil || n == 0 {
		return err
	}
	res, err := c.ExecContext(ctx, `DELETE FROM sqlite_stat1 WHERE tbl LIKE 'chunks\_fts\_%' ESCAPE '\'`)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		c.Raw(func(any) error { return driver.ErrBadConn }) // not reused
	}
	return nil
}

// ftsTuning is FTS5's merge policy for the text index, set at every open
// (FTS5 keeps it in chunks_fts_config). FTS5's defaults (automerge 4,
// crisismerge 16, pages of 4050 bytes) merge segments often, which was a
// large part of indexing's CPU; these merge less and write larger leaf
// pages: 16.1-17.3 -> 18.5-18.9 MB/s of cast per CPU-second on the 200 MiB
// corpus (docs/benchmarks.md), search p50 4.5 -> 7.6 ms, p99 63 -> 53 ms.
var ftsTuning = []struct {
	key   string
	value int
}{{"automerge", 16}, {"crisismerge", 64}, {"pgsz", 16000}}

func tuneFTS(ctx context.Context, db *sql.DB) error {
	for _, c := range ftsTuning {
		if _, err := db.ExecContext(ctx, `INSERT INTO chunks_fts (chunks_fts, rank) VALUES (?, ?)`, c.key, c.value); err != nil {
			return fmt.Errorf("setting FTS5's %s: %w", c.key, err)
		}
	}
	return nil
}

type sqliteDialect struct {
	put *atomic.Int64 // rows put since open
}

func (sqliteDialect) ph(n int) string { return "?" + strconv.Itoa(n) }

func (sqliteDialect) chunkFrom() string {
	return "chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid"
}

func (sqliteDialect) chunkText() string { return "c.text" }

// textMatch looks up every trigram of q in the index (which keeps no
// positions) and checks the candidates with reel_contains, which folds
// case as the index does.
func (sqliteDialect) textMatch(b *builder, q string) string {
	return "chunks_fts MATCH " + b.arg(trigramMatch(q)) + " AND reel_contains(c.text, " + b.arg(q) + ")"
}

func (sqliteDialect) candidates(b *builder, q string) string {
	return "chunks_fts MATCH " + b.arg(trigramMatch(q))
}

func (sqliteDialect) textsByID(ph string) string {
	return "SELECT id, text FROM chunks WHERE id IN (" + ph + ")"
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("reel_contains", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		s, _ := args[0].(string)
		q, _ := args[1].(string)
		_, _, ok := findFold(s, q)
		return ok, nil
	})
}

func (sqliteDialect) eventMatch(b *builder, q string) string {
	return "instr(lower(e.data), " + b.arg(strings.ToLower(q)) + ") > 0"
}

// putChunks writes the chunks' rows first and their FTS5 documents after,
// one after the other: FTS5 writes what it has pending to a new segment of
// its index at every statement savepoint, and a write to chunks (unique
// (rid, seq), RETURNING) opens one. Interleaved, each chunk made a segment
// of its own, and FTS5 spent its time merging them; this way a batch makes
// one.
func (sqliteDialect) putChunks(ctx context.Context, tx *sql.Tx, rid int64, cs []Chunk) error {
	ids := make([]int64, len(cs))
	for i, c := range cs {
		times := encodeTimes(c.TStart, c.Times)
		err := tx.QueryRowContext(ctx, `SELECT id FROM chunks WHERE rid = ? AND seq = ?`, rid, c.Seq).Scan(&ids[i])
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = tx.QueryRowContext(ctx, `INSERT INTO chunks (rid, seq, tstart, tend, times, text) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
				rid, c.Seq, c.TStart, c.TEnd, times, c.Text).Scan(&ids[i])
			if err != nil {
				return fmt.Errorf("chunk %d: %w", c.Seq, err)
			}
		case err != nil:
			return fmt.Errorf("chunk %d: %w", c.Seq, err)
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE chunks SET tstart = ?, tend = ?, times = ?, text = ? WHERE id = ?`, c.TStart, c.TEnd, times, c.Text, ids[i]); err != nil {
				return fmt.Errorf("chunk %d: %w", c.Seq, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM chunks_fts WHERE rowid = ?`, ids[i]); err != nil {
				return fmt.Errorf("chunk %d: %w", c.Seq, err)
			}
		}
	}
	if len(cs) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO chunks_fts (rowid, words) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	last := make(map[int64]int, len(cs)) // a chunk given twice: its last text
	for i, id := range ids {
		last[id] = i
	}
	var doc []byte
	for i, c := range cs {
		if last[ids[i]] != i {
			continue
		}
		doc = trigramDoc(doc[:0], c.Text)
		if _, err := ins.ExecContext(ctx, ids[i], string(doc)); err != nil {
			return fmt.Errorf("chunk %d: %w", c.Seq, err)
		}
	}
	return nil
}

func (sqliteDialect) deleteChunks(ctx context.Context, tx *sql.Tx, rid int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE rid = ?)`, rid); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE rid = ?`, rid)
	return err
}

func (sqliteDialect) unindexed(col string) string { return "+" + col }

// putDone runs PRAGMA optimize after every optimizeRows rows put, so a
// rebuild of a big index or a fast-growing one gets statistics as it
// grows, not only at the next open.
//
// A connection reads the statistics when it opens and never again (ANALYZE
// does not tell other connections), so the readers' idle connections are
// closed after new statistics: a reader opened while the index was empty
// would otherwise plan every query without any (node + user + status took
// 235 ms instead of 1 ms at a million rows, bench/index -mode p5).
func (d sqliteDialect) putDone(ctx context.Context, db, rdb *sql.DB, n int) {
	if t := d.put.Add(int64(n)); t/optimizeRows != (t-int64(n))/optimizeRows {
		if err := optimize(ctx, db); err == nil { // best effort: statistics only
			rdb.SetMaxIdleConns(0)
			rdb.SetMaxIdleConns(readConns)
		}
	}
}

// optimizeRows is how often (in rows put) the SQLite index re-checks its
// planner statistics (a variable for tests).
var optimizeRows int64 = 50000

// readConns is how many connections the SQLite index reads with at once.
// A reader busy while statistics change keeps the old ones for at most
// readerLifetime.
const (
	readConns      = 4
	readerLifetime = 10 * time.Minute
)

func (sqliteDialect) retry(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}
