package fsstore_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/store/storetest"
)

// TestMain checks for leaked goroutines: some tests run the recorder.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			s, err := fsstore.Open(t.TempDir(), fsstore.Options{MinFree: -1})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Crash: func(t *testing.T, s store.Store) store.Store {
			fs := s.(*fsstore.Store)
			fsstore.Crash(fs)
			s2, err := fsstore.Open(fs.Dir(), fsstore.Options{MinFree: -1})
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			return s2
		},
		ReadRaw: func(t *testing.T, s store.Store, key string) ([]byte, error) {
			b, err := os.ReadFile(filepath.Join(s.(*fsstore.Store).Dir(), filepath.FromSlash(key)))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
			}
			return b, err
		},
		Reader: func(t *testing.T, s store.Store) store.Store {
			r, err := fsstore.OpenReadOnly(s.(*fsstore.Store).Dir())
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	})
}
