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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
)

// Lock takes the lock file p that keeps dir to one process: an exclusive
// flock, released when the returned file is closed or the process ends. It
// writes the process id into the file, so that a second process can say
// who holds it: it fails with a *store.InUseError.
func Lock(p, dir string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &store.InUseError{Dir: dir, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(pid), 0) // only for the message above: no sync
	}
	return f, nil
}

// readPID reads the process id a lock file holds; 0 if none.
func readPID(f *os.File) int {
	b := make([]byte, 24)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

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
	return writeAtomic(p, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// CopyRange writes the n bytes of src that start at off to p, atomically
// and durably as WriteFile does. It copies in the kernel where it can, else
// through a fixed-size buffer, so memory stays bounded however large n is.
// Holes in src (ranges never written, which a crash can leave) stay holes.
// It does not move src's file offset.
func CopyRange(p string, src *os.File, off, n int64) error {
	return writeAtomic(p, func(f *os.File) error { return copyRange(f, src, off, n) })
}

func writeAtomic(p string, fill func(f *os.File) error) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	err = fill(f)
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

// copyRange copies src[off:off+n] to dst[0:n], a data range at a time
// (SEEK_DATA, SEEK_HOLE), leaving holes unwritten.
func copyRange(dst, src *os.File, off, n int64) error {
	sfd := int(src.Fd())
	if cur, err := unix.Seek(sfd, 0, io.SeekCurrent); err == nil {
		defer unix.Seek(sfd, cur, io.SeekStart) // SEEK_DATA and SEEK_HOLE move it
	}
	end := off + n
	for pos := off; pos < end; {
		data, err := unix.Seek(sfd, pos, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO): // only a hole from pos on
			data = end
		case err != nil: // no hole support: all data
			data = pos
		}
		data = min(data, end)
		hole := end
		if data < end {
			if h, err := unix.Seek(sfd, data, unix.SEEK_HOLE); err == nil {
				hole = min(h, end)
			}
		}
		if err := copyData(dst, src, data, data-off, hole-data); err != nil {
			return err
		}
		pos = hole
	}
	return dst.Truncate(n) // the length, with any hole at the end
}

// copyBufSize is the buffer copyData uses when the kernel cannot copy.
const copyBufSize = 256 << 10

// copyData copies n bytes of src at soff to dst at doff.
func copyData(dst, src *os.File, soff, doff, n int64) error {
	for n > 0 {
		k, err := unix.CopyFileRange(int(src.Fd()), &soff, int(dst.Fd()), &doff, int(min(n, 1<<30)), 0)
		if err != nil || k == 0 {
			break // not supported here (or src shorter than expected): copy by hand
		}
		n -= int64(k)
	}
	if n == 0 {
		return nil
	}
	buf := make([]byte, min(n, copyBufSize))
	_, err := io.CopyBuffer(io.NewOffsetWriter(dst, doff), io.NewSectionReader(src, soff, n), buf)
	if err == nil {
		var fi os.FileInfo
		if fi, err = dst.Stat(); err == nil && fi.Size() < doff+n {
			err = io.ErrUnexpectedEOF
		}
	}
	return err
}

// Remove removes p (a missing p is fine) and syncs its directory.
func Remove(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return SyncDir(filepath.Dir(p))
}

// LastNewline returns the offset just after the last '\n' in f's first size
// bytes, or 0 when there is none. It reads backwards in 64 KiB blocks, and
// skips holes (ranges never written, which hold no newline) without reading
// them. It may move f's offset.
func LastNewline(f *os.File, size int64) (int64, error) {
	const block = 64 << 10
	buf := make([]byte, block)
	for end := size; end > 0; {
		start := max(0, end-block)
		if isHole(f, start, end) {
			// Go back in ever longer strides while it stays a hole.
			for stride := int64(2 * block); start > 0; stride *= 2 {
				s := max(0, end-stride)
				if !isHole(f, s, end) {
					break
				}
				start = s
			}
			end = start
			continue
		}
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

// isHole reports whether f holds no data in [start, end): the file system
// says so (SEEK_DATA). It moves f's offset; LastNewline reads with ReadAt.
func isHole(f *os.File, start, end int64) bool {
	d, err := unix.Seek(int(f.Fd()), start, unix.SEEK_DATA)
	return errors.Is(err, unix.ENXIO) || err == nil && d >= end
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

// SyncFSReportsErrors reports whether syncfs(2) returns write-back errors:
// only since Linux 5.8. Before, it could report success for data that was
// lost, so it must not be used and every file is synced on its own.
var SyncFSReportsErrors = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return releaseAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 8)
})

// releaseAtLeast reports whether a kernel release ("6.1.0-13-amd64") is
// major.minor or later.
func releaseAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
