package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

var _ store.Files = (*Store)(nil)

// Files (store.Files) of a store with a spool go through the spool, as
// recordings do: PutFile writes <spool>/files/<name> durably and returns;
// an uploader puts it in the bucket and then removes it from the spool. A
// file waiting there is what OpenFile and ListFiles see. A store without a
// spool puts files straight into the bucket.

// file is a file waiting in the spool.
type file struct {
	sp   *spool
	name string
	path string

	mu  sync.Mutex // held while the spool file is written or read
	gen int        // bumped by every PutFile of name
	// up is held by an upload from reading the spool file until its PUT
	// has landed, and by DeleteFile, so that an upload in flight cannot
	// put back an object DeleteFile has just removed.
	up sync.Mutex

	sc sched // guarded by runner.mu
}

func (f *file) sched() *sched    { return &f.sc }
func (f *file) describe() string { return f.name }

func (sp *spool) filePath(name string) string {
	return filepath.Join(sp.dir, "files", filepath.FromSlash(name))
}

// run uploads the file and forgets it, unless it was put again meanwhile.
func (f *file) run(ctx context.Context) error {
	f.up.Lock()
	defer f.up.Unlock()
	f.mu.Lock()
	b, err := os.ReadFile(f.path)
	gen := f.gen
	f.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		f.sp.forgetFile(f, gen) // deleted meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool %s: %w", f.name, err)
	}
	if err := f.sp.s.putObject(ctx, f.name, bytes.NewReader(b), int64(len(b))); err != nil {
		return err
	}
	if err := f.sp.alive(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		f.sp.run.kick(f)
		return nil
	}
	if err := durable.Remove(f.path); err != nil {
		return err
	}
	f.sp.forgetFile(f, gen)
	return nil
}

// forgetFile drops f from the spool's map if no PutFile came since gen.
func (sp *spool) forgetFile(f *file, gen int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.files[f.name] == f && f.gen == gen {
		delete(sp.files, f.name)
	}
}

// loadFiles queues the files an earlier process left in the spool.
func (sp *spool) loadFiles() error {
	root := filepath.Join(sp.dir, "files")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if store.CheckPutName(name) != nil {
			os.Remove(p) // a temporary file, or not ours
			return nil
		}
		sp.files[name] = &file{sp: sp, name: name, path: p}
		return nil
	})
}

// PutFile implements store.Files.
func (s *Store) PutFile(ctx context.Context, name string, data []byte) error {
	if err := store.CheckPutName(name); err != nil {
		return fmt.Errorf("s3store: put file: %w", err)
	}
	sp := s.sp
	if sp == nil {
		return s.putObject(ctx, name, bytes.NewReader(data), int64(len(data)))
	}
	if err := sp.alive(); err != nil {
		return err
	}
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return errStoreClosed
	}
	f := sp.files[name]
	if f == nil {
		f = &file{sp: sp, name: name, path: sp.filePath(name)}
		sp.files[name] = f
	}
	sp.mu.Unlock()
	f.mu.Lock()
	err := durable.MkdirAll(filepath.Dir(f.path))
	if err == nil {
		err = durable.WriteFile(f.path, data)
	}
	f.gen++
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("s3store: spool %s: %w", name, err)
	}
	sp.run.kick(f)
	return nil
}

// spooledFile returns name's contents if the spool holds it.
func (s *Store) spooledFile(name string) ([]byte, bool, error) {
	if s.sp == nil {
		return nil, false, nil
	}
	s.sp.mu.Lock()
	f := s.sp.files[name]
	s.sp.mu.Unlock()
	if f == nil {
		return nil, false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil // landed just now
	}
	return b, err == nil, err
}

// OpenFile implements store.Files.
func (s *Store) OpenFile(ctx context.Context, name string) (store.Reader, error) {
	kind, key, err := store.CheckFileName(name)
	if err != nil {
		return nil, fmt.Errorf("s3store: open file: %w", err)
	}
	if kind == store.FileRecording {
		return s.Open(ctx, name)
	}
	if kind == store.FileSidecar && name == store.TailKey(key) {
		if r := s.spooled(key); r != nil {
			if rd, ok, err := r.openTail(); ok || err != nil {
				return rd, err
			}
		}
	}
	b, ok, err := s.spooledFile(name)
	if err != nil {
		return nil, fmt.Errorf("s3store: open %s: %w", name, err)
	}
	if ok {
		return bytesReader{bytes.NewReader(b)}, nil
	}
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, s.objKey(name), minio.StatObjectOptions{})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, fmt.Errorf("s3store: file %s: %w", name, store.ErrNotFound)
		}
		return nil, fmt.Errorf("s3store: open %s: %w", name, err)
	}
	return &objReader{ctx: ctx, s: s, obj: s.objKey(name), etag: oi.ETag, size: oi.Size}, nil
}

type bytesReader struct{ *bytes.Reader }

func (bytesReader) Close() error { return nil }

// openTail opens the tail of a closed recording that has not landed; ok
// is false when it has none in the spool.
func (r *rec) openTail() (store.Reader, bool, error) {
	r.mu.Lock()
	st := r.st
	r.mu.Unlock()
	if !st.Closed || st.End <= st.Final {
		return nil, false, nil
	}
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil // landed just now
	}
	if err != nil {
		return nil, false, fmt.Errorf("s3store: open tail of %s: %w", r.key, err)
	}
	return &spoolReader{io.NewSectionReader(f, st.Final, st.End-st.Final), f}, true, nil
}

// ListFiles implements store.Files: the bucket's files under dir, merged
// with those waiting in the spool.
func (s *Store) ListFiles(ctx context.Context, dir string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := store.CheckFilesDir(dir); err != nil {
			yield("", fmt.Errorf("s3store: list files: %w", err))
			return
		}
		var names []string
		if s.sp != nil {
			s.sp.mu.Lock()
			for name := range s.sp.files {
				if strings.HasPrefix(name, dir) {
					names = append(names, name)
				}
			}
			s.sp.mu.Unlock()
		}
		for oi := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.objKey(dir), Recursive: true}) {
			if oi.Err != nil {
				yield("", fmt.Errorf("s3store: list %s%s: %w", s.Location(), dir, oi.Err))
				return
			}
			names = append(names, strings.TrimPrefix(oi.Key, s.prefix))
		}
		slices.Sort(names)
		names = slices.Compact(names)
		for _, name := range names {
			if !yield(name, nil) {
				return
			}
		}
	}
}

// DeleteFile implements store.Files. In a versioned bucket (one with
// object lock is) every version of each object goes, so that nothing of a
// deleted recording stays behind; an object the bucket's object lock
// protects (a retention date to come, a legal hold) makes it fail.
// Recordings can be deleted only through a store with a spool (the
// recorder's), and only once they have landed.
func (s *Store) DeleteFile(ctx context.Context, name string) error {
	kind, _, err := store.CheckFileName(name)
	if err != nil {
		return fmt.Errorf("s3store: delete: %w", err)
	}
	if kind == store.FileRecording {
		if s.sp == nil {
			return fmt.Errorf("s3store: delete %s: %w", name, errReadOnly)
		}
		if s.spooled(name) != nil {
			return fmt.Errorf("s3store: delete %s: %w", name, store.ErrLive)
		}
		if err := s.removeObject(ctx, name); err != nil {
			return err
		}
		var errs []error
		for _, side := range []string{statusKey(name), store.TailKey(name)} {
			if err := s.removeObject(ctx, side); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	inSpool := false
	if s.sp != nil {
		s.sp.mu.Lock()
		f := s.sp.files[name]
		s.sp.mu.Unlock()
		if f != nil {
			// Wait for an upload in flight, then take the file out of the
			// spool (its file and its entry, unless a PutFile came since)
			// before the object goes.
			f.up.Lock()
			defer f.up.Unlock()
			f.mu.Lock()
			err := durable.Remove(f.path)
			f.gen++
			gen := f.gen
			f.mu.Unlock()
			if err != nil {
				return fmt.Errorf("s3store: delete %s: %w", name, err)
			}
			s.sp.forgetFile(f, gen)
			inSpool = true
		}
	}
	err = s.removeObject(ctx, name)
	if inSpool && errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// removeObject removes every version of name's object; ErrNotFound when
// there is none.
func (s *Store) removeObject(ctx context.Context, name string) error {
	obj := s.objKey(name)
	var versions []string
	for oi := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: obj, WithVersions: true}) {
		if oi.Err != nil {
			return fmt.Errorf("s3store: delete %s: %w", obj, oi.Err)
		}
		if oi.Key == obj {
			versions = append(versions, oi.VersionID)
		}
	}
	if len(versions) == 0 {
		return fmt.Errorf("s3store: delete %s: %w", name, store.ErrNotFound)
	}
	var errs []error
	for _, v := range versions {
		opts := minio.RemoveObjectOptions{}
		if v != "" && v != "null" {
			opts.VersionID = v
		}
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, obj, opts); err != nil {
			errs = append(errs, fmt.Errorf("s3store: delete %s (version %s): %w", obj, v, err))
		}
	}
	return errors.Join(errs...)
}
