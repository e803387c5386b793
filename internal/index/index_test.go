package index_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/index/indextest"
	"github.com/reel-rec/reel/internal/testutil"
)

var (
	pgOnce sync.Once
	pg     *indextest.Postgres
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

func TestSQLite(t *testing.T) {
	indextest.Run(t, func(t *testing.T) index.Index {
		ix, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "index.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	})
}

// postgresURL returns a new database in this test binary's cluster.
func postgresURL(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() { pg, pgErr = indextest.StartPostgres(context.Background(), "") })
	if pgErr != nil {
		testutil.SkipOrFail(t, "PostgreSQL: %v", pgErr)
	}
	url, err := pg.NewDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func TestPostgres(t *testing.T) {
	indextest.Run(t, func(t *testing.T) index.Index {
		ix, err := index.Open(context.Background(), postgresURL(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	})
}

// TestSQLiteUnusableFile: a file that is not a database, or is another
// program's database, is moved aside (never deleted), the move is
// logged, and a working index takes its place.
func TestSQLiteUnusableFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(path string)
	}{
		{"garbage", func(path string) {
			os.WriteFile(path, []byte("this is not a database, it is a text file\n"), 0o600)
		}},
		{"truncated", func(path string) {
			ix, err := index.Open(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			ix.Close()
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)/2+100], 0o600)
		}},
		{"foreign", func(path string) {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos (name) VALUES ('cat.jpg')`); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "index.db")
			tc.make(path)
			before, _ := os.ReadFile(path)
			var logs testutil.Buffer
			ix, err := index.Open(context.Background(), path, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer ix.Close()
			if !strings.Contains(logs.String(), "moved aside") {
				t.Errorf("no log of the move; log:\n%s", logs.String())
			}
			aside, _ := filepath.Glob(path + ".bad-*")
			var kept bool
			for _, a := range aside {
				if b, _ := os.ReadFile(a); bytes.Equal(b, before) {
					kept = true
				}
			}
			if !kept {
				t.Errorf("the old file was not kept beside (%v)", aside)
			}
			ctx := context.Background()
			r := index.Recording{Key: "n/2026-11-01T14-00-00.000000000Z.cast", Node: "n", Start: time.Now()}
			if err := ix.PutRecording(ctx, r); err != nil {
				t.Fatal(err)
			}
			if _, err := ix.GetRecording(ctx, r.Key); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A good index is opened as it is.
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := index.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := index.Recording{Key: "n/2026-11-01T14-00-00.000000000Z.cast", Node: "n", Start: time.Now()}
	ix.PutRecording(context.Background(), r)
	ix.Close()
	ix, err = index.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := ix.GetRecording(context.Background(), r.Key); err != nil {
		t.Errorf("a good index lost its row on reopening: %v", err)
	}
	if aside, _ := filepath.Glob(path + ".bad-*"); len(aside) > 0 {
		t.Errorf("a good index was moved aside: %v", aside)
	}
}

// TestSQLiteFTSTuning: the text index's merge policy is set when the index
// opens, on a new file and on one made before the setting existed.
func TestSQLiteFTSTuning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	for range 2 {
		ix, err := index.Open(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		ix.Close()
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		rows, err := db.Query(`SELECT k, v FROM chunks_fts_config WHERE k IN ('automerge', 'crisismerge', 'pgsz')`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var v int
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		rows.Close()
		if want := map[string]int{"automerge": 16, "crisismerge": 64, "pgsz": 16000}; !maps.Equal(got, want) {
			t.Errorf("FTS5 configuration %v, want %v", got, want)
		}
		// As if made before: FTS5's defaults again.
		if _, err := db.Exec(`DELETE FROM chunks_fts_config WHERE k IN ('automerge', 'crisismerge', 'pgsz')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}
