package fsstore_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// TestOpenErrors: opening a store fails with what the user needs to know,
// in their words: who holds the directory, or what is wrong with it.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	held := filepath.Join(dir, "held")
	s, err := fsstore.Open(held, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	afile := filepath.Join(dir, "afile")
	if err := os.WriteFile(afile, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		open      func() error
		want      string
		wantInUse bool
	}{
		{"in use", func() error { _, err := fsstore.Open(held, fsstore.Options{}); return err },
			fmt.Sprintf("another reel process (pid %d) is using %s", os.Getpid(), held), true},
		{"a file", func() error { _, err := fsstore.Open(afile, fsstore.Options{}); return err },
			afile + " is not a directory", false},
		{"under a file", func() error { _, err := fsstore.Open(filepath.Join(afile, "x"), fsstore.Options{}); return err },
			filepath.Join(afile, "x") + ": a part of the path is not a directory", false},
		{"read-only, missing", func() error { _, err := fsstore.OpenReadOnly(filepath.Join(dir, "nosuch")); return err },
			filepath.Join(dir, "nosuch") + ": no such file or directory", false},
		{"read-only, a file", func() error { _, err := fsstore.OpenReadOnly(afile); return err },
			afile + " is not a directory", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.open()
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if strings.Contains(tt.want, "no such file") && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
			}
			if errors.Is(err, store.ErrInUse) != tt.wantInUse {
				t.Errorf("errors.Is(%v, store.ErrInUse) = %v, want %v", err, !tt.wantInUse, tt.wantInUse)
			}
			var iu *store.InUseError
			if tt.wantInUse && (!errors.As(err, &iu) || iu.PID != os.Getpid() || iu.Dir != held) {
				t.Errorf("errors.As *store.InUseError: %+v; want pid %d, dir %s", iu, os.Getpid(), held)
			}
		})
	}
}
