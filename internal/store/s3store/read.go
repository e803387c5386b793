package s3store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/reel-rec/reel/internal/store"
)

// Open implements store.Store. A recording still in the spool is read from
// there; a landed one with ranged GETs of its object.
func (s *Store) Open(ctx context.Context, key string) (store.Reader, error) {
	if _, _, err := store.ParseKey(key); err != nil {
		return nil, fmt.Errorf("s3store: open: %w", err)
	}
	if r := s.spooled(key); r != nil {
		info := r.info()
		f, err := os.Open(r.path)
		if err == nil {
			return &spoolReader{io.NewSectionReader(f, 0, info.Size), f}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("s3store: open %s: %w", key, err)
		}
		// Landed just now: read the bucket.
	}
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, s.objKey(key), minio.StatObjectOptions{})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, fmt.Errorf("s3store: open %s: %w", key, store.ErrNotFound)
		}
		return nil, fmt.Errorf("s3store: open %s: %w", key, err)
	}
	return &objReader{ctx: ctx, s: s, obj: s.objKey(key), etag: oi.ETag, size: oi.Size}, nil
}

// spooled returns key's recording if the spool holds it.
func (s *Store) spooled(key string) *rec {
	if s.sp == nil {
		return nil
	}
	s.sp.mu.Lock()
	defer s.sp.mu.Unlock()
	return s.sp.recs[key]
}

type spoolReader struct {
	*io.SectionReader
	f *os.File
}

func (r *spoolReader) Close() error { return r.f.Close() }

// objReader reads an object with ranged GETs: ReadAt fetches just the
// range asked for, Read streams from the current offset.
type objReader struct {
	ctx  context.Context
	s    *Store
	obj  string
	etag string
	size int64

	pos     int64
	body    io.ReadCloser // streaming from bodyPos
	bodyPos int64
}

func (r *objReader) Size() int64 { return r.size }

// get opens the object's bytes [off, end) (end < 0: to the end).
func (r *objReader) get(off, end int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(r.etag); err != nil {
		return nil, err
	}
	// SetRange(a, b) asks for bytes a..b inclusive, except that (a, 0)
	// with a > 0 means "from a to the end", and (0, 0) the first byte.
	var err error
	switch {
	case end >= 0:
		err = opts.SetRange(off, end-1)
	case off > 0:
		err = opts.SetRange(off, 0)
	}
	if err != nil {
		return nil, err
	}
	body, _, _, err := r.s.core.GetObject(r.ctx, r.s.cfg.Bucket, r.obj, opts)
	if err != nil {
		return nil, fmt.Errorf("s3store: read %s at %d: %w", r.obj, off, err)
	}
	return body, nil
}

func (r *objReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body == nil || r.bodyPos != r.pos {
		if r.body != nil {
			r.body.Close()
		}
		body, err := r.get(r.pos, -1)
		if err != nil {
			return 0, err
		}
		r.body, r.bodyPos = body, r.pos
	}
	p = p[:min(int64(len(p)), r.size-r.pos)]
	n, err := r.body.Read(p)
	r.pos += int64(n)
	r.bodyPos += int64(n)
	if errors.Is(err, io.EOF) {
		r.body.Close()
		r.body = nil
		if r.pos < r.size {
			return n, fmt.Errorf("s3store: read %s: %w", r.obj, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

func (r *objReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("s3store: read %s: negative offset", r.obj)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := min(int64(len(p)), r.size-off)
	body, err := r.get(off, off+want)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:want])
	if err != nil {
		return n, fmt.Errorf("s3store: read %s at %d: %w", r.obj, off, err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (r *objReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, fmt.Errorf("s3store: seek: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("s3store: seek to %d: negative position", off)
	}
	r.pos = off
	return off, nil
}

func (r *objReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	node, start, err := store.ParseKey(key)
	if err != nil {
		return store.Info{}, fmt.Errorf("s3store: stat: %w", err)
	}
	if r := s.spooled(key); r != nil {
		return r.info(), nil
	}
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, s.objKey(key), minio.StatObjectOptions{})
	if err != nil {
		if isNoSuchKey(err) {
			// It may have landed between the two looks.
			if r := s.spooled(key); r != nil {
				return r.info(), nil
			}
			return store.Info{}, fmt.Errorf("s3store: stat %s: %w", key, store.ErrNotFound)
		}
		return store.Info{}, fmt.Errorf("s3store: stat %s: %w", key, err)
	}
	sender, err := s.senderOf(ctx, node)
	if err != nil {
		return store.Info{}, err
	}
	info := store.Info{Key: key, Node: node, Sender: sender, Start: start, Size: oi.Size, Status: store.StatusComplete}
	return info, s.readStatus(ctx, &info)
}

// readStatus fills info's status from its .status object, if there is one.
func (s *Store) readStatus(ctx context.Context, info *store.Info) error {
	body, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.objKey(statusKey(info.Key)), minio.GetObjectOptions{})
	if isNoSuchKey(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("s3store: status of %s: %w", info.Key, err)
	}
	defer body.Close()
	var st statusFile
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&st); err != nil {
		if isNoSuchKey(err) {
			return nil
		}
		return fmt.Errorf("s3store: status of %s: %w", info.Key, err)
	}
	info.Status, info.Reason = st.Status, st.Reason
	return nil
}

// List implements store.Store: the bucket's recordings, merged with those
// the spool holds (which win where both have a key).
func (s *Store) List(ctx context.Context, f store.Filter) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		if f.Node != "" && !store.ValidNode(f.Node) {
			yield(store.Info{}, fmt.Errorf("s3store: list: %w: node %q", store.ErrInvalidKey, f.Node))
			return
		}
		// The spool first: a recording that lands while the bucket is
		// listed is then seen in one place or both, never in neither.
		spooled := s.spooledInfos(f)
		nodes := []string{f.Node}
		if f.Node == "" {
			var err error
			if nodes, err = s.listNodes(ctx); err != nil {
				yield(store.Info{}, err)
				return
			}
			for _, info := range spooled {
				nodes = append(nodes, info.Node)
			}
			slices.Sort(nodes)
			nodes = slices.Compact(nodes)
		}
		for _, node := range nodes {
			mine := spooled[:0:0]
			for _, info := range spooled {
				if info.Node == node {
					mine = append(mine, info)
				}
			}
			if !s.listNode(ctx, node, f, mine, yield) {
				return
			}
		}
	}
}

// spooledInfos describes the spool's recordings that match f, in key
// order.
func (s *Store) spooledInfos(f store.Filter) []store.Info {
	if s.sp == nil {
		return nil
	}
	s.sp.mu.Lock()
	recs := make([]*rec, 0, len(s.sp.recs))
	for _, r := range s.sp.recs {
		if matches(f, r.node, r.start) {
			recs = append(recs, r)
		}
	}
	s.sp.mu.Unlock()
	infos := make([]store.Info, len(recs))
	for i, r := range recs {
		infos[i] = r.info()
	}
	slices.SortFunc(infos, func(a, b store.Info) int { return cmp.Compare(a.Key, b.Key) })
	return infos
}

// matches reports whether a recording of node started at start passes f.
func matches(f store.Filter, node string, start time.Time) bool {
	return (f.Node == "" || node == f.Node) && !start.Before(f.Since) && (f.Until.IsZero() || start.Before(f.Until))
}

// listNodes returns the nodes that have a folder in the bucket.
func (s *Store) listNodes(ctx context.Context) ([]string, error) {
	var nodes []string
	for oi := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.prefix}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("s3store: list %s: %w", s.Location(), oi.Err)
		}
		node, ok := strings.CutSuffix(strings.TrimPrefix(oi.Key, s.prefix), "/")
		if ok && store.ValidNode(node) {
			nodes = append(nodes, node)
		}
	}
	return nodes, nil
}

// listNode yields node's recordings that match f, merging the bucket's
// listing with mine (the spool's, in key order). It returns false when the
// caller stopped.
func (s *Store) listNode(ctx context.Context, node string, f store.Filter, mine []store.Info, yield func(store.Info, error) bool) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := s.prefix + node + "/"
	opts := minio.ListObjectsOptions{Prefix: dir}
	if !f.Since.IsZero() {
		// Just before the first name that can match.
		opts.StartAfter = dir + strings.TrimSuffix(store.RecordingName(f.Since), ".cast")
	}
	// emit yields info after every spooled one that sorts before it.
	emit := func(info store.Info) bool {
		for len(mine) > 0 && mine[0].Key <= info.Key {
			same := mine[0].Key == info.Key
			if !yield(mine[0], nil) {
				return false
			}
			mine = mine[1:]
			if same {
				return true
			}
		}
		return yield(info, nil)
	}
	var pending *store.Info // a recording whose .status may come next
	var sender string       // node's, once needed
	flush := func() bool {
		if pending == nil {
			return true
		}
		info := *pending
		pending = nil
		return emit(info)
	}
	for oi := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, opts) {
		if oi.Err != nil {
			if !flush() {
				return false
			}
			return yield(store.Info{}, fmt.Errorf("s3store: list %s%s: %w", s.Location(), node, oi.Err))
		}
		rel := strings.TrimPrefix(oi.Key, s.prefix)
		if pending != nil && rel != statusKey(pending.Key) && strings.HasPrefix(rel, pending.Key+".") {
			continue // a sidecar that sorts before .status (.chain, .seal)
		}
		if pending != nil && rel == statusKey(pending.Key) {
			if err := s.readStatus(ctx, pending); err != nil {
				if !yield(store.Info{}, err) {
					return false
				}
			}
			if !flush() {
				return false
			}
			continue
		}
		if !flush() {
			return false
		}
		n, start, err := store.ParseKey(rel)
		if err != nil || n != node {
			continue // a sidecar, the events folder, or not ours
		}
		if !f.Until.IsZero() && !start.Before(f.Until) {
			break // names sort by time: nothing later matches
		}
		if start.Before(f.Since) {
			continue
		}
		if sender == "" {
			if sender, err = s.senderOf(ctx, node); err != nil {
				return yield(store.Info{}, err)
			}
		}
		pending = &store.Info{Key: rel, Node: node, Sender: sender, Start: start, Size: oi.Size, Status: store.StatusComplete}
	}
	if !flush() {
		return false
	}
	for _, info := range mine {
		if !yield(info, nil) {
			return false
		}
	}
	return true
}
