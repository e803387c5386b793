package index_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

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
