package evidence

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
)

// TestObjectLock holds a recording in a bucket with object lock: the
// bucket itself then refuses to delete it, with the very credentials the
// recorder uses, and retention keeps it; released, it can go. It runs on
// every server that supports object lock (MinIO must; versitygw's support
// is reported).
func TestObjectLock(t *testing.T) {
	for _, server := range s3test.Names {
		t.Run(server, func(t *testing.T) {
			srv := s3test.Start(t, server)
			e := newS3Env(t, srv)
			e.cfg.CreateBucket = false
			if err := e.raw.MakeBucket(t.Context(), true); err != nil {
				if server == "minio" {
					t.Fatalf("create a bucket with object lock: %v", err)
				}
				t.Skipf("%s: no bucket with object lock: %v", server, err)
			}
			b := e.recorder(t).(*s3store.Store)
			enabled, err := b.ObjectLock(t.Context())
			if err != nil || !enabled {
				if server == "minio" {
					t.Fatalf("ObjectLock() = %v, %v; want enabled", enabled, err)
				}
				b.Close()
				t.Skipf("%s: object lock not reported enabled: %v, %v", server, enabled, err)
			}
			k := mustKey(t)
			s := openSealer(t, b, filepath.Join(t.TempDir(), "evidence"), k)
			defer s.Close()
			key := record(t, s, "node-1", t0, castData(200), 0, store.StatusComplete)
			other := record(t, s, "node-1", t0.Add(time.Second), castData(20), 0, store.StatusComplete)
			e.settle(t, b)

			now := t0.AddDate(2, 0, 0)
			holds := &Holds{Files: b, Now: func() time.Time { return now }}
			hd, err := holds.Add(t.Context(), key, "carol", "litigation")
			if err != nil {
				t.Fatalf("hold: %v", err)
			}
			if !hd.Locked {
				t.Fatalf("hold %+v: the bucket does not hold it", hd)
			}
			// The recorder's own credentials cannot delete it.
			if err := e.raw.Remove(t.Context(), key); err == nil {
				t.Fatalf("%s: deleted a held recording with the bucket's credentials", server)
			} else {
				t.Logf("%s refuses to delete a held object: %v", server, err)
			}
			if err := e.raw.Remove(t.Context(), key+SealSuffix); err == nil {
				t.Errorf("%s: deleted a held recording's seal", server)
			}
			if got := e.get(t, key); len(got) == 0 {
				t.Error("the held recording is gone")
			}
			pol, _ := policy.Parse("p", []byte(`{"retention": [{"keep": "1y"}]}`))
			r := &Retention{Store: b, Sealer: s, Policy: pol, Holds: holds, Now: func() time.Time { return now }}
			done, err := r.Apply(t.Context(), false)
			if err != nil {
				t.Fatal(err)
			}
			if got := actions(done); got[key] != ActionHeld || got[other] != ActionDelete {
				t.Errorf("retention: %v; want %s held, %s deleted", got, key, other)
			}
			if _, err := b.Stat(t.Context(), other); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the recording not held is still there: %v", err)
			}
			// Released: the bucket lets it go.
			if err := holds.Remove(t.Context(), key, "carol", "settled"); err != nil {
				t.Fatal(err)
			}
			if err := e.raw.Remove(t.Context(), key); err != nil {
				t.Errorf("after release: %v", err)
			}
		})
	}
}
