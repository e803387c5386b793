package fsstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// Events are appended to one file per node per UTC day,
// <node>/events/<YYYY-MM-DD>.jsonl, one line each:
//
//	{"at":"<RFC 3339 receive time>","event":<the event as sent, compacted>}
//
// An event's id is "<node>/events/<day>.jsonl:<byte offset of its line>", so
// GetEvent is one seek and a million events a day are one file, not a
// million. Appends to one segment are serialised; syncs are shared by every
// append that arrived while the previous sync ran (group commit).

const eventDayLayout = "2006-01-02"

type segment struct {
	path string
	day  string

	mu   sync.Mutex // guards f, size
	f    *os.File
	size int64

	sync durable.SyncGroup
}

func (seg *segment) close() error {
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if seg.f == nil {
		return nil
	}
	err := seg.f.Close()
	seg.f = nil
	return err
}

type eventLine struct {
	At    time.Time       `json:"at"`
	Event json.RawMessage `json:"event"`
}

// PutEvent implements store.Store.
func (s *Store) PutEvent(ctx context.Context, sender string, at time.Time, data []byte) (string, error) {
	if s.lock == nil {
		return "", errReadOnly
	}
	node, err := store.CheckSender(sender)
	if err != nil {
		return "", fmt.Errorf("put event: %w", err)
	}
	if err := s.claim(node, sender); err != nil {
		return "", err
	}
	line, err := json.Marshal(eventLine{At: at.UTC(), Event: data}) // Marshal compacts RawMessage
	if err != nil {
		return "", fmt.Errorf("put event: %w", err)
	}
	line = append(line, '\n')
	seg, err := s.segment(node, at.UTC().Format(eventDayLayout))
	if err != nil {
		return "", err
	}
	seg.mu.Lock()
	if seg.f == nil {
		seg.mu.Unlock()
		return "", fmt.Errorf("put event: store closed")
	}
	off := seg.size
	n, err := seg.f.Write(line)
	seg.size += int64(n)
	if err != nil && n > 0 {
		// Leave no partial line for the next event to be glued to.
		if terr := seg.f.Truncate(off); terr == nil {
			seg.size = off
		}
	}
	f := seg.f
	seg.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("put event: %w", err)
	}
	if err := seg.sync.Do(func() error { return f.Sync() }); err != nil {
		return "", fmt.Errorf("put event: sync: %w", err)
	}
	return fmt.Sprintf("%s/events/%s.jsonl:%d", node, seg.day, off), nil
}

// segment returns the open segment for node and day, opening (and rotating
// away from yesterday's) as needed.
func (s *Store) segment(node, day string) (*segment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seg := s.events[node]; seg != nil && seg.day == day {
		return seg, nil
	} else if seg != nil {
		seg.close()
		delete(s.events, node)
	}
	dir := filepath.Join(s.dir, node, "events")
	if err := durable.MkdirAll(dir); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, day+".jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open events %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := fi.Size()
	if size > 0 {
		// A crash may have left a partial last line: cut it so the next
		// event starts a line of its own.
		rf, err := os.Open(p)
		if err == nil {
			nl, ferr := durable.LastNewline(rf, size)
			rf.Close()
			if ferr == nil && nl < size {
				if err := f.Truncate(nl); err == nil {
					size = nl
				}
			}
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	seg := &segment{path: p, day: day, f: f, size: size}
	s.events[node] = seg
	return seg, nil
}

// parseEventID splits "<node>/events/<day>.jsonl:<offset>".
func parseEventID(id string) (node, day string, off int64, err error) {
	bad := fmt.Errorf("%w: event id %q", store.ErrInvalidKey, id)
	rest, offs, ok := strings.Cut(id, ":")
	if !ok {
		return "", "", 0, bad
	}
	off, err = strconv.ParseInt(offs, 10, 64)
	if err != nil || off < 0 {
		return "", "", 0, bad
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !store.ValidNode(parts[0]) || parts[1] != "events" || !strings.HasSuffix(parts[2], ".jsonl") {
		return "", "", 0, bad
	}
	day = strings.TrimSuffix(parts[2], ".jsonl")
	if _, err := time.Parse(eventDayLayout, day); err != nil {
		return "", "", 0, bad
	}
	return parts[0], day, off, nil
}

// GetEvent implements store.Store.
func (s *Store) GetEvent(ctx context.Context, id string) ([]byte, error) {
	node, day, off, err := parseEventID(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, node, "events", day+".jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	defer f.Close()
	if off > 0 {
		// The id must point at the start of a line.
		var prev [1]byte
		if _, err := f.ReadAt(prev[:], off-1); err != nil || prev[0] != '\n' {
			return nil, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
		}
	}
	if _, err := f.Seek(off, 0); err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	var el eventLine
	if err := json.Unmarshal(line, &el); err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return el.Event, nil
}

// ListEvents implements store.Store.
func (s *Store) ListEvents(ctx context.Context, node string, since, until time.Time) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if !store.ValidNode(node) {
			yield(store.Event{}, fmt.Errorf("list events: %w: node %q", store.ErrInvalidKey, node))
			return
		}
		dir := filepath.Join(s.dir, node, "events")
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(store.Event{}, fmt.Errorf("list events: %w", err))
			return
		}
		for _, e := range ents {
			day, ok := strings.CutSuffix(e.Name(), ".jsonl")
			if !ok {
				continue
			}
			d, err := time.Parse(eventDayLayout, day)
			if err != nil || (!since.IsZero() && d.Add(24*time.Hour).Before(since)) || (!until.IsZero() && !d.Before(until)) {
				continue
			}
			if !s.scanSegment(ctx, node, day, filepath.Join(dir, e.Name()), since, until, yield) {
				return
			}
		}
	}
}

func (s *Store) scanSegment(ctx context.Context, node, day, p string, since, until time.Time, yield func(store.Event, error) bool) bool {
	f, err := os.Open(p)
	if err != nil {
		return yield(store.Event{}, fmt.Errorf("list events: %w", err))
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return yield(store.Event{}, err)
		}
		line, err := br.ReadBytes('\n')
		if err != nil {
			return true // EOF, or a partial line being appended right now
		}
		start := off
		off += int64(len(line))
		var el eventLine
		if err := json.Unmarshal(line, &el); err != nil {
			if !yield(store.Event{}, fmt.Errorf("%s at %d: %w", p, start, err)) {
				return false
			}
			continue
		}
		if el.At.Before(since) || (!until.IsZero() && !el.At.Before(until)) {
			continue
		}
		ev := store.Event{ID: fmt.Sprintf("%s/events/%s.jsonl:%d", node, day, start), Node: node, At: el.At, Data: el.Event}
		if !yield(ev, nil) {
			return false
		}
	}
}
