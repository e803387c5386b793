// Package fsstore keeps recordings on local disk, laid out as tsrecorder does:
//
//	<dir>/<node>/<timestamp>.cast          the recording, byte for byte as sent
//	<dir>/<node>/<timestamp>.cast.status   only when it did not end normally: JSON {status, reason, ...}
//	<dir>/<node>/<timestamp>.cast.tail     bytes cut off after the last complete line, if any
//	<dir>/<node>/events/<YYYY-MM-DD>.jsonl events, one JSON line each
//	<dir>/.reel/open/<node>/<timestamp>.cast  marker: this recording is live
//	<dir>/.reel/lock                       held (flock) by the one process using dir
//
// Durability follows restic's local backend: files are created with O_EXCL,
// synced, and their directory synced before anything in them is
// acknowledged. Markers let Recover find recordings a crash left open without
// walking the whole tree.
package fsstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

var _ store.Store = (*Store)(nil)

// DefaultMinFree is the free-space reserve below which new recordings are
// refused.
const DefaultMinFree = 1 << 30

// Store is a store.Store on a local directory. Create it with Open.
type Store struct {
	dir     string
	minFree int64
	log     *slog.Logger
	lock    *os.File // nil when read-only

	mu     sync.Mutex
	events map[string]*segment // node -> today's open event segment
}

// Options configure a Store.
type Options struct {
	// MinFree is the free-space reserve in bytes: below it Create fails
	// with store.ErrInsufficientSpace (running recordings go on). Zero means
	// DefaultMinFree; negative disables the check.
	MinFree int64
	// Log receives what the store did on its own (recovery). Nil discards.
	Log *slog.Logger
}

// Open opens (creating if needed) the store in dir and locks it against
// use by a second process.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MinFree == 0 {
		opts.MinFree = DefaultMinFree
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".reel", "open"), 0o750); err != nil {
		return nil, fmt.Errorf("fsstore: create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".reel", "lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("fsstore: %s is in use by another reel process (lock %s): %w", dir, lock.Name(), err)
	}
	return &Store{dir: dir, minFree: opts.MinFree, log: opts.Log, lock: lock, events: map[string]*segment{}}, nil
}

// OpenReadOnly opens the store in dir for reading only, without the lock, so
// reviewers can list and play recordings while a recorder writes them.
// Create, PutEvent and Recover fail.
func OpenReadOnly(dir string) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fsstore: %s is not a directory", dir)
	}
	return &Store{dir: dir, log: slog.New(slog.DiscardHandler), events: map[string]*segment{}}, nil
}

var errReadOnly = errors.New("fsstore: store opened read-only")

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

// Close closes open event segments and releases the lock.
func (s *Store) Close() error {
	s.mu.Lock()
	var errs []error
	for node, seg := range s.events {
		errs = append(errs, seg.close())
		delete(s.events, node)
	}
	s.mu.Unlock()
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// Space reports the free and total bytes of the file system under dir, and
// the reserve below which Create refuses new recordings.
func (s *Store) Space() (free, total, reserve int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return 0, 0, s.minFree, fmt.Errorf("fsstore: statfs %s: %w", s.dir, err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, s.minFree, nil
}

// CheckSpace fails, wrapping store.ErrInsufficientSpace, when the disk is
// below the free-space reserve and Create would refuse.
func (s *Store) CheckSpace() error {
	if s.minFree <= 0 {
		return nil
	}
	free, _, _, err := s.Space()
	if err != nil {
		return err
	}
	if free < s.minFree {
		return fmt.Errorf("fsstore: %w: %d MiB free, reserve is %d MiB", store.ErrInsufficientSpace, free>>20, s.minFree>>20)
	}
	return nil
}

func (s *Store) path(key string) string { return filepath.Join(s.dir, filepath.FromSlash(key)) }
func (s *Store) marker(key string) string {
	return filepath.Join(s.dir, ".reel", "open", filepath.FromSlash(key))
}
func statusPath(castPath string) string     { return castPath + ".status" }
func tailPath(castPath string) string       { return castPath + ".tail" }
func isCast(name string) bool               { return store.IsRecordingName(name) }
func (s *Store) nodeDir(node string) string { return filepath.Join(s.dir, node) }

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, node string, start time.Time) (store.Writer, error) {
	return s.CreateKind(ctx, node, start, store.KindTerminal)
}

var _ store.KindCreator = (*Store)(nil)

// CreateKind implements store.KindCreator: a recording of kind k, whose key
// ends in k's extension.
func (s *Store) CreateKind(ctx context.Context, node string, start time.Time, k store.Kind) (store.Writer, error) {
	if s.lock == nil {
		return nil, errReadOnly
	}
	if !store.ValidNode(node) {
		return nil, fmt.Errorf("fsstore: create: %w: node %q", store.ErrInvalidKey, node)
	}
	if err := s.CheckSpace(); err != nil {
		return nil, err
	}
	if err := durable.MkdirAll(s.nodeDir(node)); err != nil {
		return nil, err
	}
	if err := durable.MkdirAll(filepath.Join(s.dir, ".reel", "open", node)); err != nil {
		return nil, err
	}
	// Names are unique: O_EXCL, and on a clash the next nanosecond. The
	// marker goes first so that a crash never leaves a live recording
	// without one.
	t := start.UTC()
	for range 1000 {
		key := store.KindKey(node, t, k)
		m, err := os.OpenFile(s.marker(key), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, fs.ErrExist) {
			t = t.Add(time.Nanosecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fsstore: create marker for %s: %w", key, err)
		}
		err = reserveMarker(m)
		m.Close()
		if err != nil {
			os.Remove(s.marker(key))
			return nil, fmt.Errorf("fsstore: create marker for %s: %w", key, err)
		}
		// O_RDWR, not O_WRONLY: Close reads back the bytes it cuts off.
		f, err := os.OpenFile(s.path(key), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, fs.ErrExist) {
			os.Remove(s.marker(key))
			t = t.Add(time.Nanosecond)
			continue
		}
		if err != nil {
			os.Remove(s.marker(key))
			return nil, fmt.Errorf("fsstore: create %s: %w", key, err)
		}
		return &writer{s: s, key: key, f: f}, nil
	}
	return nil, fmt.Errorf("fsstore: create: no free name near %s", start)
}

// writer is one live recording.
type writer struct {
	s   *Store
	key string
	f   *os.File

	// Owned by the writing goroutine.
	size   int64 // bytes written
	lastNL int64 // offset just after the last '\n' written

	syncMu    sync.Mutex // one Sync at a time; Close holds it too
	closed    bool       // guarded by syncMu
	dirSynced bool       // the file's and marker's directory entries are durable
	err       error      // sticky: once a sync failed, no later sync may claim success
}

func (w *writer) Key() string { return w.key }

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		w.lastNL = w.size + int64(i) + 1
	}
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("fsstore: write %s: %w", w.key, err)
	}
	return n, nil
}

func (w *writer) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	return w.syncLocked()
}

func (w *writer) syncLocked() error {
	if w.closed {
		return fmt.Errorf("fsstore: sync %s: already closed", w.key)
	}
	if w.err != nil {
		return w.err
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		w.err = fmt.Errorf("fsstore: sync %s: %w", w.key, err)
		return w.err
	}
	if !w.dirSynced {
		// The first sync also makes the new names durable.
		if err := errors.Join(durable.SyncDir(filepath.Dir(w.f.Name())), durable.SyncDir(filepath.Dir(w.s.marker(w.key)))); err != nil {
			w.err = fmt.Errorf("fsstore: sync %s: %w", w.key, err)
			return w.err
		}
		w.dirSynced = true
	}
	return nil
}

// markSynced records that a file-system-wide sync (syncfs) covered w.
func (w *writer) markSynced(err error) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.closed {
		return fmt.Errorf("fsstore: sync %s: already closed", w.key)
	}
	if w.err != nil {
		return w.err
	}
	if err != nil {
		w.err = fmt.Errorf("fsstore: sync %s: %w", w.key, err)
		return w.err
	}
	w.dirSynced = true // syncfs covers directories as well
	return nil
}

func (w *writer) Close(status store.Status, reason string) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.closed {
		return fmt.Errorf("fsstore: close %s: already closed", w.key)
	}
	syncErr := w.syncLocked()
	w.closed = true
	var errs []error
	if syncErr != nil {
		errs = append(errs, syncErr)
		if status == store.StatusComplete || status == store.StatusMalformed {
			status, reason = store.StatusFailed, syncErr.Error()
		}
	}
	size, inMarker := w.size, 0
	if status != store.StatusComplete && status != store.StatusMalformed {
		n, m, err := cutAtLastLine(w.f, w.lastNL, size, w.s.marker(w.key))
		if err != nil {
			errs = append(errs, err)
			reason += "; " + err.Error()
		}
		size, inMarker = n, m
	}
	errs = append(errs, w.f.Close())
	if status != store.StatusComplete {
		st := statusFile{Status: status, Reason: reason, Size: size, Closed: time.Now().UTC(), TailInMarker: inMarker}
		var err error
		if inMarker == 0 {
			err = writeStatus(w.f.Name(), st)
		}
		if inMarker > 0 || err != nil {
			// Typically a full disk. Record the status in the marker's
			// reserved block instead, which needs no new space, and keep
			// the marker: Recover moves the status out after a restart.
			if merr := writeMarkerStatus(w.s.marker(w.key), st); merr != nil {
				return errors.Join(append(errs, err, merr)...)
			}
			return errors.Join(errs...) // the marker stays: it holds the status
		}
	}
	if err := os.Remove(w.s.marker(w.key)); err != nil {
		errs = append(errs, fmt.Errorf("fsstore: remove marker: %w", err))
	} else {
		errs = append(errs, durable.SyncDir(filepath.Dir(w.s.marker(w.key))))
	}
	return errors.Join(errs...)
}

// cutAtLastLine moves the bytes after the last complete line (from lastNL
// to size) into the .tail file beside f, or, when that cannot be written
// (full disk), into the marker's reserved space; then it truncates f to
// lastNL. It returns f's new size and how many bytes went to the marker.
func cutAtLastLine(f *os.File, lastNL, size int64, marker string) (newSize int64, inMarker int, err error) {
	if lastNL >= size {
		return size, 0, nil
	}
	tail := make([]byte, size-lastNL)
	if _, err := f.ReadAt(tail, lastNL); err != nil {
		return size, 0, fmt.Errorf("fsstore: read cut-off bytes: %w", err)
	}
	if err := durable.WriteFile(tailPath(f.Name()), tail); err != nil {
		if serr := stashTail(marker, tail); serr != nil {
			return size, 0, fmt.Errorf("fsstore: not cut at the last line: cannot keep the cut-off bytes: %w", errors.Join(err, serr))
		}
		inMarker = len(tail)
	}
	if err := f.Truncate(lastNL); err != nil {
		return size, inMarker, fmt.Errorf("fsstore: cut at last line: %w", err)
	}
	if err := f.Sync(); err != nil {
		return size, inMarker, fmt.Errorf("fsstore: cut at last line: %w", err)
	}
	return lastNL, inMarker, nil
}

// statusFile is the JSON in a .status sidecar.
type statusFile struct {
	Status store.Status `json:"status"`
	Reason string       `json:"reason,omitempty"`
	Size   int64        `json:"size"`
	Closed time.Time    `json:"closed"`
	// TailInMarker is how many cut-off bytes wait in the marker (full disk).
	TailInMarker int `json:"tailInMarker,omitempty"`
}

func writeStatus(castPath string, st statusFile) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return durable.WriteFile(statusPath(castPath), append(b, '\n'))
}

func readStatus(castPath string) (statusFile, error) {
	var st statusFile
	b, err := os.ReadFile(statusPath(castPath))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("fsstore: %s: %w", statusPath(castPath), err)
	}
	return st, nil
}

// A marker reserves markerSize bytes at create time, so that on a full
// disk a final status (in the first markerStatusSize bytes) and the bytes a
// cut removes (after them) can still be kept.
const (
	markerSize       = 64 << 10
	markerStatusSize = 4 << 10
)

// reserveMarker gives the (empty, all-zero) marker its block.
func reserveMarker(m *os.File) error {
	err := unix.Fallocate(int(m.Fd()), 0, 0, markerSize)
	if errors.Is(err, unix.EOPNOTSUPP) {
		_, err = m.Write(make([]byte, markerSize))
	}
	return err
}

// writeMarkerStatus writes st over the start of the marker's reserved
// block, in place, and syncs it.
func writeMarkerStatus(marker string, st statusFile) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if len(b) >= markerStatusSize {
		st.Reason = st.Reason[:max(0, len(st.Reason)-(len(b)-markerStatusSize+64))]
		b, _ = json.Marshal(st)
	}
	f, err := os.OpenFile(marker, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("fsstore: marker status: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("fsstore: marker status: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsstore: marker status: %w", err)
	}
	return nil
}

// readMarkerStatus reads a final status from a marker; ok is false for a
// live recording's marker (all zeros) or a missing one.
func readMarkerStatus(marker string) (statusFile, bool) {
	var st statusFile
	b, err := os.ReadFile(marker)
	if err != nil {
		return st, false
	}
	if len(b) > markerStatusSize {
		b = b[:markerStatusSize]
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 || json.Unmarshal(b, &st) != nil || st.Status == "" {
		return st, false
	}
	return st, true
}

// stashTail keeps bytes cut off a recording in its marker's reserved space,
// when the disk is too full for a .tail file.
func stashTail(marker string, tail []byte) error {
	if len(tail) > markerSize-markerStatusSize {
		return fmt.Errorf("%d bytes after the last line: too many to keep on a full disk", len(tail))
	}
	f, err := os.OpenFile(marker, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(tail, markerStatusSize); err != nil {
		return err
	}
	return f.Sync()
}

// unstashTail moves cut-off bytes kept in a marker to the .tail file.
func unstashTail(marker, castPath string, st statusFile) error {
	if st.TailInMarker == 0 {
		return nil
	}
	m, err := os.Open(marker)
	if err != nil {
		return err
	}
	defer m.Close()
	tail := make([]byte, st.TailInMarker)
	if _, err := m.ReadAt(tail, markerStatusSize); err != nil {
		return err
	}
	return durable.WriteFile(tailPath(castPath), tail)
}

// Recover implements store.Store.
func (s *Store) Recover(ctx context.Context) ([]store.Info, error) {
	if s.lock == nil {
		return nil, errReadOnly
	}
	root := filepath.Join(s.dir, ".reel", "open")
	nodes, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("fsstore: recover: %w", err)
	}
	var out []store.Info
	var errs []error
	for _, n := range nodes {
		marks, err := os.ReadDir(filepath.Join(root, n.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range marks {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			key := n.Name() + "/" + m.Name()
			info, err := s.recoverOne(key)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if info.Key != "" {
				out = append(out, info)
			}
		}
	}
	return out, errors.Join(errs...)
}

func (s *Store) recoverOne(key string) (store.Info, error) {
	node, start, err := store.ParseKey(key)
	if err != nil {
		return store.Info{}, fmt.Errorf("fsstore: recover: stray marker %s: %w", s.marker(key), err)
	}
	p := s.path(key)
	if st, ok := readMarkerStatus(s.marker(key)); ok {
		// Closed while the disk was full: the status waits in the marker.
		if err := unstashTail(s.marker(key), p, st); err != nil {
			return store.Info{}, fmt.Errorf("fsstore: recover %s: %w", key, err)
		}
		st.TailInMarker = 0
		if err := writeStatus(p, st); err != nil {
			return store.Info{}, fmt.Errorf("fsstore: recover %s: %w", key, err)
		}
		return store.Info{}, durable.Remove(s.marker(key))
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Crashed between marker and file: nothing was ever stored.
		return store.Info{}, durable.Remove(s.marker(key))
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("fsstore: recover %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return store.Info{}, err
	}
	lastNL, err := durable.LastNewline(f, fi.Size())
	if err != nil {
		return store.Info{}, fmt.Errorf("fsstore: recover %s: %w", key, err)
	}
	reason := "the recorder stopped while the recording was live; cut at the last complete line"
	size, inMarker, err := cutAtLastLine(f, lastNL, fi.Size(), s.marker(key))
	if err != nil {
		reason += "; " + err.Error()
	}
	st := statusFile{Status: store.StatusInterrupted, Reason: reason, Size: size, Closed: time.Now().UTC()}
	if inMarker > 0 {
		st.TailInMarker = inMarker
		if err := unstashTail(s.marker(key), p, st); err != nil {
			st.Reason += "; cut-off bytes kept in " + s.marker(key)
			return store.Info{}, writeMarkerStatus(s.marker(key), st)
		}
		st.TailInMarker = 0
	}
	if err := writeStatus(p, st); err != nil {
		return store.Info{}, fmt.Errorf("fsstore: recover %s: %w", key, err)
	}
	if err := durable.Remove(s.marker(key)); err != nil {
		return store.Info{}, err
	}
	s.log.Warn("recovered interrupted recording", "key", key, "size", size, "cut", fi.Size()-size)
	return store.Info{Key: key, Node: node, Start: start, Size: size, Status: store.StatusInterrupted, Reason: reason}, nil
}

// Open implements store.Store.
func (s *Store) Open(ctx context.Context, key string) (store.Reader, error) {
	if _, _, err := store.ParseKey(key); err != nil {
		return nil, fmt.Errorf("fsstore: open: %w", err)
	}
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fsstore: open %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fsstore: open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fsstore: open %s: %w", key, err)
	}
	return &reader{File: f, size: fi.Size()}, nil
}

type reader struct {
	*os.File
	size int64
}

func (r *reader) Size() int64 { return r.size }

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	node, start, err := store.ParseKey(key)
	if err != nil {
		return store.Info{}, fmt.Errorf("fsstore: stat: %w", err)
	}
	return s.info(node, start, key, nil, nil)
}

// info describes key. names and live, when not nil, are the node
// directory's and marker directory's entries (so List need not stat them).
func (s *Store) info(node string, start time.Time, key string, names, live map[string]bool) (store.Info, error) {
	p := s.path(key)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return store.Info{}, fmt.Errorf("fsstore: %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("fsstore: %w", err)
	}
	info := store.Info{Key: key, Node: node, Start: start, Size: fi.Size(), Status: store.StatusComplete}
	name := filepath.Base(p)
	hasStatus := names == nil || names[name+".status"]
	isLive := live == nil || live[name]
	if isLive {
		if _, err := os.Stat(s.marker(key)); err == nil {
			if st, ok := readMarkerStatus(s.marker(key)); ok {
				info.Status, info.Reason = st.Status, st.Reason
				return info, nil
			}
			info.Status = store.StatusLive
			return info, nil
		}
	}
	if hasStatus {
		st, err := readStatus(p)
		switch {
		case err == nil:
			info.Status, info.Reason = st.Status, st.Reason
		case !errors.Is(err, fs.ErrNotExist):
			return info, err
		}
	}
	return info, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, f store.Filter) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		var nodes []string
		if f.Node != "" {
			if !store.ValidNode(f.Node) {
				yield(store.Info{}, fmt.Errorf("fsstore: list: %w: node %q", store.ErrInvalidKey, f.Node))
				return
			}
			nodes = []string{f.Node}
		} else {
			ents, err := os.ReadDir(s.dir)
			if err != nil {
				yield(store.Info{}, fmt.Errorf("fsstore: list: %w", err))
				return
			}
			for _, e := range ents {
				if e.IsDir() && store.ValidNode(e.Name()) {
					nodes = append(nodes, e.Name())
				}
			}
		}
		for _, node := range nodes {
			if err := ctx.Err(); err != nil {
				yield(store.Info{}, err)
				return
			}
			ents, err := os.ReadDir(s.nodeDir(node))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				if !yield(store.Info{}, fmt.Errorf("fsstore: list %s: %w", node, err)) {
					return
				}
				continue
			}
			names := make(map[string]bool, len(ents))
			for _, e := range ents {
				names[e.Name()] = true
			}
			live := map[string]bool{}
			if ms, err := os.ReadDir(filepath.Join(s.dir, ".reel", "open", node)); err == nil {
				for _, m := range ms {
					live[m.Name()] = true
				}
			}
			for _, e := range ents { // ReadDir sorts by name, which is by time
				if !isCast(e.Name()) || e.IsDir() {
					continue
				}
				key := node + "/" + e.Name()
				_, start, err := store.ParseKey(key)
				if err != nil {
					continue // not ours
				}
				if start.Before(f.Since) || (!f.Until.IsZero() && !start.Before(f.Until)) {
					continue
				}
				info, err := s.info(node, start, key, names, live)
				if errors.Is(err, store.ErrNotFound) {
					continue // removed under us
				}
				if !yield(info, err) {
					return
				}
			}
		}
	}
}

// SyncAll makes every writer in ws durable with one file-system-wide sync
// (syncfs) instead of one fdatasync each: the group commit the recorder uses
// when many recordings are dirty at once. Writers not from this store are
// synced one by one.
func (s *Store) SyncAll(ws []store.Writer) error {
	var mine []*writer
	var errs []error
	for _, w := range ws {
		if fw, ok := w.(*writer); ok && fw.s == s {
			mine = append(mine, fw)
		} else {
			errs = append(errs, w.Sync())
		}
	}
	if len(mine) == 0 || s.lock == nil {
		return errors.Join(errs...)
	}
	err := unix.Syncfs(int(s.lock.Fd()))
	if err != nil {
		err = fmt.Errorf("syncfs %s: %w", s.dir, err)
	}
	for _, w := range mine {
		errs = append(errs, w.markSynced(err))
	}
	return errors.Join(errs...)
}
