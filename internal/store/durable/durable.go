// Package durable holds the local-disk operations that reel's stores use to
// keep their promise that an acknowledged byte survives a crash: files
// written whole or not at all, directory entries synced, syncs shared among
// concurrent callers. It follows restic's local backend: write a temp file,
// sync it, rename it, sync the directory.
package durable

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// MkdirAll creates dir and any missing parents, syncing each parent whose
// entries changed, so the new directories survive a crash.
func MkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return SyncDir(parent)
}

// SyncDir makes dir's entries (files created, renamed, removed in it)
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// WriteFile writes data to p atomically and durably: a temp file beside p,
// synced, renamed over p, and the directory synced.
func WriteFile(p string, data []byte) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return SyncDir(filepath.Dir(p))
}

// Remove removes p (a missing p is fine) and syncs its directory.
func Remove(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return SyncDir(filepath.Dir(p))
}

// LastNewline returns the offset just after the last '\n' in f's first size
// bytes, or 0 when there is none. It reads backwards in 64 KiB blocks.
func LastNewline(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// SyncGroup shares one sync among all callers that arrive while another is
// running (group commit): a caller waits for a sync that started after it
// called, so its write is covered, but N concurrent callers cost at most two
// syncs, not N. A failed sync poisons the group: no later call may claim
// success. The zero value is ready to use.
type SyncGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	running bool
	started uint64 // syncs started
	done    uint64 // syncs finished
	err     error  // sticky
}

// Do runs syncFn, or waits for a run that started after this call.
func (g *SyncGroup) Do(syncFn func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	target := g.started + 1 // a running sync may have missed our write: wait for the next
	for g.done < target && g.err == nil {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := syncFn()
		g.mu.Lock()
		g.running = false
		g.done = gen
		if err != nil {
			g.err = err
		}
		g.cond.Broadcast()
	}
	return g.err
}
