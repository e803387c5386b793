// Package memstore is a store.Store in memory, for tests of the code that
// uses a store (the recorder, the CLI). It passes the same
// conformance suite as the real backends and models their durability: Crash
// returns the store a restarted process would see, in which live recordings
// hold only the bytes that were synced.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

var (
	_ store.Store = (*Store)(nil)
	_ store.Files = (*Store)(nil)
)

// Options configure a Store.
type Options struct {
	// Capacity, if positive, is the number of recording bytes the store
	// holds: Create fails with store.ErrInsufficientSpace once they are
	// stored, and a Write that would pass it fails.
	Capacity int64
}

// Store is an in-memory store.Store. Create one with New.
type Store struct {
	d *data

	mu      sync.Mutex
	crashed bool // Crash was called: writers of this store are dead
	closed  bool
}

// data is the "disk": it outlives a crashed Store.
type data struct {
	capacity int64

	mu      sync.Mutex
	recs    map[string]*rec
	tails   map[string][]byte
	used    int64
	events  map[string][]store.Event // by node, in the order received
	senders map[string]string        // node -> its sender's identity
	files   map[string][]byte        // Files: sidecars and store-wide files
}

type rec struct {
	node   string
	start  time.Time
	buf    []byte
	synced int
	lastNL int // offset after the last '\n' in buf
	status store.Status
	reason string
	owner  *Store // the store whose writer is writing it, while live
}

// New returns an empty store.
func New(opts Options) *Store {
	return &Store{d: &data{
		capacity: opts.Capacity,
		recs:     map[string]*rec{},
		tails:    map[string][]byte{},
		events:   map[string][]store.Event{},
		senders:  map[string]string{},
		files:    map[string][]byte{},
	}}
}

// Crash simulates the process that uses s dying and returns the store a
// restarted process would see: s's writers fail from now on, and each live
// recording keeps only its synced bytes until Recover closes it out.
func (s *Store) Crash() *Store {
	s.mu.Lock()
	s.crashed = true
	s.mu.Unlock()
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.recs {
		if r.status == store.StatusLive {
			d.used -= int64(len(r.buf) - r.synced)
			r.buf = r.buf[:r.synced:r.synced]
			r.lastNL = bytes.LastIndexByte(r.buf, '\n') + 1
			r.owner = nil
		}
	}
	return &Store{d: d}
}

// Tail returns the bytes cut off the end of recording key when it was
// closed as failed or interrupted, and whether there were any.
func (s *Store) Tail(key string) ([]byte, bool) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	b, ok := s.d.tails[key]
	return slices.Clone(b), ok
}

var errClosed = errors.New("memstore: store closed")

func (s *Store) alive() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed || s.closed {
		return errClosed
	}
	return nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, sender string, start time.Time) (store.Writer, error) {
	return s.CreateKind(ctx, sender, start, store.KindTerminal)
}

var _ store.KindCreator = (*Store)(nil)

// CreateKind implements store.KindCreator: as Create, for a recording of
// kind k.
func (s *Store) CreateKind(ctx context.Context, sender string, start time.Time, k store.Kind) (store.Writer, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	node, err := store.CheckSender(sender)
	if err != nil {
		return nil, fmt.Errorf("memstore: create: %w", err)
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.capacity > 0 && d.used >= d.capacity {
		return nil, fmt.Errorf("memstore: create: %w", store.ErrInsufficientSpace)
	}
	if err := d.claim(node, sender); err != nil {
		return nil, err
	}
	t := start.UTC()
	for d.recs[store.KindKey(node, t, k)] != nil {
		t = t.Add(time.Nanosecond)
	}
	key := store.KindKey(node, t, k)
	d.recs[key] = &rec{node: node, start: t, status: store.StatusLive, owner: s}
	return &writer{s: s, key: key}, nil
}

type writer struct {
	s   *Store
	key string
}

func (w *writer) Key() string { return w.key }

// rec returns w's recording if w may still write it.
func (w *writer) rec() (*rec, error) {
	r := w.s.d.recs[w.key]
	if r == nil || r.owner != w.s || r.status != store.StatusLive {
		return nil, fmt.Errorf("memstore: %s: writer is closed or its store crashed", w.key)
	}
	return r, nil
}

func (w *writer) Write(p []byte) (int, error) {
	d := w.s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := w.rec()
	if err != nil {
		return 0, err
	}
	if d.capacity > 0 && d.used+int64(len(p)) > d.capacity {
		return 0, fmt.Errorf("memstore: write %s: %w", w.key, store.ErrInsufficientSpace)
	}
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		r.lastNL = len(r.buf) + i + 1
	}
	r.buf = append(r.buf, p...)
	d.used += int64(len(p))
	return len(p), nil
}

func (w *writer) Sync() error {
	d := w.s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := w.rec()
	if err != nil {
		return err
	}
	r.synced = len(r.buf)
	return nil
}

func (w *writer) Close(status store.Status, reason string) error {
	d := w.s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := w.rec()
	if err != nil {
		return err
	}
	closeRec(d, w.key, r, status, reason)
	return nil
}

// claim makes node sender's. Called with d.mu held.
func (d *data) claim(node, sender string) error {
	if owner, ok := d.senders[node]; ok && owner != sender {
		return store.NodeTaken(node, sender, owner)
	}
	d.senders[node] = sender
	return nil
}

// sender returns the identity of node's sender. Called with d.mu held.
func (d *data) sender(node string) string {
	if owner, ok := d.senders[node]; ok {
		return owner
	}
	return node
}

// closeRec finishes r, cutting it at its last line unless it is complete
// or malformed.
func closeRec(d *data, key string, r *rec, status store.Status, reason string) {
	if status != store.StatusComplete && status != store.StatusMalformed && r.lastNL < len(r.buf) {
		d.tails[store.TailKey(key)] = slices.Clone(r.buf[r.lastNL:])
		r.buf = r.buf[:r.lastNL:r.lastNL]
	}
	r.synced = len(r.buf)
	r.status, r.reason, r.owner = status, reason, nil
}

// Recover implements store.Store.
func (s *Store) Recover(ctx context.Context) ([]store.Info, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []store.Info
	for key, r := range d.recs {
		if r.status == store.StatusLive && r.owner == nil {
			closeRec(d, key, r, store.StatusInterrupted, "the recorder stopped while the recording was live; cut at the last complete line")
			out = append(out, d.info(key, r))
		}
	}
	slices.SortFunc(out, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// info describes r. Called with d.mu held.
func (d *data) info(key string, r *rec) store.Info {
	return store.Info{Key: key, Node: r.node, Sender: d.sender(r.node), Start: r.start, Size: int64(len(r.buf)), Status: r.status, Reason: r.reason}
}

// Open implements store.Store.
func (s *Store) Open(ctx context.Context, key string) (store.Reader, error) {
	if _, _, err := store.ParseKey(key); err != nil {
		return nil, fmt.Errorf("memstore: open: %w", err)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	r := s.d.recs[key]
	if r == nil {
		return nil, fmt.Errorf("memstore: open %s: %w", key, store.ErrNotFound)
	}
	// The reader sees the bytes written so far; later writes append to a
	// slice it does not share.
	return reader{bytes.NewReader(slices.Clip(r.buf))}, nil
}

type reader struct{ *bytes.Reader }

func (reader) Close() error { return nil }

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if _, _, err := store.ParseKey(key); err != nil {
		return store.Info{}, fmt.Errorf("memstore: stat: %w", err)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	r := s.d.recs[key]
	if r == nil {
		return store.Info{}, fmt.Errorf("memstore: stat %s: %w", key, store.ErrNotFound)
	}
	return s.d.info(key, r), nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, f store.Filter) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		if f.Node != "" && !store.ValidNode(f.Node) {
			yield(store.Info{}, fmt.Errorf("memstore: list: %w: node %q", store.ErrInvalidKey, f.Node))
			return
		}
		s.d.mu.Lock()
		var out []store.Info
		for key, r := range s.d.recs {
			if (f.Node == "" || r.node == f.Node) && !r.start.Before(f.Since) && (f.Until.IsZero() || r.start.Before(f.Until)) {
				out = append(out, s.d.info(key, r))
			}
		}
		s.d.mu.Unlock()
		slices.SortFunc(out, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
		for _, info := range out {
			if err := ctx.Err(); err != nil {
				yield(store.Info{}, err)
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// Event ids are "<node>:<index among node's events>".

// PutEvent implements store.Store.
func (s *Store) PutEvent(ctx context.Context, sender string, at time.Time, data []byte) (string, error) {
	if err := s.alive(); err != nil {
		return "", err
	}
	node, err := store.CheckSender(sender)
	if err != nil {
		return "", fmt.Errorf("memstore: put event: %w", err)
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.claim(node, sender); err != nil {
		return "", err
	}
	id := node + ":" + strconv.Itoa(len(d.events[node]))
	d.events[node] = append(d.events[node], store.Event{ID: id, Node: node, At: at.UTC(), Data: slices.Clone(data)})
	return id, nil
}

// GetEvent implements store.Store.
func (s *Store) GetEvent(ctx context.Context, id string) ([]byte, error) {
	node, n, ok := strings.Cut(id, ":")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 0 || !store.ValidNode(node) {
		return nil, fmt.Errorf("memstore: %w: event id %q", store.ErrInvalidKey, id)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	evs := s.d.events[node]
	if i >= len(evs) {
		return nil, fmt.Errorf("memstore: event %s: %w", id, store.ErrNotFound)
	}
	return slices.Clone(evs[i].Data), nil
}

// ListEvents implements store.Store.
func (s *Store) ListEvents(ctx context.Context, node string, since, until time.Time) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if !store.ValidNode(node) {
			yield(store.Event{}, fmt.Errorf("memstore: list events: %w: node %q", store.ErrInvalidKey, node))
			return
		}
		s.d.mu.Lock()
		evs := slices.Clip(s.d.events[node])
		s.d.mu.Unlock()
		for _, ev := range evs {
			if ev.At.Before(since) || (!until.IsZero() && !ev.At.Before(until)) {
				continue
			}
			ev.Data = slices.Clone(ev.Data)
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
