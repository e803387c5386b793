package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/reel-rec/reel/internal/busy"
	"github.com/reel-rec/reel/internal/segment"
	"github.com/reel-rec/reel/internal/store"
)

// segmentCache cuts large recordings into snapshot segments once and keeps
// them on disk: <dir>/<hash of key>-<size>/index.json and <i>.json.gz. A
// cut runs in the background; the page shows its progress. Only bytes up
// to the recording's last complete line are cut.
type segmentCache struct {
	st       store.Store
	dir      string
	tempDir  bool // dir was made here and is removed at close
	maxBytes int
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// busy, if set, says the recorder is taking a burst of data: cuts
	// made ahead of a viewer (prepare) wait for it to end.
	busy func() bool

	mu       sync.Mutex
	cuts     map[string]*cut // by cache directory name
	deferred map[string]bool // keys whose prepare waits for the burst to end
}

// cut is one recording's cut, running or done.
type cut struct {
	dir   string
	size  int64 // bytes being cut
	read  atomic.Int64
	done  chan struct{}
	err   error // set before done closes
	index []byte
}

func newSegmentCache(st store.Store, dir string, maxBytes int, log *slog.Logger) *segmentCache {
	c := &segmentCache{st: st, dir: dir, maxBytes: maxBytes, log: log, cuts: map[string]*cut{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

func (c *segmentCache) close() {
	c.cancel()
	c.wg.Wait()
	if c.tempDir {
		os.RemoveAll(c.dir)
	}
}

func (c *segmentCache) root() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		d, err := os.MkdirTemp("", "reel-ui-segments-")
		if err != nil {
			return "", err
		}
		c.dir, c.tempDir = d, true
	}
	return c.dir, os.MkdirAll(c.dir, 0o700)
}

// get returns the cut of key, starting it if needed. The cut covers the
// recording as it is now, up to its last complete line.
func (c *segmentCache) get(ctx context.Context, key string) (*cut, error) {
	root, err := c.root()
	if err != nil {
		return nil, err
	}
	rd, err := c.st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	size, err := completeSize(rd)
	if err != nil {
		rd.Close()
		return nil, err
	}
	h := sha256.Sum256([]byte(key))
	name := hex.EncodeToString(h[:12]) + "-" + strconv.FormatInt(size, 10)
	c.mu.Lock()
	if ct, ok := c.cuts[name]; ok {
		c.mu.Unlock()
		rd.Close()
		return ct, nil
	}
	ct := &cut{dir: filepath.Join(root, name), size: size, done: make(chan struct{})}
	c.cuts[name] = ct
	c.mu.Unlock()
	if idx, err := os.ReadFile(filepath.Join(ct.dir, "index.json")); err == nil {
		// Cut by an earlier run: index.json is written last.
		rd.Close()
		ct.index = idx
		ct.read.Store(size)
		close(ct.done)
		return ct, nil
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer rd.Close()
		ct.err = c.run(ct, rd)
		if ct.err != nil {
			c.log.Error("ui: cutting a recording into segments", "key", key, "err", ct.err)
			os.RemoveAll(ct.dir)
			c.mu.Lock()
			delete(c.cuts, name) // try again next time
			c.mu.Unlock()
		}
		close(ct.done)
	}()
	return ct, nil
}

// prepare starts cutting key in the background, if it is not cut yet.
// While the recorder is busy (segmentCache.busy) the cut waits for the
// burst to end; a viewer who asks meanwhile has it cut at once.
func (c *segmentCache) prepare(key string) {
	if c.ctx.Err() != nil {
		return
	}
	if c.busy != nil && c.busy() {
		c.mu.Lock()
		if c.deferred == nil {
			c.deferred = map[string]bool{}
		}
		if c.deferred[key] {
			c.mu.Unlock()
			return
		}
		c.deferred[key] = true
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			err := busy.Wait(c.ctx, c.busy)
			c.mu.Lock()
			delete(c.deferred, key)
			c.mu.Unlock()
			if err == nil {
				c.prepareNow(key)
			}
		}()
		return
	}
	c.prepareNow(key)
}

func (c *segmentCache) prepareNow(key string) {
	if _, err := c.get(c.ctx, key); err != nil && c.ctx.Err() == nil {
		c.log.Warn("ui: preparing segments", "key", key, "err", err)
	}
}

func (c *segmentCache) run(ct *cut, rd io.ReaderAt) error {
	tmp := ct.dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := &progressReader{r: io.NewSectionReader(rd, 0, ct.size), n: &ct.read, ctx: c.ctx}
	var buf []byte
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
	idx, err := segment.Cut(src, segment.Options{MaxBytes: c.maxBytes, Span: 60}, func(s *segment.Segment) error {
		var err error
		if buf, err = s.AppendJSON(buf[:0]); err != nil {
			return err
		}
		zbuf.Reset()
		zw.Reset(&zbuf)
		zw.Write(buf)
		if err := zw.Close(); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, strconv.Itoa(s.Index)+".json.gz"), zbuf.Bytes(), 0o600)
	})
	if err != nil {
		return err
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "index.json"), b, 0o600); err != nil {
		return err
	}
	os.RemoveAll(ct.dir)
	if err := os.Rename(tmp, ct.dir); err != nil {
		return err
	}
	ct.index = b
	return nil
}

// progress is how far the cut is, 0 to 100.
func (ct *cut) progress() int {
	if ct.size == 0 {
		return 100
	}
	return int(ct.read.Load() * 100 / ct.size)
}

// ready reports whether the cut is done, and its error.
func (ct *cut) ready() (bool, error) {
	select {
	case <-ct.done:
		return true, ct.err
	default:
		return false, nil
	}
}

// segmentFile opens segment i's gzipped document.
func (ct *cut) segmentFile(i int) (*os.File, error) {
	return os.Open(filepath.Join(ct.dir, strconv.Itoa(i)+".json.gz"))
}

type progressReader struct {
	r   io.Reader
	n   *atomic.Int64
	ctx context.Context
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// completeSize is how many bytes of r end with its last newline: what may
// be served while a recording is still written (or was cut short), so the
// player never gets half a line.
func completeSize(r store.Reader) (int64, error) {
	size := r.Size()
	const block = 64 << 10
	buf := make([]byte, block)
	for end := size; end > 0; {
		start := max(end-block, 0)
		n, err := r.ReadAt(buf[:end-start], start)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-start) {
			return 0, fmt.Errorf("reading %d bytes at %d: %w", end-start, start, err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// indexWithMarkers adds markers (search hits) to an index document.
func indexWithMarkers(doc []byte, extra []segment.Marker) ([]byte, error) {
	if len(extra) == 0 {
		return doc, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fields); err != nil {
		return nil, err
	}
	var dur float64
	if err := json.Unmarshal(fields["duration"], &dur); err != nil {
		return nil, err
	}
	var old [][2]json.RawMessage
	if m, ok := fields["markers"]; ok {
		if err := json.Unmarshal(m, &old); err != nil {
			return nil, err
		}
	}
	var all []segment.Marker
	for _, m := range old {
		var mk segment.Marker
		if json.Unmarshal(m[0], &mk.Time) == nil && json.Unmarshal(m[1], &mk.Label) == nil {
			all = append(all, mk)
		}
	}
	for _, m := range extra {
		if m.Time >= 0 && m.Time <= dur {
			all = append(all, m)
		}
	}
	sortMarkers(all)
	b, err := json.Marshal(all)
	if err != nil {
		return nil, err
	}
	fields["markers"] = b
	return json.Marshal(fields)
}
