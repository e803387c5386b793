package memstore

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New:   func(t *testing.T) store.Store { return New(Options{}) },
		Crash: func(t *testing.T, s store.Store) store.Store { return s.(*Store).Crash() },
		ReadRaw: func(t *testing.T, s store.Store, key string) ([]byte, error) {
			if strings.HasSuffix(key, ".tail") {
				if b, ok := s.(*Store).Tail(key); ok {
					return b, nil
				}
				return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
			}
			r, err := s.Open(t.Context(), key)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			return io.ReadAll(r)
		},
		Reader: func(t *testing.T, s store.Store) store.Store { return &Store{d: s.(*Store).d} },
	})
}

func TestCrashDropsUnsynced(t *testing.T) {
	s := New(Options{})
	w, err := s.Create(t.Context(), "n", time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("synced\n"))
	w.Sync()
	w.Write([]byte("lost\n"))
	s2 := s.Crash()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Crash succeeded")
	}
	if _, err := s2.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := s2.Open(t.Context(), w.Key())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if string(b) != "synced\n" {
		t.Errorf("after crash: %q, want %q", b, "synced\n")
	}
}

func TestCapacity(t *testing.T) {
	s := New(Options{Capacity: 10})
	w, err := s.Create(t.Context(), "n", time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, store.ErrInsufficientSpace) {
		t.Errorf("Write past capacity: %v, want ErrInsufficientSpace", err)
	}
	if _, err := s.Create(t.Context(), "n", time.Unix(2, 0)); !errors.Is(err, store.ErrInsufficientSpace) {
		t.Errorf("Create when full: %v, want ErrInsufficientSpace", err)
	}
}
