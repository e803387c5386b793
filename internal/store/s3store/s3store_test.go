package s3store_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
	"github.com/reel-rec/reel/internal/store/storetest"
	"github.com/reel-rec/reel/internal/testutil"
)

// env is one running S3 server and the stores tests opened on it.
type env struct {
	srv    *s3test.Server
	client *minio.Client // an independent view of the bucket

	mu   sync.Mutex
	cfgs map[*s3store.Store]s3store.Config
}

var bucketSeq atomic.Int64

func newEnv(t *testing.T, server string) *env {
	t.Helper()
	srv := s3test.Start(t, server)
	return &env{srv: srv, client: srv.Client(t), cfgs: map[*s3store.Store]s3store.Config{}}
}

// config returns a Config for a fresh bucket (every other one under a
// prefix) and spool.
func (e *env) config(t *testing.T) s3store.Config {
	n := bucketSeq.Add(1)
	cfg := s3store.Config{
		Endpoint:     e.srv.Addr,
		Insecure:     true,
		Bucket:       fmt.Sprintf("reel-test-%d", n),
		AccessKey:    e.srv.AccessKey,
		SecretKey:    e.srv.SecretKey,
		CreateBucket: true,
		SpoolDir:     filepath.Join(t.TempDir(), "spool"),
		PartSize:     s3store.MinPartSize,
		RetryMin:     20 * time.Millisecond,
		RetryMax:     500 * time.Millisecond,
		Log:          testLogger(t),
	}
	if n%2 == 1 {
		cfg.Prefix = fmt.Sprintf("recordings/run-%d", n)
	}
	return cfg
}

func (e *env) open(t *testing.T, cfg s3store.Config) *s3store.Store {
	t.Helper()
	s, err := s3store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	e.mu.Lock()
	e.cfgs[s] = cfg
	e.mu.Unlock()
	return s
}

func (e *env) cfgOf(t *testing.T, s store.Store) s3store.Config {
	e.mu.Lock()
	defer e.mu.Unlock()
	cfg, ok := e.cfgs[s.(*s3store.Store)]
	if !ok {
		t.Fatal("store not opened by this env")
	}
	return cfg
}

func flush(t *testing.T, s *s3store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testutil.DefaultWait)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// readObject reads key straight from the bucket.
func (e *env) readObject(ctx context.Context, cfg s3store.Config, key string) ([]byte, error) {
	prefix := cfg.Prefix
	if prefix != "" {
		prefix += "/"
	}
	obj, err := e.client.GetObject(ctx, cfg.Bucket, prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return b, err
}

func (e *env) harness() storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) store.Store { return e.open(t, e.config(t)) },
		Crash: func(t *testing.T, s store.Store) store.Store {
			cfg := e.cfgOf(t, s)
			s3store.Crash(s.(*s3store.Store))
			return e.open(t, cfg)
		},
		ReadRaw: func(t *testing.T, s store.Store, key string) ([]byte, error) {
			flush(t, s.(*s3store.Store))
			return e.readObject(t.Context(), e.cfgOf(t, s), key)
		},
		Reader: func(t *testing.T, s store.Store) store.Store {
			flush(t, s.(*s3store.Store))
			cfg := e.cfgOf(t, s)
			cfg.SpoolDir = ""
			return e.open(t, cfg)
		},
	}
}

func TestConformance(t *testing.T) {
	for _, server := range s3test.Names {
		t.Run(server, func(t *testing.T) {
			e := newEnv(t, server)
			storetest.Run(t, e.harness())
		})
	}
}
