// Package fsstore keeps recordings on local disk, laid out as tsrecorder does:
//
//	<dir>/<node>/<timestamp>.cast          the recording, byte for byte as sent
//	<dir>/<node>/<timestamp>.cast.status   only when it did not end normally: JSON {status, reason, ...}
//	<dir>/<node>/<timestamp>.cast.tail     bytes cut off after the last complete line, if any
//	<dir>/<node>/events/<YYYY-MM-DD>.jsonl events, one JSON line each
//	<dir>/<node>/.sender                   the sender's identity, when the node is not it unchanged (store.SenderKey)
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

	// sys makes data durable; tests replace it to inject faults or to
	// watch what each sync covered.
	sys sys

	mu      sync.Mutex
	events  map[string]*segment // node -> today's open event segment
	senders map[string]string   // node -> its sender's identity, as checked or read

	claimMu sync.Mutex // held while a node's .sender is checked and written
}

// sys holds the system calls through which recordings are made durable.
type sys struct {
	fdatasync func(f *os.File) error
	syncfs    func(fd int) error // nil: not used (see durable.SyncFSReportsErrors)
}

func realSys() sys {
	s := sys{fdatasync: func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }}
	if durable.SyncFSReportsErrors() {
		s.syncfs = unix.Syncfs
	}
	return s
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
		return nil, fmt.Errorf("recordings directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".reel", "open"), 0o750); err != nil {
		return nil, dirError(dir, err)
	}
	// Fails with a *store.InUseError naming the other process.
	lock, err := durable.Lock(filepath.Join(dir, ".reel", "lock"), dir)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, minFree: opts.MinFree, log: opts.Log, lock: lock, sys: realSys(), events: map[string]*segment{}, senders: map[string]string{}}, nil
}

// OpenReadOnly opens the store in dir for reading only, without the lock, so
// reviewers can list and play recordings while a recorder writes them.
// Create, PutEvent and Recover fail.
func OpenReadOnly(dir string) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("recordings directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, dirError(dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &Store{dir: dir, log: slog.New(slog.DiscardHandler), events: map[string]*segment{}, senders: map[string]string{}}, nil
}

// dirError says, in the user's words, why dir cannot be the store's
// directory.
func dirError(dir string, err error) error {
	if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe) && pe.Path == dir:
		return fmt.Errorf("%s: %w", dir, pe.Err) // "no such file or directory", and errors.Is says so
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s: a part of the path is not a directory", dir)
	}
	return fmt.Errorf("recordings directory %s: %w", dir, err)
}

var errReadOnly = errors.New("the store is open read-only")

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
		return 0, 0, s.minFree, fmt.Errorf("free space in %s: %w", s.dir, err)
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
		return fmt.Errorf("%w in %s: %d MiB free, below the %d MiB reserve", store.ErrInsufficientSpace, s.dir, free>>20, s.minFree>>20)
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
func (s *Store) Create(ctx context.Context, sender string, start time.Time) (store.Writer, error) {
	return s.CreateKind(ctx, sender, start, store.KindTerminal)
}

var _ store.KindCreator = (*Store)(nil)

// CreateKind implements store.KindCreator: a recording of kind k, whose key
// ends in k's extension, filed under the sender's node as Create files it.
func (s *Store) CreateKind(ctx context.Context, sender string, start time.Time, k store.Kind) (store.Writer, error) {
	if s.lock == nil {
		return nil, errReadOnly
	}
	node, err := store.CheckSender(sender)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if err := s.CheckSpace(); err != nil {
		return nil, err
	}
	if err := s.claim(node, sender); err != nil {
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
			return nil, fmt.Errorf("create marker for %s: %w", key, err)
		}
		err = reserveMarker(m)
		m.Close()
		if err != nil {
			os.Remove(s.marker(key))
			return nil, fmt.Errorf("create marker for %s: %w", key, err)
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
			return nil, fmt.Errorf("create %s: %w", key, err)
		}
		return &writer{s: s, key: key, f: f}, nil
	}
	return nil, fmt.Errorf("create: no free name near %s", start)
}

// claim makes sure node is sender's, creating node's directory and, for a
// node that is not the sender's identity unchanged, keeping the identity in
// its .sender file (durably, before anything is filed there).
func (s *Store) claim(node, sender string) error {
	s.mu.Lock()
	owner, ok := s.senders[node]
	s.mu.Unlock()
	if ok {
		if owner != sender {
			return store.NodeTaken(node, sender, owner)
		}
		return nil
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if err := durable.MkdirAll(s.nodeDir(node)); err != nil {
		return err
	}
	owner, err := s.readSender(node)
	if err != nil {
		return err
	}
	if key, kept := store.SenderKey(node); kept && owner == node {
		// A new node for this identity.
		if err := durable.WriteFile(s.path(key), []byte(sender)); err != nil {
			return fmt.Errorf("keep the sender's identity: %w", err)
		}
		owner = sender
	}
	if owner != sender {
		return store.NodeTaken(node, sender, owner)
	}
	s.mu.Lock()
	s.senders[node] = sender
	s.mu.Unlock()
	return nil
}

// senderOf returns the identity of node's sender.
func (s *Store) senderOf(node string) (string, error) {
	s.mu.Lock()
	owner, ok := s.senders[node]
	s.mu.Unlock()
	if ok {
		return owner, nil
	}
	owner, err := s.readSender(node)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.senders[node] = owner
	s.mu.Unlock()
	return owner, nil
}

// readSender reads node's .sender file; a node without one is its
// sender's identity.
func (s *Store) readSender(node string) (string, error) {
	key, kept := store.SenderKey(node)
	if !kept {
		return node, nil
	}
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return node, nil
	}
	if err != nil {
		return "", fmt.Errorf("sender of %s: %w", node, err)
	}
	defer f.Close()
	sender, err := store.ReadSender(f)
	if err != nil {
		return "", fmt.Errorf("sender of %s: %s: %w", node, f.Name(), err)
	}
	return sender, nil
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
		return n, fmt.Errorf("write %s: %w", w.key, err)
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
		return fmt.Errorf("sync %s: already closed", w.key)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.s.sys.fdatasync(w.f); err != nil {
		w.err = fmt.Errorf("sync %s: %w", w.key, err)
		return w.err
	}
	if !w.dirSynced {
		// The first sync also makes the new names durable.
		if err := errors.Join(durable.SyncDir(filepath.Dir(w.f.Name())), durable.SyncDir(filepath.Dir(w.s.marker(w.key)))); err != nil {
			w.err = fmt.Errorf("sync %s: %w", w.key, err)
			return w.err
		}
		w.dirSynced = true
	}
	return nil
}

// markSynced records that a file-system-wide sync (syncfs) that reported
// no error covered w.
func (w *writer) markSynced() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.closed {
		return fmt.Errorf("sync %s: already closed", w.key)
	}
	if w.err != nil {
		return w.err
	}
	w.dirSynced = true // syncfs covers directories as well
	return nil
}

func (w *writer) Close(status store.Status, reason string) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.closed {
		return fmt.Errorf("close %s: already closed", w.key)
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
		errs = append(errs, fmt.Errorf("remove marker: %w", err))
	} else {
		errs = append(errs, durable.SyncDir(filepath.Dir(w.s.marker(w.key))))
	}
	return errors.Join(errs...)
}

// cutAtLastLine moves the bytes after the last complete line (from lastNL
// to size) into the .tail file beside f, or, when that cannot be written
// (full disk), into the marker's reserved space; then it truncates f to
// lastNL. It returns f's new size and how many bytes went to the marker.
//
// The cut-off bytes may be gigabytes (a sender that streamed without a
// newline): they are copied a chunk at a time, never held in memory. They
// are durable in their new place before f is truncated, so a crash at any
// point loses none of them (Recover then cuts again).
func cutAtLastLine(f *os.File, lastNL, size int64, marker string) (newSize int64, inMarker int, err error) {
	if lastNL >= size {
		return size, 0, nil
	}
	n := size - lastNL
	if err := durable.CopyRange(tailPath(f.Name()), f, lastNL, n); err != nil {
		if serr := stashTail(marker, f, lastNL, n); serr != nil {
			return size, 0, fmt.Errorf("not cut at the last line: cannot keep the cut-off bytes: %w", errors.Join(err, serr))
		}
		inMarker = int(n)
	}
	if err := f.Truncate(lastNL); err != nil {
		return size, inMarker, fmt.Errorf("cut at last line: %w", err)
	}
	if err := f.Sync(); err != nil {
		return size, inMarker, fmt.Errorf("cut at last line: %w", err)
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
		return st, fmt.Errorf("%s: %w", statusPath(castPath), err)
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
		return fmt.Errorf("marker status: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("marker status: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("marker status: %w", err)
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

// maxStash is how many cut-off bytes a marker can keep.
const maxStash = markerSize - markerStatusSize

// stashTail keeps the n bytes of f at off, cut off a recording, in its
// marker's reserved space, when the disk is too full for a .tail file.
func stashTail(marker string, f *os.File, off, n int64) error {
	if n > maxStash {
		return fmt.Errorf("%d bytes after the last line: too many to keep on a full disk", n)
	}
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, off); err != nil {
		return err
	}
	m, err := os.OpenFile(marker, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.WriteAt(tail, markerStatusSize); err != nil {
		return err
	}
	return m.Sync()
}

// unstashTail moves cut-off bytes kept in a marker to the .tail file.
func unstashTail(marker, castPath string, st statusFile) error {
	if st.TailInMarker == 0 {
		return nil
	}
	if st.TailInMarker < 0 || st.TailInMarker > maxStash {
		return fmt.Errorf("marker %s: says it keeps %d cut-off bytes; it has room for %d", marker, st.TailInMarker, maxStash)
	}
	m, err := os.Open(marker)
	if err != nil {
		return err
	}
	defer m.Close()
	return durable.CopyRange(tailPath(castPath), m, markerStatusSize, int64(st.TailInMarker))
}

// Recover implements store.Store.
func (s *Store) Recover(ctx context.Context) ([]store.Info, error) {
	if s.lock == nil {
		return nil, errReadOnly
	}
	root := filepath.Join(s.dir, ".reel", "open")
	nodes, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
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
		return store.Info{}, fmt.Errorf("recover: stray marker %s: %w", s.marker(key), err)
	}
	p := s.path(key)
	if st, ok := readMarkerStatus(s.marker(key)); ok {
		// Closed while the disk was full: the status waits in the marker.
		if err := unstashTail(s.marker(key), p, st); err != nil {
			return store.Info{}, fmt.Errorf("recover %s: %w", key, err)
		}
		st.TailInMarker = 0
		if err := writeStatus(p, st); err != nil {
			return store.Info{}, fmt.Errorf("recover %s: %w", key, err)
		}
		return store.Info{}, durable.Remove(s.marker(key))
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Crashed between marker and file: nothing was ever stored.
		return store.Info{}, durable.Remove(s.marker(key))
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("recover %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return store.Info{}, err
	}
	lastNL, err := durable.LastNewline(f, fi.Size())
	if err != nil {
		return store.Info{}, fmt.Errorf("recover %s: %w", key, err)
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
		return store.Info{}, fmt.Errorf("recover %s: %w", key, err)
	}
	if err := durable.Remove(s.marker(key)); err != nil {
		return store.Info{}, err
	}
	s.log.Warn("recovered interrupted recording", "key", key, "size", size, "cut", fi.Size()-size)
	sender, err := s.senderOf(node)
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Key: key, Node: node, Sender: sender, Start: start, Size: size, Status: store.StatusInterrupted, Reason: reason}, nil
}

// Open implements store.Store.
func (s *Store) Open(ctx context.Context, key string) (store.Reader, error) {
	if _, _, err := store.ParseKey(key); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("recording %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, err)
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
		return store.Info{}, fmt.Errorf("stat: %w", err)
	}
	return s.info(node, start, key, nil, nil)
}

// info describes key. names and live, when not nil, are the node
// directory's and marker directory's entries (so List need not stat them).
func (s *Store) info(node string, start time.Time, key string, names, live map[string]bool) (store.Info, error) {
	p := s.path(key)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return store.Info{}, fmt.Errorf("recording %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("recording %s: %w", key, err)
	}
	sender, err := s.senderOf(node)
	if err != nil {
		return store.Info{}, err
	}
	info := store.Info{Key: key, Node: node, Sender: sender, Start: start, Size: fi.Size(), Status: store.StatusComplete}
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
				yield(store.Info{}, fmt.Errorf("list: %w: node %q", store.ErrInvalidKey, f.Node))
				return
			}
			nodes = []string{f.Node}
		} else {
			ents, err := os.ReadDir(s.dir)
			if err != nil {
				yield(store.Info{}, fmt.Errorf("list: %w", err))
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
				if !yield(store.Info{}, fmt.Errorf("list %s: %w", node, err)) {
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
// when many recordings are dirty at once. It returns one error per writer:
// nil where the writer's bytes are durable.
//
// syncfs reports a write-back error of any file on the file system, other
// programs' too, and only once. So when it fails, SyncAll does not fail
// every writer: it falls back to one fdatasync per writer, which reports
// exactly the errors of that writer's file, and only the writers whose own
// data was lost fail. Writers not from this store are synced one by one.
func (s *Store) SyncAll(ws []store.Writer) []error {
	errs := make([]error, len(ws))
	var mine []int
	for i, w := range ws {
		if fw, ok := w.(*writer); ok && fw.s == s && s.lock != nil {
			mine = append(mine, i)
		} else {
			errs[i] = w.Sync()
		}
	}
	if len(mine) == 0 {
		return errs
	}
	if s.sys.syncfs == nil {
		syncEach(ws, mine, errs)
		return errs
	}
	err := s.sys.syncfs(int(s.lock.Fd()))
	if err == nil {
		for _, i := range mine {
			errs[i] = ws[i].(*writer).markSynced()
		}
		return errs
	}
	s.log.Warn("syncfs failed: syncing each recording on its own to find which lost data", "dir", s.dir, "recordings", len(mine), "err", err)
	syncEach(ws, mine, errs)
	return errs
}

// syncEach syncs ws[i] for each i in idx into errs[i], several at a time:
// the file system batches concurrent commits.
func syncEach(ws []store.Writer, idx []int, errs []error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, i := range idx {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = ws[i].Sync()
		})
	}
	wg.Wait()
}
