package s3store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// Events are appended to a spool segment per node and UTC day (of the
// time each was received), one line each, as in fsstore:
//
//	{"at":"<RFC 3339 receive time>","event":<the event as sent, compacted>}
//
// A segment is sealed when it is EventSegmentAge old, segmentMax big, or
// the day changes, and is then uploaded as one object,
// "<node>/events/<day>/<segment>.jsonl", where <segment> is the time it was
// opened. An event's id is "<node>/events/<day>/<segment>.jsonl:<offset of
// its line>", so GetEvent is one ranged read.

const (
	eventDayLayout = "2006-01-02"
	segmentMax     = 8 << 20
)

type eventLine struct {
	At    time.Time       `json:"at"`
	Event json.RawMessage `json:"event"`
}

// segment is one event segment in the spool.
type segment struct {
	sp      *spool
	node    string
	day     string
	key     string // "<node>/events/<day>/<segment>.jsonl", relative to the prefix
	path    string
	created time.Time

	mu       sync.Mutex
	f        *os.File // nil once sealed
	size     int64
	sealed   bool
	inflight sync.WaitGroup // appends whose sync has not returned

	sync durable.SyncGroup
	sc   sched // guarded by runner.mu
}

func (seg *segment) sched() *sched    { return &seg.sc }
func (seg *segment) describe() string { return seg.key }

// segPath is where the spool keeps segment key.
func (sp *spool) segPath(key string) string {
	return filepath.Join(sp.dir, "ev", filepath.FromSlash(strings.Replace(key, "/events/", "/", 1)))
}

// PutEvent implements store.Store: the event is durable in the spool when
// it returns, and lands in the bucket with its segment.
func (s *Store) PutEvent(ctx context.Context, sender string, at time.Time, data []byte) (string, error) {
	sp := s.sp
	if sp == nil {
		return "", errReadOnly
	}
	node, err := store.CheckSender(sender)
	if err != nil {
		return "", fmt.Errorf("s3store: put event: %w", err)
	}
	if err := sp.claim(node, sender); err != nil {
		return "", err
	}
	if err := sp.alive(); err != nil {
		return "", err
	}
	line, err := json.Marshal(eventLine{At: at.UTC(), Event: data}) // compacts and checks the JSON
	if err != nil {
		return "", fmt.Errorf("s3store: put event: %w", err)
	}
	line = append(line, '\n')
	if err := sp.grow(int64(len(line))); err != nil {
		return "", err
	}
	day := at.UTC().Format(eventDayLayout)
	for {
		seg, err := sp.activeSegment(node, day)
		if err != nil {
			sp.shrink(int64(len(line)))
			return "", err
		}
		seg.mu.Lock()
		if seg.sealed {
			seg.mu.Unlock()
			continue // sealed between the lookup and now: take the next one
		}
		off := seg.size
		n, err := seg.f.Write(line)
		seg.size += int64(n)
		if err != nil {
			if n > 0 && seg.f.Truncate(off) == nil {
				seg.size = off // leave no partial line
			}
			seg.mu.Unlock()
			sp.shrink(int64(len(line)))
			return "", fmt.Errorf("s3store: put event: %w", err)
		}
		full := seg.size >= segmentMax
		f := seg.f
		seg.inflight.Add(1)
		seg.mu.Unlock()
		err = seg.sync.Do(func() error { return unix.Fdatasync(int(f.Fd())) })
		seg.inflight.Done()
		if full {
			sp.sealSegment(seg)
		}
		if err != nil {
			return "", fmt.Errorf("s3store: put event: sync: %w", err)
		}
		return seg.key + ":" + strconv.FormatInt(off, 10), nil
	}
}

// activeSegment returns node's open segment for day, opening a new one
// (and sealing the old) as needed.
func (sp *spool) activeSegment(node, day string) (*segment, error) {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil, errStoreClosed
	}
	old := sp.active[node]
	if old != nil && old.day == day {
		sp.mu.Unlock()
		return old, nil
	}
	if old != nil {
		delete(sp.active, node)
	}
	now := sp.s.now().UTC()
	t := now
	if last := sp.lastSeg[node]; !t.After(last) {
		t = last.Add(time.Nanosecond)
	}
	sp.lastSeg[node] = t
	key := node + "/events/" + day + "/" + strings.TrimSuffix(store.RecordingName(t), ".cast") + ".jsonl"
	seg := &segment{sp: sp, node: node, day: day, key: key, path: sp.segPath(key), created: now}
	sp.mu.Unlock()
	if old != nil {
		sp.sealSegment(old)
	}

	if err := durable.MkdirAll(filepath.Dir(seg.path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("s3store: event segment: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(seg.path)); err != nil {
		f.Close()
		os.Remove(seg.path)
		return nil, err
	}
	seg.f = f
	sp.mu.Lock()
	cur := sp.active[node]
	switch {
	case sp.closed:
		sp.mu.Unlock()
		f.Close()
		os.Remove(seg.path)
		return nil, errStoreClosed
	case cur != nil && cur.day == day:
		// Another event opened one first: use it, drop ours.
		sp.mu.Unlock()
		f.Close()
		os.Remove(seg.path)
		return cur, nil
	}
	sp.active[node] = seg
	sp.segs[key] = seg
	sp.mu.Unlock()
	if cur != nil {
		sp.sealSegment(cur) // one for another day, opened meanwhile
	}
	return seg, nil
}

// sealSegment stops appends to seg and queues its upload.
func (sp *spool) sealSegment(seg *segment) {
	sp.mu.Lock()
	if sp.active[seg.node] == seg {
		delete(sp.active, seg.node)
	}
	sp.mu.Unlock()
	if err := seg.seal(); err != nil {
		sp.s.log.Warn("event segment: close", "segment", seg.key, "err", err)
	}
	if sp.run != nil {
		sp.run.kick(seg)
	}
}

// sealOld seals the open segments created before cutoff.
func (sp *spool) sealOld(cutoff time.Time) {
	sp.mu.Lock()
	var old []*segment
	for _, seg := range sp.active {
		if seg.created.Before(cutoff) {
			old = append(old, seg)
		}
	}
	sp.mu.Unlock()
	for _, seg := range old {
		sp.sealSegment(seg)
	}
}

// seal stops appends and closes the file once the appends under way are
// synced.
func (seg *segment) seal() error {
	seg.mu.Lock()
	if seg.sealed {
		seg.mu.Unlock()
		return nil
	}
	seg.sealed = true
	f := seg.f
	seg.f = nil
	seg.mu.Unlock()
	seg.inflight.Wait()
	if f == nil {
		return nil
	}
	return f.Close()
}

// run uploads a sealed segment and removes it from the spool.
func (seg *segment) run(ctx context.Context) error {
	sp := seg.sp
	seg.mu.Lock()
	sealed := seg.sealed
	seg.mu.Unlock()
	if !sealed {
		return nil
	}
	seg.inflight.Wait()
	sp.mu.Lock()
	mine := sp.segs[seg.key] == seg
	sp.mu.Unlock()
	if !mine {
		return nil // landed by an earlier run
	}
	b, err := os.ReadFile(seg.path)
	if errors.Is(err, fs.ErrNotExist) {
		return seg.forget(0)
	}
	if err != nil {
		return fmt.Errorf("spool %s: %w", seg.key, err)
	}
	if err := sp.s.landSender(ctx, seg.node); err != nil {
		return err
	}
	if err := sp.s.putObject(ctx, seg.key, bytes.NewReader(b), int64(len(b))); err != nil {
		return err
	}
	sp.s.stats.landed.Add(1)
	sp.s.stats.landedBytes.Add(int64(len(b)))
	sp.s.log.Debug("event segment stored", "object", sp.s.ObjectURL(seg.key), "bytes", len(b))
	return seg.forget(int64(len(b)))
}

func (seg *segment) forget(size int64) error {
	sp := seg.sp
	if err := sp.alive(); err != nil {
		return err
	}
	if err := durable.Remove(seg.path); err != nil {
		return err
	}
	os.Remove(filepath.Dir(seg.path)) // the day's folder, if now empty
	sp.mu.Lock()
	if sp.segs[seg.key] != seg {
		sp.mu.Unlock()
		return nil // forgotten already
	}
	delete(sp.segs, seg.key)
	sp.mu.Unlock()
	sp.shrink(size)
	return nil
}

// loadSegments finds the segments an earlier process left: all are sealed
// (a partial last line, never acknowledged, is cut) and queued.
func (sp *spool) loadSegments() error {
	root := filepath.Join(sp.dir, "ev")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("s3store: spool: %w", err)
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return nil
		}
		key := parts[0] + "/events/" + parts[1] + "/" + parts[2]
		if _, _, _, _, err := parseEventID(key + ":0"); err != nil {
			if strings.HasSuffix(p, ".tmp") {
				os.Remove(p)
			}
			return nil
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("s3store: spool: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("s3store: spool: %w", err)
		}
		size := fi.Size()
		if nl, err := durable.LastNewline(f, size); err == nil && nl < size {
			if err := f.Truncate(nl); err == nil && f.Sync() == nil {
				size = nl
			}
		}
		seg := &segment{sp: sp, node: parts[0], day: parts[1], key: key, path: p, size: size, sealed: true}
		sp.segs[key] = seg
		sp.used.Add(size)
		if t, err := segTime(parts[0], parts[2]); err == nil && t.After(sp.lastSeg[parts[0]]) {
			sp.lastSeg[parts[0]] = t
		}
		return nil
	})
}

// segTime parses a segment file name's time.
func segTime(node, name string) (time.Time, error) {
	ts, ok := strings.CutSuffix(name, ".jsonl")
	if !ok {
		return time.Time{}, fmt.Errorf("s3store: segment %q", name)
	}
	_, t, err := store.ParseKey(node + "/" + ts + ".cast")
	return t, err
}

// parseEventID splits "<node>/events/<day>/<segment>.jsonl:<offset>".
func parseEventID(id string) (seg, node, day string, off int64, err error) {
	bad := fmt.Errorf("s3store: %w: event id %q", store.ErrInvalidKey, id)
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return "", "", "", 0, bad
	}
	seg = id[:i]
	off, err = strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || off < 0 {
		return "", "", "", 0, bad
	}
	parts := strings.Split(seg, "/")
	if len(parts) != 4 || !store.ValidNode(parts[0]) || parts[1] != "events" {
		return "", "", "", 0, bad
	}
	if _, err := time.Parse(eventDayLayout, parts[2]); err != nil {
		return "", "", "", 0, bad
	}
	if _, err := segTime(parts[0], parts[3]); err != nil {
		return "", "", "", 0, bad
	}
	return seg, parts[0], parts[2], off, nil
}

// GetEvent implements store.Store.
func (s *Store) GetEvent(ctx context.Context, id string) ([]byte, error) {
	segKey, _, _, off, err := parseEventID(id)
	if err != nil {
		return nil, err
	}
	from := max(off-1, 0) // the byte before must end a line
	var body io.ReadCloser
	if s.sp != nil {
		s.sp.mu.Lock()
		seg := s.sp.segs[segKey]
		s.sp.mu.Unlock()
		if seg != nil {
			f, err := os.Open(seg.path)
			if err == nil {
				if _, err := f.Seek(from, io.SeekStart); err != nil {
					f.Close()
					return nil, fmt.Errorf("s3store: event %s: %w", id, err)
				}
				body = f
			}
		}
	}
	if body == nil {
		opts := minio.GetObjectOptions{}
		if from > 0 {
			opts.SetRange(from, 0)
		}
		b, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.objKey(segKey), opts)
		if isNoSuchKey(err) || errCode(err) == "InvalidRange" {
			return nil, fmt.Errorf("s3store: event %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("s3store: event %s: %w", id, err)
		}
		body = b
	}
	defer body.Close()
	br := bufio.NewReader(body)
	if off > 0 {
		if c, err := br.ReadByte(); err != nil || c != '\n' {
			return nil, fmt.Errorf("s3store: event %s: %w", id, store.ErrNotFound)
		}
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("s3store: event %s: %w", id, store.ErrNotFound)
	}
	var el eventLine
	if err := json.Unmarshal(line, &el); err != nil {
		return nil, fmt.Errorf("s3store: event %s: %w", id, err)
	}
	return el.Event, nil
}

// ListEvents implements store.Store: the bucket's segments merged with the
// spool's.
func (s *Store) ListEvents(ctx context.Context, node string, since, until time.Time) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if !store.ValidNode(node) {
			yield(store.Event{}, fmt.Errorf("s3store: list events: %w: node %q", store.ErrInvalidKey, node))
			return
		}
		spooled := map[string]*segment{}
		if s.sp != nil {
			s.sp.mu.Lock()
			for key, seg := range s.sp.segs {
				if seg.node == node {
					spooled[key] = seg
				}
			}
			s.sp.mu.Unlock()
		}
		keys := make([]string, 0, len(spooled))
		for key := range spooled {
			keys = append(keys, key)
		}
		dir := node + "/events/"
		for oi := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.objKey(dir), Recursive: true}) {
			if oi.Err != nil {
				yield(store.Event{}, fmt.Errorf("s3store: list events of %s: %w", node, oi.Err))
				return
			}
			key := strings.TrimPrefix(oi.Key, s.prefix)
			if _, _, _, _, err := parseEventID(key + ":0"); err == nil {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		for _, key := range keys {
			_, _, dayS, _, _ := parseEventID(key + ":0")
			day, _ := time.Parse(eventDayLayout, dayS)
			if (!since.IsZero() && !day.Add(24*time.Hour).After(since)) || (!until.IsZero() && !day.Before(until)) {
				continue
			}
			b, err := s.readSegment(ctx, key, spooled[key])
			if err != nil {
				if !yield(store.Event{}, err) {
					return
				}
				continue
			}
			for off := 0; off < len(b); {
				n := bytes.IndexByte(b[off:], '\n')
				if n < 0 {
					break // a line being appended right now
				}
				line := b[off : off+n+1]
				start := off
				off += n + 1
				var el eventLine
				if err := json.Unmarshal(line, &el); err != nil {
					if !yield(store.Event{}, fmt.Errorf("s3store: segment %s at %d: %w", key, start, err)) {
						return
					}
					continue
				}
				if el.At.Before(since) || (!until.IsZero() && !el.At.Before(until)) {
					continue
				}
				ev := store.Event{ID: key + ":" + strconv.Itoa(start), Node: node, At: el.At, Data: el.Event}
				if !yield(ev, nil) {
					return
				}
			}
		}
	}
}

// readSegment returns a segment's bytes, from the spool if it is there.
func (s *Store) readSegment(ctx context.Context, key string, seg *segment) ([]byte, error) {
	if seg != nil {
		b, err := os.ReadFile(seg.path)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("s3store: events: %w", err)
		}
	}
	body, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.objKey(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3store: events %s: %w", key, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("s3store: events %s: %w", key, err)
	}
	return b, nil
}
