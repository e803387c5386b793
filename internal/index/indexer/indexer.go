// Package indexer keeps an index.Index in step with a store.Store: a row
// for every recording and event as it arrives and as it changes (live,
// growing, closed, recovered), and the screen text of every recording,
// extracted in the background by internal/screentext.
//
// It never blocks the recorder: Notify (the recorder's hook) only marks a
// key as changed; changes to one key coalesce, and workers read the
// recording back from the store, behind the recording path. After a
// restart it resumes each recording's text from its row's Indexed offset,
// and Start catches up with whatever the index is missing.
//
// Resuming: the terminal emulator's state is not saved, so a recording
// whose text was cut off is replayed from its start up to Indexed without
// storing anything (the chunks of that stretch are in the index already;
// extraction is deterministic, so they are the same chunks with the same
// sequence numbers), and stored from there on. A chunk stored twice
// replaces itself. Indexed equals the recording's size only once its text
// is complete; before, it is the start of the last line consumed.
package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/busy"
	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/screentext"
	"github.com/reel-rec/reel/internal/store"
)

// Defaults for an Indexer's zero fields.
const (
	DefaultIdleTick = 30 * time.Second
	// batchBytes is how much of a recording is read between two
	// AddChunks: the work a crash can cost.
	batchBytes = 8 << 20
	// maxHeader bounds a recording's first line.
	maxHeader = 1 << 20
	// maxPendingEvents bounds the events waiting to be indexed; past it
	// they are found again in the store by an event catch-up.
	maxPendingEvents = 4096
	// tickMargin keeps an idle tick's time behind any output still in
	// flight from the sender.
	tickMargin = 5 * time.Second
)

// Indexer keeps Index in step with Store. Set the fields, then Start.
type Indexer struct {
	Store store.Store
	Index index.Index
	// Log receives failures; nil discards.
	Log *slog.Logger
	// Workers is how many recordings are indexed at once; zero means 1.
	Workers int
	// Chunks shapes the text chunks (screentext defaults when zero).
	Chunks screentext.Options
	// IdleTick is how often a live recording that shows no new output has
	// its screen taken, so its last lines become searchable. Zero means
	// DefaultIdleTick.
	IdleTick time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Busy, if set, says whether the recorder is busy taking data. While
	// it is, text extraction (the indexer's CPU-heavy part) yields: each
	// batch is followed by a pause of BusyShare's complement, so that the
	// index takes at most that share of a worker's time and leaves the CPU
	// to the recordings, whose bytes must be stored and acknowledged; the
	// text catches up when the burst is over. Rows are updated at once.
	Busy func() bool
	// BusyShare is the share of its time a worker extracts text while
	// Busy. Zero means 0.1.
	BusyShare float64

	mu       sync.Mutex
	cond     *sync.Cond
	jobs     map[string]*job
	hot      []string // notified keys, first
	cold     []string // keys found by catch-up
	texts    map[string]*text
	events   []store.Event
	evBehind bool // events were dropped from the queue: catch up from the store
	busy     int  // workers working
	catching bool // catch-up running
	stopped  bool
	onDone   func(key string) // called as each key's work ends (rebuild)
	done     chan struct{}
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// job is the pending work on one key.
type job struct {
	queued  bool // in hot or cold
	running bool
	again   bool // changed while running
	tick    bool // an idle tick is due
	fresh   bool // drop the text and index it again (rebuild)
	rowOnly bool // only the row (rebuild, for a live recording)
}

// text is the state of one recording's text extraction.
type text struct {
	hdrLine   []byte
	header    *asciicast.Header
	hdrErr    error
	x         *screentext.Extractor
	offset    int64 // bytes consumed: always at a line end
	lastStart int64 // where the last line consumed starts
	seq       int
	replay    int64 // resume: chunks of events up to here are stored already
	replayB   int64 // the last line end at or before replay, once found
	replaying bool  // the chunks being emitted are stored already
	pending   []index.Chunk
	lastT     float64
	// lastFed is the wall time of the last output fed (UnixNano; 0 before
	// any). The idle ticker reads it while a worker may write it.
	lastFed atomic.Int64
	done    bool // text complete
	row     index.Recording
	hasRow  bool
}

func (ix *Indexer) init() {
	if ix.cond != nil {
		return
	}
	if ix.Log == nil {
		ix.Log = slog.New(slog.DiscardHandler)
	}
	if ix.Workers <= 0 {
		ix.Workers = 1
	}
	if ix.IdleTick <= 0 {
		ix.IdleTick = DefaultIdleTick
	}
	if ix.Now == nil {
		ix.Now = time.Now
	}
	ix.cond = sync.NewCond(&ix.mu)
	ix.jobs = map[string]*job{}
	ix.texts = map[string]*text{}
	ix.done = make(chan struct{})
}

// Start starts the workers and, when catchUp is set, a catch-up with the
// store in the background. It returns at once.
func (ix *Indexer) Start(ctx context.Context, catchUp bool) {
	ix.mu.Lock()
	ix.init()
	ctx, ix.cancel = context.WithCancel(ctx)
	ix.mu.Unlock()
	for range ix.Workers {
		ix.wg.Add(1)
		go func() {
			defer ix.wg.Done()
			ix.work(ctx)
		}()
	}
	ix.wg.Add(2)
	go func() {
		defer ix.wg.Done()
		ix.eventLoop(ctx)
	}()
	go func() {
		defer ix.wg.Done()
		ix.tickLoop(ctx)
	}()
	if catchUp {
		ix.mu.Lock()
		ix.catching = true
		ix.mu.Unlock()
		ix.wg.Add(1)
		go func() {
			defer ix.wg.Done()
			if err := ix.CatchUp(ctx); err != nil && ctx.Err() == nil {
				ix.Log.Error("index catch-up with the store failed; reel index rebuild repairs the index", "err", err)
			}
			ix.mu.Lock()
			ix.catching = false
			ix.cond.Broadcast()
			ix.mu.Unlock()
		}()
	}
}

// Close stops the Indexer and waits for its goroutines. Work not done is
// found again by the next start's catch-up.
func (ix *Indexer) Close() error {
	ix.mu.Lock()
	ix.init()
	if ix.stopped {
		ix.mu.Unlock()
		return nil
	}
	ix.stopped = true
	close(ix.done)
	if ix.cancel != nil {
		ix.cancel()
	}
	ix.cond.Broadcast()
	ix.mu.Unlock()
	ix.wg.Wait()
	return nil
}

// Notify is the recorder's hook (recorder.Server.Notify): it records that
// key changed and returns at once.
func (ix *Indexer) Notify(key string, c recorder.Change) {
	if c.What == recorder.EventStored {
		if c.Event != nil {
			ix.addEvent(*c.Event)
		}
		return
	}
	ix.enqueue(key, true, func(*job) {})
}

func (ix *Indexer) addEvent(e store.Event) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.init()
	if len(ix.events) >= maxPendingEvents {
		ix.evBehind = true
		return
	}
	ix.events = append(ix.events, e)
	ix.cond.Broadcast()
}

// enqueue marks key changed; set adjusts its job.
func (ix *Indexer) enqueue(key string, hot bool, set func(*job)) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.init()
	j := ix.jobs[key]
	if j == nil {
		j = &job{}
		ix.jobs[key] = j
	}
	set(j)
	switch {
	case j.running:
		j.again = true
	case !j.queued:
		j.queued = true
		if hot {
			ix.hot = append(ix.hot, key)
		} else {
			ix.cold = append(ix.cold, key)
		}
		ix.cond.Broadcast()
	}
}

// Wait blocks until no work is queued or running and the catch-up is
// over, or ctx ends. For tests and reel index rebuild.
func (ix *Indexer) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		ix.mu.Lock()
		ix.cond.Broadcast()
		ix.mu.Unlock()
	})
	defer stop()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.init()
	for len(ix.hot)+len(ix.cold)+ix.busy+len(ix.events) > 0 || ix.catching || ix.evBehind {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ix.cond.Wait()
	}
	return nil
}

// next takes the next key to work on, or "" when stopped.
func (ix *Indexer) next() (string, job) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for !ix.stopped && len(ix.hot)+len(ix.cold) == 0 {
		ix.cond.Wait()
	}
	if ix.stopped {
		return "", job{}
	}
	var key string
	if len(ix.hot) > 0 {
		key, ix.hot = ix.hot[0], ix.hot[1:]
	} else {
		key, ix.cold = ix.cold[0], ix.cold[1:]
	}
	j := ix.jobs[key]
	j.queued, j.running = false, true
	snap := *j
	j.tick, j.fresh, j.rowOnly = false, false, false
	ix.busy++
	return key, snap
}

// finish ends work on key; more is queued if it changed meanwhile.
func (ix *Indexer) finish(key string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.busy--
	if ix.onDone != nil {
		ix.onDone(key)
	}
	j := ix.jobs[key]
	j.running = false
	if j.again {
		j.again, j.queued = false, true
		ix.hot = append(ix.hot, key)
	} else if !j.queued {
		delete(ix.jobs, key)
	}
	ix.cond.Broadcast()
}

func (ix *Indexer) work(ctx context.Context) {
	for {
		key, j := ix.next()
		if key == "" {
			return
		}
		if err := ix.update(ctx, key, j); err != nil && ctx.Err() == nil {
			ix.Log.Error("indexing a recording failed", "key", key, "err", err)
		}
		ix.finish(key)
	}
}

// update brings key's row and text up to date with the store.
func (ix *Indexer) update(ctx context.Context, key string, j job) error {
	info, err := ix.Store.Stat(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		ix.dropText(key)
		return nil // gone (or not landed yet); catch-up and rebuild settle it
	}
	if err != nil {
		return err
	}
	if store.KindOf(key) == store.KindDesktop {
		return ix.updateDesktop(ctx, info)
	}
	ix.mu.Lock()
	tx := ix.texts[key]
	ix.mu.Unlock()
	if tx == nil || j.fresh {
		tx = &text{}
		row, err := ix.Index.GetRecording(ctx, key)
		switch {
		case errors.Is(err, index.ErrNotFound):
		case err != nil:
			return err
		default:
			tx.row, tx.hasRow = row, true
		}
		if j.fresh && tx.hasRow {
			if err := ix.Index.ResetText(ctx, key); err != nil {
				return err
			}
			tx.row.Indexed = 0
		}
		if tx.hasRow && tx.row.Indexed > info.Size {
			// The recording was cut shorter than what was indexed (a
			// recovered recording loses its partial last line).
			if err := ix.Index.ResetText(ctx, key); err != nil {
				return err
			}
			tx.row.Indexed = 0
		}
		if tx.hasRow && tx.row.Indexed == info.Size && info.Status != store.StatusLive && info.Size > 0 {
			tx.done = true
		} else if tx.hasRow {
			tx.replay = tx.row.Indexed
		}
	}
	if err := ix.readHeader(ctx, key, info, tx); err != nil {
		return err
	}
	// The row first, so that a recording is listed before its text is.
	if err := ix.putRow(ctx, info, tx); err != nil {
		return err
	}
	if j.rowOnly && tx.x == nil {
		return nil
	}
	if !tx.done {
		if err := ix.advance(ctx, key, info, tx, j.tick); err != nil {
			return err
		}
		if err := ix.putRow(ctx, info, tx); err != nil {
			return err
		}
	}
	ix.mu.Lock()
	if tx.done {
		delete(ix.texts, key)
	} else {
		ix.texts[key] = tx
	}
	ix.mu.Unlock()
	return nil
}

// updateDesktop writes the row of a desktop recording (reel vnc,
// docs/desktop-format.md): kind desktop, its user, desktop and size from
// the header, its end from its last complete record (desktop.Stat reads
// only the first and last few kilobytes). It has no screen text: once it
// is closed, its (empty) text is complete.
func (ix *Indexer) updateDesktop(ctx context.Context, info store.Info) error {
	r := index.Recording{
		Key: info.Key, Node: info.Node, Sender: info.Sender, Start: info.Start, Size: info.Size,
		Status: string(info.Status), Reason: info.Reason, Kind: index.KindDesktop,
	}
	rd, err := ix.Store.Open(ctx, info.Key)
	if err != nil {
		return err
	}
	h, dur, err := desktop.Stat(rd, rd.Size())
	rd.Close()
	if err == nil { // else no header yet (live), or not one: the row says what the store knows
		r.User, r.Tags, r.Width, r.Height = h.User, h.SrcNodeTags, h.Width, h.Height
		r.Title = strings.TrimSpace(h.Host + " " + h.DesktopName)
		if dur > 0 {
			r.End = info.Start.Add(dur)
		}
	}
	if err := ix.Index.PutRecording(ctx, r); err != nil {
		return err
	}
	if info.Status == store.StatusLive {
		return nil
	}
	return ix.Index.AddChunks(ctx, info.Key, info.Size, nil)
}

func (ix *Indexer) dropText(key string) {
	ix.mu.Lock()
	delete(ix.texts, key)
	ix.mu.Unlock()
}

// readHeader reads and parses the recording's first line once it is
// complete (or the recording is closed).
func (ix *Indexer) readHeader(ctx context.Context, key string, info store.Info, tx *text) error {
	if tx.header != nil || tx.hdrErr != nil || info.Size == 0 {
		return nil
	}
	rd, err := ix.Store.Open(ctx, key)
	if err != nil {
		return err
	}
	defer rd.Close()
	n := min(rd.Size(), maxHeader+1)
	buf := make([]byte, n)
	n2, err := rd.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return err
	}
	buf = buf[:n2]
	line, _, complete := bytes.Cut(buf, []byte("\n"))
	if !complete && info.Status == store.StatusLive && len(buf) <= maxHeader {
		return nil // not all there yet
	}
	dec := asciicast.NewDecoder(bytes.NewReader(buf))
	dec.MaxLine = maxHeader
	h, err := dec.Header()
	if err != nil {
		tx.hdrErr = err
		return nil
	}
	tx.header, tx.hdrLine = &h, append([]byte(nil), line...)
	if len(tx.hdrLine) == 0 {
		tx.hdrLine = buf
	}
	return nil
}

// putRow writes the recording's row when it differs from the last one
// written.
func (ix *Indexer) putRow(ctx context.Context, info store.Info, tx *text) error {
	r := Row(info, tx.header, tx.lastT)
	if tx.hasRow && tx.row.End.After(r.End) && r.End.IsZero() {
		r.End = tx.row.End
	}
	if tx.hasRow && sameRow(tx.row, r) {
		return nil
	}
	if err := ix.Index.PutRecording(ctx, r); err != nil {
		return err
	}
	r.Indexed = tx.row.Indexed
	tx.row, tx.hasRow = r, true
	return nil
}

func sameRow(a, b index.Recording) bool {
	a.Indexed, b.Indexed = 0, 0
	a.Updated, b.Updated = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// Row is a recording's index row from the store's Info, its header (nil
// when unknown) and the time of its last event (seconds; 0 when unknown).
func Row(info store.Info, h *asciicast.Header, lastT float64) index.Recording {
	r := index.Recording{
		Key: info.Key, Node: info.Node, Sender: info.Sender, Start: info.Start, Size: info.Size,
		Status: string(info.Status), Reason: info.Reason, Kind: index.KindSSH,
	}
	if h == nil {
		return r
	}
	if lastT == 0 && h.Duration > 0 {
		lastT = h.Duration
	}
	if lastT > 0 {
		r.End = info.Start.Add(time.Duration(lastT * float64(time.Second)))
	}
	r.User = h.SrcNodeUser
	if r.User == "" {
		r.User = h.SSHUser
	}
	r.Login, r.LocalUser, r.Tags = h.SSHUser, h.LocalUser, h.SrcNodeTags
	r.Command, r.Title, r.Width, r.Height = h.Command, h.Title, h.Width, h.Height
	if k := h.Kubernetes; k != nil {
		r.Kind = index.KindKubernetes
		r.Pod, r.Namespace, r.Container = k.PodName, k.Namespace, k.Container
	}
	return r
}

// advance feeds the recording's new complete lines to its extractor and
// stores the chunks, in batches; at the end of a closed recording it
// closes the extractor and marks the text complete.
func (ix *Indexer) advance(ctx context.Context, key string, info store.Info, tx *text, tick bool) error {
	final := info.Status != store.StatusLive
	if tx.header == nil {
		if final {
			// Nothing readable: the text is complete as it is (empty).
			tx.done = true
			return ix.Index.AddChunks(ctx, key, info.Size, nil)
		}
		return nil
	}
	if tx.x == nil {
		tx.offset = int64(len(tx.hdrLine)) + 1
		if tx.header.Version != 2 {
			// v1 and v3 (imports, never live) are read whole at the end.
			if !final {
				return nil
			}
			return ix.extractWhole(ctx, key, info, tx)
		}
		tx.x = screentext.New(*tx.header, ix.Chunks, func(c screentext.Chunk) {
			if tx.replaying {
				tx.seq++ // stored before the restart
				return
			}
			tx.pending = append(tx.pending, index.Chunk{Key: key, Seq: tx.seq, TStart: c.Start, TEnd: c.End, Text: c.Text, Times: c.Times})
			tx.seq++
		})
	}
	rd, err := ix.Store.Open(ctx, key)
	if err != nil {
		return err
	}
	defer rd.Close()
	size := min(rd.Size(), info.Size)
	if tx.replay > tx.offset && tx.replayB == 0 {
		// Resume: replay up to the last line end at or before Indexed.
		if tx.replayB, err = lineEnd(rd, tx.offset, min(tx.replay, size), min(tx.replay, size)); err != nil {
			return err
		}
	}
	for tx.offset < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		limit, bound := min(tx.offset+batchBytes, size), size
		tx.replaying = tx.offset < tx.replayB
		if tx.replaying {
			limit, bound = min(limit, tx.replayB), tx.replayB
		}
		end, err := lineEnd(rd, tx.offset, limit, bound)
		if err != nil {
			return err
		}
		if end <= tx.offset {
			break // no complete line yet
		}
		t0 := time.Now()
		if err := ix.feed(rd, tx, end); err != nil {
			return err
		}
		if !tx.replaying {
			if err := ix.store(ctx, key, tx, size, false); err != nil {
				return err
			}
		}
		if err := busy.Yield(ctx, ix.Busy, time.Since(t0), ix.BusyShare); err != nil {
			return err
		}
	}
	tx.replaying = false
	if final {
		if tx.offset < size {
			// A last line without a newline: an event if it is whole.
			if err := ix.feed(rd, tx, size); err != nil {
				return err
			}
		}
		tx.x.Close()
		tx.done = true
		return ix.store(ctx, key, tx, info.Size, true)
	}
	if lf := tx.lastFed.Load(); tick && lf != 0 {
		idle := ix.Now().Sub(time.Unix(0, lf)) - tickMargin
		if idle > 0 {
			tx.x.Tick(tx.lastT + idle.Seconds())
			if len(tx.pending) > 0 {
				return ix.store(ctx, key, tx, size, false)
			}
		}
	}
	return nil
}

// store writes the pending chunks with the offset reached. Until the text
// is complete, Indexed is the start of the last line consumed, not its
// end: it stays below the size even when a recovered recording is cut
// right after that line, so that Indexed == Size always means complete.
// A resume feeds that line again; its chunks replace themselves.
func (ix *Indexer) store(ctx context.Context, key string, tx *text, size int64, complete bool) error {
	indexed := tx.lastStart
	if complete {
		indexed = size
	}
	if len(tx.pending) == 0 && indexed == tx.row.Indexed {
		return nil
	}
	if err := ix.Index.AddChunks(ctx, key, indexed, tx.pending); err != nil {
		return err
	}
	tx.pending = tx.pending[:0]
	tx.row.Indexed = indexed
	return nil
}

// feed decodes the events in [tx.offset, end) (complete lines) into the
// extractor.
func (ix *Indexer) feed(rd io.ReaderAt, tx *text, end int64) error {
	r := io.MultiReader(bytes.NewReader(tx.hdrLine), strings.NewReader("\n"), io.NewSectionReader(rd, tx.offset, end-tx.offset))
	dec := asciicast.NewDecoder(r)
	if _, err := dec.Header(); err != nil {
		return err
	}
	var last error
	for {
		ev, err := dec.NextRaw()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if err == last {
				return err // a read error repeats
			}
			last = err
			continue // a malformed line is skipped
		}
		last = nil
		switch string(ev.Code) {
		case asciicast.Output:
			tx.x.Output(ev.Time, ev.Data)
			tx.lastFed.Store(ix.Now().UnixNano())
		case asciicast.Resize:
			tx.x.Event(asciicast.Event{Time: ev.Time, Code: asciicast.Resize, Data: string(ev.Data)})
		}
		if ev.Time > tx.lastT {
			tx.lastT = ev.Time
		}
	}
	lastStart, err := lineEnd(rd, tx.offset, end-1, end-1)
	if err != nil {
		return err
	}
	tx.offset, tx.lastStart = end, lastStart
	return nil
}

// extractWhole indexes a closed v1 or v3 recording in one pass.
func (ix *Indexer) extractWhole(ctx context.Context, key string, info store.Info, tx *text) error {
	rd, err := ix.Store.Open(ctx, key)
	if err != nil {
		return err
	}
	defer rd.Close()
	var chunks []index.Chunk
	seq := 0
	err = screentext.Extract(io.NewSectionReader(rd, 0, rd.Size()), ix.Chunks, func(c screentext.Chunk) {
		chunks = append(chunks, index.Chunk{Key: key, Seq: seq, TStart: c.Start, TEnd: c.End, Text: c.Text, Times: c.Times})
		seq++
		tx.lastT = max(tx.lastT, c.End)
	})
	if err != nil {
		ix.Log.Warn("screen text of a recording cut short", "key", key, "err", err)
	}
	tx.done = true
	return ix.Index.AddChunks(ctx, key, info.Size, chunks)
}

// lineEnd returns the offset just after the last newline in [from, limit),
// or, when there is none, after the first newline in [limit, size); from
// when there is no newline at all.
func lineEnd(r io.ReaderAt, from, limit, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := limit; end > from; {
		start := max(from, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	for off := limit; off < size; {
		b := buf[:min(int64(len(buf)), size-off)]
		if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
		off += int64(len(b))
	}
	return from, nil
}

// tickLoop asks, now and then, for the screens of idle live recordings.
func (ix *Indexer) tickLoop(ctx context.Context) {
	t := time.NewTicker(ix.IdleTick / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := ix.Now()
		var due []string
		ix.mu.Lock()
		for key, tx := range ix.texts {
			if lf := tx.lastFed.Load(); lf != 0 && now.Sub(time.Unix(0, lf)) >= ix.IdleTick {
				due = append(due, key)
			}
		}
		ix.mu.Unlock()
		for _, key := range due {
			ix.enqueue(key, true, func(j *job) { j.tick = true })
		}
	}
}

// CatchUp queues every recording in the store that the index lacks or
// holds out of date, and indexes events the index lacks. It returns once
// everything is queued (and the events indexed); the workers do the rest.
func (ix *Indexer) CatchUp(ctx context.Context) error {
	nodes := map[string]bool{}
	var errs []error
	n := 0
	for info, err := range ix.Store.List(ctx, store.Filter{}) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		nodes[info.Node] = true
		row, err := ix.Index.GetRecording(ctx, info.Key)
		if err == nil && row.Status == string(info.Status) && row.Size == info.Size && row.Indexed == info.Size && info.Status != store.StatusLive {
			continue
		}
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			return err
		}
		n++
		ix.enqueue(info.Key, false, func(*job) {})
	}
	if n > 0 {
		ix.Log.Info("index catching up with the store", "recordings", n)
	}
	if err := ix.catchUpEvents(ctx, nodes, true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// catchUpEvents indexes each node's events newer than the newest the index
// has for it.
func (ix *Indexer) catchUpEvents(ctx context.Context, nodes map[string]bool, all bool) error {
	var errs []error
	for node := range nodes {
		var since time.Time
		rows, _, err := ix.Index.ListEvents(ctx, index.Filter{Node: node}, index.EventFilter{}, index.Page{Limit: 1})
		if err != nil {
			return err
		}
		if len(rows) > 0 && !all {
			since = rows[0].At
		}
		for e, err := range ix.Store.ListEvents(ctx, node, since, time.Time{}) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			if err := ix.Index.PutEvent(ctx, EventRow(e)); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}

// eventLoop indexes notified events.
func (ix *Indexer) eventLoop(ctx context.Context) {
	for {
		ix.mu.Lock()
		for !ix.stopped && len(ix.events) == 0 && !ix.evBehind {
			ix.cond.Wait()
		}
		if ix.stopped {
			ix.mu.Unlock()
			return
		}
		evs, behind := ix.events, ix.evBehind
		ix.events, ix.evBehind = nil, false
		ix.busy++
		ix.mu.Unlock()
		for _, e := range evs {
			if err := ix.Index.PutEvent(ctx, EventRow(e)); err != nil && ctx.Err() == nil {
				ix.Log.Error("indexing an event failed", "id", e.ID, "err", err)
			}
		}
		if behind {
			nodes := map[string]bool{}
			for _, e := range evs {
				nodes[e.Node] = true
			}
			for info, err := range ix.Store.List(ctx, store.Filter{}) {
				if err == nil {
					nodes[info.Node] = true
				}
			}
			if err := ix.catchUpEvents(ctx, nodes, false); err != nil && ctx.Err() == nil {
				ix.Log.Error("indexing events failed", "err", err)
			}
		}
		ix.mu.Lock()
		ix.busy--
		ix.cond.Broadcast()
		ix.mu.Unlock()
	}
}

// EventRow is an event's index row: the fields of a Kubernetes API
// request event (Tailscale's sessionrecording.Event) that filters use.
func EventRow(e store.Event) index.Event {
	var v struct {
		Request struct {
			Path string `json:"path"`
		} `json:"request"`
		Kubernetes struct {
			Path, Verb, Namespace, Resource, Subresource, Name string
		} `json:"kubernetes"`
		Source struct {
			Node     string `json:"node"`
			NodeUser string `json:"nodeUser"`
		} `json:"source"`
		Code int `json:"code"`
	}
	json.Unmarshal(e.Data, &v) // a field that is not there stays empty
	path := v.Kubernetes.Path
	if path == "" {
		path = v.Request.Path
	}
	user := v.Source.NodeUser
	if user == "" {
		user = v.Source.Node
	}
	return index.Event{
		ID: e.ID, Node: e.Node, At: e.At, User: user,
		Verb: v.Kubernetes.Verb, Resource: v.Kubernetes.Resource, Subresource: v.Kubernetes.Subresource,
		Namespace: v.Kubernetes.Namespace, Name: v.Kubernetes.Name, Path: path, Code: v.Code, Data: e.Data,
	}
}

// String describes the Indexer's queue, for logs.
func (ix *Indexer) String() string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return fmt.Sprintf("indexer: %d hot, %d cold, %d busy, %d live texts", len(ix.hot), len(ix.cold), ix.busy, len(ix.texts))
}

// Progress is how far a Rebuild is.
type Progress struct {
	Done, Total           int   // recordings
	DoneBytes, TotalBytes int64 // their sizes
}

// Rebuild recreates the index from the store, in place (no second file
// and no swap: a recorder that has the index open keeps writing to it).
// Every recording's row is written again and, unless it is live, its text
// dropped and extracted again; a live recording's text is left to the
// recorder that records it. Rows of recordings the store no longer has are
// deleted, except live ones (another recorder sharing the index may be
// writing them before they land). Events are indexed again. Start must
// have been called (without catch-up). progress, if not nil, is called now
// and then.
func (ix *Indexer) Rebuild(ctx context.Context, progress func(Progress)) error {
	var infos []store.Info
	var errs []error
	for info, err := range ix.Store.List(ctx, store.Filter{}) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		infos = append(infos, info)
	}
	var mu sync.Mutex
	p := Progress{Total: len(infos)}
	sizes := make(map[string]int64, len(infos))
	present := make(map[string]bool, len(infos))
	nodes := map[string]bool{}
	for _, info := range infos {
		sizes[info.Key] = info.Size
		present[info.Key] = true
		p.TotalBytes += info.Size
		nodes[info.Node] = true
	}
	ix.mu.Lock()
	ix.init()
	ix.onDone = func(key string) {
		mu.Lock()
		defer mu.Unlock()
		if sz, ok := sizes[key]; ok {
			delete(sizes, key)
			p.Done++
			p.DoneBytes += sz
		}
	}
	ix.mu.Unlock()
	defer func() {
		ix.mu.Lock()
		ix.onDone = nil
		ix.mu.Unlock()
	}()
	for _, info := range infos {
		live := info.Status == store.StatusLive
		ix.enqueue(info.Key, false, func(j *job) { j.fresh, j.rowOnly = !live, live })
	}
	report := func() {
		if progress != nil {
			mu.Lock()
			q := p
			mu.Unlock()
			progress(q)
		}
	}
	waitDone := make(chan error, 1)
	go func() { waitDone <- ix.Wait(ctx) }()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	report()
wait:
	for {
		select {
		case err := <-waitDone:
			if err != nil {
				return err
			}
			break wait
		case <-t.C:
			report()
		}
	}
	report()

	// Rows the store no longer has.
	after := ""
	for {
		rows, next, err := ix.Index.List(ctx, index.Filter{}, index.Page{Limit: index.MaxLimit, After: after, Sort: index.SortStartAsc})
		if err != nil {
			return err
		}
		for _, r := range rows {
			if present[r.Key] || r.Status == string(store.StatusLive) {
				continue
			}
			if _, err := ix.Store.Stat(ctx, r.Key); errors.Is(err, store.ErrNotFound) {
				if err := ix.Index.DeleteRecording(ctx, r.Key); err != nil && !errors.Is(err, index.ErrNotFound) {
					return err
				}
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if err := ix.catchUpEvents(ctx, nodes, true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
