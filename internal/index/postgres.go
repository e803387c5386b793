package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// postgresSchema is the PostgreSQL schema, one migration per version;
// reel_index_schema holds the number applied. Text columns compared by
// range (keys, nodes, user names) use the "C" collation: byte order, as
// in SQLite, whatever the database's locale.
var postgresSchema = []string{
	1: `
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE recordings (
	id bigserial PRIMARY KEY,
	key text COLLATE "C" NOT NULL UNIQUE,
	node text COLLATE "C" NOT NULL,
	sender text NOT NULL DEFAULT '',
	start_ns bigint NOT NULL,
	end_ns bigint NOT NULL DEFAULT 0,
	dur_ns bigint NOT NULL DEFAULT 0,
	size bigint NOT NULL DEFAULT 0,
	status text COLLATE "C" NOT NULL DEFAULT '',
	reason text NOT NULL DEFAULT '',
	kind text COLLATE "C" NOT NULL DEFAULT '',
	user_name text NOT NULL DEFAULT '',
	login text NOT NULL DEFAULT '',
	local_user text NOT NULL DEFAULT '',
	tags text NOT NULL DEFAULT '',
	command text NOT NULL DEFAULT '',
	title text NOT NULL DEFAULT '',
	width integer NOT NULL DEFAULT 0,
	height integer NOT NULL DEFAULT 0,
	pod text NOT NULL DEFAULT '',
	namespace text NOT NULL DEFAULT '',
	container text NOT NULL DEFAULT '',
	indexed bigint NOT NULL DEFAULT 0,
	updated_ns bigint NOT NULL DEFAULT 0
);
CREATE INDEX recordings_start ON recordings (start_ns, key);
CREATE INDEX recordings_node ON recordings (node, start_ns, key);
CREATE INDEX recordings_kind ON recordings (kind, start_ns, key);
CREATE INDEX recordings_status ON recordings (status, start_ns, key);
CREATE INDEX recordings_size ON recordings (size, key);
CREATE INDEX recordings_dur ON recordings (dur_ns, key);
CREATE TABLE rec_users (name text COLLATE "C" NOT NULL, rid bigint NOT NULL, PRIMARY KEY (name, rid));
CREATE INDEX rec_users_rid ON rec_users (rid);
CREATE TABLE chunks (
	id bigserial PRIMARY KEY,
	rid bigint NOT NULL,
	seq integer NOT NULL,
	tstart double precision NOT NULL,
	tend double precision NOT NULL,
	times bytea,
	text text NOT NULL,
	UNIQUE (rid, seq)
);
CREATE INDEX chunks_text ON chunks USING gin (text gin_trgm_ops);
CREATE TABLE events (
	id text COLLATE "C" PRIMARY KEY,
	node text COLLATE "C" NOT NULL,
	at_ns bigint NOT NULL,
	user_name text NOT NULL DEFAULT '',
	user_lc text COLLATE "C" NOT NULL DEFAULT '',
	verb text NOT NULL DEFAULT '',
	resource text NOT NULL DEFAULT '',
	subresource text NOT NULL DEFAULT '',
	namespace text NOT NULL DEFAULT '',
	name text NOT NULL DEFAULT '',
	path text NOT NULL DEFAULT '',
	code integer NOT NULL DEFAULT 0,
	data text NOT NULL
);
CREATE INDEX events_at ON events (at_ns, id);
CREATE INDEX events_node ON events (node, at_ns, id);
CREATE INDEX events_user ON events (user_lc, at_ns, id);
`,
}

// pgLockID is the advisory lock that serialises migrations between
// recorders starting at once.
const pgLockID = 0x7265656c

func openPostgres(ctx context.Context, url string) (Index, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: connect to PostgreSQL: %w", err)
	}
	if err := migratePostgres(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: PostgreSQL: %w", err)
	}
	return &sqlIndex{db: db, rdb: db, d: pgDialect{}, now: time.Now, close: db.Close}, nil
}

func migratePostgres(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS reel_index_schema (version integer NOT NULL)`); err != nil {
		return err
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM reel_index_schema`).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO reel_index_schema (version) VALUES (0)`); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if version > len(postgresSchema)-1 {
		return fmt.Errorf("index schema version %d is newer than this reel knows (%d): upgrade reel", version, len(postgresSchema)-1)
	}
	for v := version + 1; v < len(postgresSchema); v++ {
		if _, err := tx.ExecContext(ctx, postgresSchema[v]); err != nil {
			return fmt.Errorf("schema migration %d: %w", v, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE reel_index_schema SET version = $1`, len(postgresSchema)-1); err != nil {
		return err
	}
	return tx.Commit()
}

type pgDialect struct{}

func (pgDialect) ph(n int) string { return fmt.Sprintf("$%d", n) }

func (pgDialect) chunkFrom() string { return "chunks c" }

func (pgDialect) chunkText() string { return "c.text" }

func (pgDialect) textMatch(b *builder, q string) string {
	return `c.text ILIKE ` + b.arg("%"+likeEscape(q)+"%") + ` ESCAPE '\'`
}

func (d pgDialect) candidates(b *builder, q string) string { return d.textMatch(b, q) }

func (pgDialect) textsByID(ph string) string {
	return "SELECT id, text FROM chunks WHERE id IN (" + ph + ")"
}

func (pgDialect) eventMatch(b *builder, q string) string {
	return `e.data ILIKE ` + b.arg("%"+likeEscape(q)+"%") + ` ESCAPE '\'`
}

func (pgDialect) putChunks(ctx context.Context, tx *sql.Tx, rid int64, cs []Chunk) error {
	for _, c := range cs {
		_, err := tx.ExecContext(ctx, `INSERT INTO chunks (rid, seq, tstart, tend, times, text) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (rid, seq) DO UPDATE SET tstart = excluded.tstart, tend = excluded.tend, times = excluded.times, text = excluded.text`,
			rid, c.Seq, c.TStart, c.TEnd, encodeTimes(c.TStart, c.Times), c.Text)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", c.Seq, err)
		}
	}
	return nil
}

func (pgDialect) deleteChunks(ctx context.Context, tx *sql.Tx, rid int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE rid = $1`, rid)
	return err
}

func (pgDialect) retry(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" // serialization failure, deadlock
	}
	return false
}

// unindexed: PostgreSQL's planner estimates a node range from its
// statistics (autovacuum keeps them), so it needs no hint.
func (pgDialect) unindexed(string) string { return "" }

func (pgDialect) putDone(context.Context, *sql.DB, *sql.DB, int) {}
