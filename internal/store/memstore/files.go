package memstore

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/reel-rec/reel/internal/store"
)

// PutFile implements store.Files.
func (s *Store) PutFile(ctx context.Context, name string, data []byte) error {
	if err := s.alive(); err != nil {
		return err
	}
	if err := store.CheckPutName(name); err != nil {
		return fmt.Errorf("memstore: put file: %w", err)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.files[name] = slices.Clone(data)
	return nil
}

// OpenFile implements store.Files.
func (s *Store) OpenFile(ctx context.Context, name string) (store.Reader, error) {
	kind, key, err := store.CheckFileName(name)
	if err != nil {
		return nil, fmt.Errorf("memstore: open file: %w", err)
	}
	if kind == store.FileRecording {
		return s.Open(ctx, name)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	b, ok := s.d.files[name]
	if kind == store.FileSidecar && name == store.TailKey(key) {
		b, ok = s.d.tails[name]
	}
	if !ok {
		return nil, fmt.Errorf("memstore: file %s: %w", name, store.ErrNotFound)
	}
	return reader{bytes.NewReader(b)}, nil
}

// ListFiles implements store.Files.
func (s *Store) ListFiles(ctx context.Context, dir string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := store.CheckFilesDir(dir); err != nil {
			yield("", fmt.Errorf("memstore: list files: %w", err))
			return
		}
		s.d.mu.Lock()
		var names []string
		for name := range s.d.files {
			if strings.HasPrefix(name, dir) {
				names = append(names, name)
			}
		}
		s.d.mu.Unlock()
		slices.Sort(names)
		for _, name := range names {
			if !yield(name, nil) {
				return
			}
		}
	}
}

// DeleteFile implements store.Files.
func (s *Store) DeleteFile(ctx context.Context, name string) error {
	if err := s.alive(); err != nil {
		return err
	}
	kind, key, err := store.CheckFileName(name)
	if err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case kind == store.FileRecording:
		r := d.recs[name]
		if r == nil {
			return fmt.Errorf("memstore: delete %s: %w", name, store.ErrNotFound)
		}
		if r.status == store.StatusLive {
			return fmt.Errorf("memstore: delete %s: %w", name, store.ErrLive)
		}
		d.used -= int64(len(r.buf))
		delete(d.recs, name)
		delete(d.tails, store.TailKey(name))
		return nil
	case kind == store.FileSidecar && name == store.TailKey(key):
		if _, ok := d.tails[name]; !ok {
			return fmt.Errorf("memstore: delete %s: %w", name, store.ErrNotFound)
		}
		delete(d.tails, name)
		return nil
	}
	if _, ok := d.files[name]; !ok {
		return fmt.Errorf("memstore: delete %s: %w", name, store.ErrNotFound)
	}
	delete(d.files, name)
	return nil
}
