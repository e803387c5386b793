package s3store_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store"
)

// TestSpoolOfAnotherBucket: a spool whose recordings have all landed may
// serve another bucket, though it still keeps its senders' identities;
// the identity lands in the new bucket with the first recording there.
func TestSpoolOfAnotherBucket(t *testing.T) {
	e := newEnv(t, "versitygw")
	const sender = "spiffe://corp/ssh/bastion-1"
	first := e.config(t)
	s := e.open(t, first)
	w, err := s.Create(t.Context(), sender, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("{\"version\":2}\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	second := e.config(t)
	second.SpoolDir = first.SpoolDir
	s = e.open(t, second)
	defer s.Close()
	w, err = s.Create(t.Context(), sender, time.Unix(1700000001, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	reader := second
	reader.SpoolDir = ""
	r := e.open(t, reader)
	defer r.Close()
	if info, err := r.Stat(t.Context(), w.Key()); err != nil || info.Sender != sender {
		t.Errorf("Stat in the second bucket: %+v, %v; want sender %q", info, err, sender)
	}
}

// TestSpoolInUse: a second store on the same spool is refused, naming the
// process that holds it.
func TestSpoolInUse(t *testing.T) {
	e := newEnv(t, "versitygw")
	cfg := e.config(t)
	s := e.open(t, cfg)
	defer s.Close()
	s2, err := s3store.Open(t.Context(), cfg)
	if err == nil {
		s2.Close()
	}
	var iu *store.InUseError
	if !errors.As(err, &iu) || !errors.Is(err, store.ErrInUse) || iu.PID != os.Getpid() || iu.Dir != cfg.SpoolDir {
		t.Errorf("second Open on the spool: %v; want a *store.InUseError for %s, pid %d", err, cfg.SpoolDir, os.Getpid())
	}
}
