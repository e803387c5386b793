package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

var _ store.Files = (*Store)(nil)

// PutFile implements store.Files. It works on a store opened read-only
// too: files beside recordings (a legal hold, a seal) do not touch what
// the recorder holding the lock writes.
func (s *Store) PutFile(ctx context.Context, name string, data []byte) error {
	if err := store.CheckPutName(name); err != nil {
		return fmt.Errorf("put file: %w", err)
	}
	p := s.path(name)
	if err := durable.MkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	return durable.WriteFile(p, data)
}

// OpenFile implements store.Files.
func (s *Store) OpenFile(ctx context.Context, name string) (store.Reader, error) {
	kind, _, err := store.CheckFileName(name)
	if err != nil {
		return nil, fmt.Errorf("open file: %w", err)
	}
	if kind == store.FileRecording {
		return s.Open(ctx, name)
	}
	f, err := os.Open(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &reader{File: f, size: fi.Size()}, nil
}

// ListFiles implements store.Files.
func (s *Store) ListFiles(ctx context.Context, dir string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := store.CheckFilesDir(dir); err != nil {
			yield("", fmt.Errorf("list files: %w", err))
			return
		}
		root := s.path(strings.TrimSuffix(dir, "/"))
		var names []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipDir
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(s.dir, p)
			if err != nil {
				return err
			}
			name := filepath.ToSlash(rel)
			if kind, _, err := store.CheckFileName(name); err == nil && kind == store.FileStoreWide {
				names = append(names, name) // not a temporary file
			}
			return nil
		})
		if err != nil {
			yield("", fmt.Errorf("list files in %s: %w", dir, err))
			return
		}
		slices.Sort(names)
		for _, name := range names {
			if !yield(name, nil) {
				return
			}
		}
	}
}

// DeleteFile implements store.Files. Recordings can be deleted only by
// the process holding the store's lock (not through a read-only store).
func (s *Store) DeleteFile(ctx context.Context, name string) error {
	kind, _, err := store.CheckFileName(name)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	p := s.path(name)
	if kind != store.FileRecording {
		if err := os.Remove(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
			}
			return fmt.Errorf("delete %s: %w", name, err)
		}
		return durable.SyncDir(filepath.Dir(p))
	}
	if s.lock == nil {
		return fmt.Errorf("delete %s: %w", name, errReadOnly)
	}
	if _, err := os.Stat(s.marker(name)); err == nil {
		return fmt.Errorf("delete %s: %w", name, store.ErrLive)
	}
	// The recording first: once it is gone it is not listed, whatever
	// happens to its sidecars.
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	var errs []error
	for _, side := range []string{statusPath(p), tailPath(p)} {
		if err := os.Remove(side); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("delete %s: %w", side, err))
		}
	}
	errs = append(errs, durable.SyncDir(filepath.Dir(p)))
	return errors.Join(errs...)
}
