package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// Backend is the store Store wraps: a store.Store that keeps files.
type Backend interface {
	store.Store
	store.Files
}

// batchSyncer is what the recorder's committer uses to sync many
// recordings at once (recorder.BatchSyncer).
type batchSyncer interface {
	SyncAll([]store.Writer) []error
}

// Options configure a Store.
type Options struct {
	// Dir is the evidence directory: live chains, the manifest's journal
	// and (unless Signer is given) the key. Required.
	Dir string
	// Signer signs; nil loads or creates the key in Dir.
	Signer Signer
	// CheckpointEvery is how often pending manifest entries are written to
	// the store as a signed segment (and the head rewritten). Zero means
	// DefaultCheckpointEvery.
	CheckpointEvery time.Duration
	// Heartbeat is how often the manifest's head is rewritten when
	// nothing happened, so that its time shows the recorder was alive.
	// Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// Log receives what sealing does on its own. Nil discards.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults for Options.
const (
	DefaultCheckpointEvery = time.Minute
	DefaultHeartbeat       = time.Hour
)

// Store wraps the recorder's store: every recording it creates gets a
// hash chain extended at each sync and a seal at close, and every seal an
// entry in the manifest. Reading goes straight to the wrapped store. Use
// it as the recorder's store (it passes batch syncs on, so the recorder's
// group commit still covers many recordings in one round).
type Store struct {
	Backend
	sg   Signer
	dir  string
	live string // Dir/live: the chains of live recordings
	log  *slog.Logger
	now  func() time.Time
	man  *manifest
	lock *os.File

	heartbeat time.Duration
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open wraps b. It takes the evidence directory's lock (one process at a
// time), loads the manifest's journal and publishes the public key in the
// store. Call Recover (as for any store) before the first Create: it seals
// what a crash left unsealed.
func Open(b Backend, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("evidence: no directory")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	s := &Store{Backend: b, dir: opts.Dir, live: filepath.Join(opts.Dir, "live"), log: opts.Log, now: opts.Now, heartbeat: opts.Heartbeat}
	if err := durable.MkdirAll(s.live); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	lock, err := durable.Lock(filepath.Join(opts.Dir, "lock"), opts.Dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	s.sg = opts.Signer
	if s.sg == nil {
		k, created, err := LoadOrCreateKey(opts.Dir)
		if err != nil {
			lock.Close()
			return nil, err
		}
		if created {
			s.log.Info("created the recorder's signing key", "key_id", k.KeyID(), "file", KeyPath(opts.Dir))
		}
		s.sg = k
	}
	if s.man, err = openManifest(opts.Dir, b, s.sg, opts.Now); err != nil {
		lock.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := publishKey(ctx, b, s.sg); err != nil {
		s.log.Warn("cannot publish the recorder's public key in the store", "err", err)
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.checkpoints(opts.CheckpointEvery)
	return s, nil
}

// Signer returns the key that signs.
func (s *Store) Signer() Signer { return s.sg }

// checkpoints flushes the manifest every interval.
func (s *Store) checkpoints(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		if err := s.man.flush(ctx, s.heartbeat); err != nil {
			s.log.Error("writing the evidence manifest", "err", err)
		}
		cancel()
	}
}

// Flush writes pending manifest entries to the store now.
func (s *Store) Flush(ctx context.Context) error { return s.man.flush(ctx, 0) }

// Close writes the manifest's pending entries, then closes the wrapped
// store. Writers must be closed first.
func (s *Store) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		errs = append(errs, s.man.flush(ctx, s.heartbeat), s.man.close())
		errs = append(errs, s.Backend.Close(), s.lock.Close())
	})
	return errors.Join(errs...)
}

// CheckSpace passes the wrapped store's free-space check on
// (recorder.SpaceChecker).
func (s *Store) CheckSpace() error {
	if sc, ok := s.Backend.(interface{ CheckSpace() error }); ok {
		return sc.CheckSpace()
	}
	return nil
}

// livePath is where key's live chain is kept.
func (s *Store) livePath(key string) string {
	return filepath.Join(s.live, strings.ReplaceAll(key, "/", "+")+ChainSuffix)
}

func keyOfLive(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, ChainSuffix)
	if !ok {
		return "", false
	}
	key := strings.Replace(base, "+", "/", 1)
	_, _, err := store.ParseKey(key)
	return key, err == nil
}

// Create implements store.Store: the recording gets a live chain.
func (s *Store) Create(ctx context.Context, sender string, start time.Time) (store.Writer, error) {
	w, err := s.Backend.Create(ctx, sender, start)
	if err != nil {
		return nil, err
	}
	return s.wrap(w, sender)
}

// CreateKind implements store.KindCreator when the wrapped store does: a
// recording of another kind (a desktop's) is sealed like a terminal one,
// its bytes hashed as they are.
func (s *Store) CreateKind(ctx context.Context, sender string, start time.Time, kind store.Kind) (store.Writer, error) {
	kc, ok := s.Backend.(store.KindCreator)
	if !ok {
		return nil, fmt.Errorf("evidence: the store %T keeps only terminal recordings", s.Backend)
	}
	w, err := kc.CreateKind(ctx, sender, start, kind)
	if err != nil {
		return nil, err
	}
	return s.wrap(w, sender)
}

func (s *Store) wrap(w store.Writer, sender string) (store.Writer, error) {
	key := w.Key()
	f, err := os.OpenFile(s.livePath(key), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(chainHeader(key))
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		w.Close(store.StatusFailed, "cannot start the recording's hash chain: "+err.Error())
		return nil, fmt.Errorf("evidence: live chain of %s: %w", key, err)
	}
	ew := &writer{s: s, w: w, key: key, sender: sender, f: f, end: int64(len(chainHeader(key))), ch: NewChain()}
	ew.ch.OnBlock = func(i int64, d Hash) { ew.lines = appendBlockLine(ew.lines, i, d) }
	return ew, nil
}

// writer is a recording being written: the wrapped writer, and its chain.
type writer struct {
	s      *Store
	w      store.Writer
	key    string
	sender string

	mu    sync.Mutex // guards ch and lines: Write and Sync run concurrently
	ch    *Chain
	lines []byte // block lines not yet in the live chain file

	syncMu    sync.Mutex // one sync or close at a time; guards the rest
	f         *os.File   // the live chain file
	end       int64      // its length
	dirSynced bool
	acked     int64 // bytes covered by the last sync record written
	ackedHead Hash
	closed    bool
	err       error // sticky
}

func (w *writer) Key() string { return w.key }

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.mu.Lock()
	w.ch.Write(p[:n])
	w.mu.Unlock()
	return n, err
}

// round is a sync prepared: what the chain covered when it began.
type round struct {
	size  int64
	head  Hash
	lines []byte
}

// prepare snapshots the chain: every byte whose Write returned is covered,
// as Sync promises for the wrapped writer.
func (w *writer) prepare() round {
	w.mu.Lock()
	defer w.mu.Unlock()
	head, _ := w.ch.Head()
	r := round{size: w.ch.Size(), head: head, lines: w.lines}
	w.lines = nil
	return r
}

// unprepare puts back a round whose sync failed.
func (w *writer) unprepare(r round) {
	w.mu.Lock()
	w.lines = append(r.lines, w.lines...)
	w.mu.Unlock()
}

// staged is a round whose records are in the live chain file, not yet
// known durable, nor its bytes: what to put back if the bytes fail.
type staged struct {
	r         round
	wrote     bool  // records were appended
	end       int64 // the chain file's length before them
	acked     int64 // and the writer's figures
	ackedHead Hash
}

// stage appends the round's block lines and a signed sync record to the
// live chain file, without syncing it. They cover bytes whose Write
// returned; the caller then makes the bytes and the chain durable
// together, before the round is acknowledged, and unstages the round if
// the bytes could not be synced.
func (w *writer) stage(r round) (staged, error) {
	st := staged{r: r, end: w.end, acked: w.acked, ackedHead: w.ackedHead}
	if w.err != nil {
		return st, w.err
	}
	if r.size == w.acked && len(r.lines) == 0 {
		return st, nil
	}
	line, err := syncLine(w.key, r.size, r.head, w.s.now(), w.s.sg)
	if err != nil {
		w.err = err
		return st, err
	}
	b := append(r.lines, line...)
	if _, err := w.f.Write(b); err != nil {
		w.err = fmt.Errorf("evidence: live chain of %s: %w", w.key, err)
		return st, w.err
	}
	st.wrote = true
	w.end += int64(len(b))
	w.acked, w.ackedHead = r.size, r.head
	return st, nil
}

// unstage takes back a staged round whose bytes failed to sync: the live
// chain file is cut back to its length before the round and synced, so
// that no record claims bytes that may be lost, and the round's block
// lines wait for the next round.
func (w *writer) unstage(st staged) {
	w.unprepare(st.r)
	w.acked, w.ackedHead = st.acked, st.ackedHead
	if !st.wrote {
		return
	}
	err := w.f.Truncate(st.end)
	if err == nil {
		_, err = w.f.Seek(st.end, io.SeekStart)
	}
	if err == nil {
		err = w.f.Sync()
	}
	w.end = st.end
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("evidence: take back a sync record from the live chain of %s: %w", w.key, err)
	}
}

// syncChain makes the live chain file durable, and its name the first
// time.
func (w *writer) syncChain() error {
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("evidence: sync live chain of %s: %w", w.key, err)
	}
	if !w.dirSynced {
		if err := durable.SyncDir(w.s.live); err != nil {
			return err
		}
		w.dirSynced = true
	}
	return nil
}

// settle ends a staged round once its bytes' sync (dataErr) and its
// chain's (chainErr) are done: the round is acknowledged only if both
// succeeded.
func (w *writer) settle(st staged, dataErr, chainErr error) error {
	if dataErr != nil {
		w.unstage(st)
		return dataErr
	}
	if chainErr != nil {
		w.acked, w.ackedHead = st.acked, st.ackedHead
		if w.err == nil {
			w.err = chainErr
		}
		return chainErr
	}
	return nil
}

// record appends the round's records to the live chain file (at close:
// not synced, the seal follows).
func (w *writer) record(r round) error {
	_, err := w.stage(r)
	return err
}

// Sync syncs the recording's bytes and its live chain together: the
// chain's new records are written first, then both files are synced at
// once, so that the round costs one commit of the file system's journal,
// not two in a row.
func (w *writer) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.closed {
		return fmt.Errorf("evidence: sync %s: already closed", w.key)
	}
	if w.err != nil {
		return w.err
	}
	r := w.prepare()
	st, err := w.stage(r)
	if err != nil {
		return err
	}
	var dataErr, chainErr error
	var wg sync.WaitGroup
	wg.Go(func() { dataErr = w.w.Sync() })
	if st.wrote {
		chainErr = w.syncChain()
	}
	wg.Wait()
	return w.settle(st, dataErr, chainErr)
}

// SyncAll syncs many recordings at once. Their live chains get their sync
// records first; then the wrapped store's batch sync (one syncfs for
// fsstore) makes their bytes durable while one syncfs of the evidence
// directory's file system makes the chains durable (on the same file
// system the two join one journal commit). A recording whose bytes failed
// to sync has its records taken back. It returns one error per writer.
func (s *Store) SyncAll(ws []store.Writer) []error {
	errs := make([]error, len(ws))
	inner := make([]store.Writer, 0, len(ws))
	var mine []*writer
	var idx []int
	for i, w := range ws {
		ew, ok := w.(*writer)
		if !ok || ew.s != s {
			errs[i] = w.Sync()
			continue
		}
		ew.syncMu.Lock()
		defer ew.syncMu.Unlock()
		if ew.closed || ew.err != nil {
			errs[i] = ew.err
			if ew.closed {
				errs[i] = fmt.Errorf("evidence: sync %s: already closed", ew.key)
			}
			continue
		}
		mine, idx = append(mine, ew), append(idx, i)
		inner = append(inner, ew.w)
	}
	if len(mine) == 0 {
		return errs
	}
	stages := make([]staged, len(mine))
	stageErrs := make([]error, len(mine))
	var wrote []int
	for j, ew := range mine {
		stages[j], stageErrs[j] = ew.stage(ew.prepare())
		if stageErrs[j] == nil && stages[j].wrote {
			wrote = append(wrote, j)
		}
	}
	chainErrs := make([]error, len(mine))
	var wg sync.WaitGroup
	wg.Go(func() { s.syncChains(mine, wrote, chainErrs) })
	var innerErrs []error
	if bs, ok := s.Backend.(batchSyncer); ok {
		innerErrs = bs.SyncAll(inner)
	} else {
		innerErrs = make([]error, len(inner))
		parallel(len(inner), func(j int) { innerErrs[j] = inner[j].Sync() })
	}
	wg.Wait()
	for j, ew := range mine {
		if stageErrs[j] != nil {
			errs[idx[j]] = stageErrs[j]
			continue
		}
		errs[idx[j]] = ew.settle(stages[j], innerErrs[j], chainErrs[j])
	}
	return errs
}

// syncChains makes the live chains mine[j], j in wrote, durable: with one
// syncfs of the file system holding the evidence directory when there
// are several (and syncfs reports write-back errors), else one fsync
// each. If syncfs fails (it reports any file's write-back error, other
// programs' too), each chain is synced on its own, so that only the
// recordings whose own chain was lost fail.
func (s *Store) syncChains(mine []*writer, wrote []int, errs []error) {
	if len(wrote) == 0 {
		return
	}
	if len(wrote) > 1 && durable.SyncFSReportsErrors() {
		err := syncFS(s.live)
		if err == nil {
			for _, j := range wrote {
				mine[j].dirSynced = true // syncfs covers directories as well
			}
			return
		}
		s.log.Warn("syncfs failed: syncing each live chain on its own to find which was lost", "dir", s.live, "err", err)
	}
	parallel(len(wrote), func(k int) {
		j := wrote[k]
		errs[j] = mine[j].syncChain()
	})
}

// syncFS syncs the file system holding dir (syncfs(2)); a variable so
// that tests can make it fail.
var syncFS = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// parallel runs f(0..n-1), eight at a time: the file system batches
// concurrent commits.
func parallel(n int, f func(int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// Close closes the recording in the wrapped store, then seals it. A seal
// that cannot be made is logged, not returned (the recording itself is
// stored): its live chain stays, and the next start seals it.
func (w *writer) Close(status store.Status, reason string) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.closed {
		return fmt.Errorf("evidence: close %s: already closed", w.key)
	}
	w.closed = true
	r := w.prepare()
	err := w.w.Close(status, reason)
	acked, ackedHead := w.acked, w.ackedHead // by the last sync round
	if rerr := w.record(r); rerr != nil {
		w.s.log.Error("recording not sealed: its chain cannot be written; it is sealed at the next start", "key", w.key, "err", rerr)
		w.f.Close()
		return err
	}
	_, last := w.ch.Head()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if serr := w.s.sealClosed(ctx, w, r, last, acked, ackedHead); serr != nil {
		w.s.log.Error("recording not sealed; it is sealed at the next start", "key", w.key, "err", serr)
	}
	w.f.Close()
	return err
}

// sealClosed seals a recording its writer just closed: the chain is the
// live chain file as written.
func (s *Store) sealClosed(ctx context.Context, w *writer, r round, last Hash, acked int64, ackedHead Hash) error {
	chain, err := os.ReadFile(s.livePath(w.key))
	if err != nil {
		return err
	}
	info, err := s.Backend.Stat(ctx, w.key)
	if err != nil {
		return err
	}
	d := SealData{
		Key: w.key, Sender: w.sender, Size: r.size, File: min(info.Size, r.size),
		Head: hexHash(r.head), Last: hexHash(last), Status: info.Status, Reason: info.Reason,
	}
	if acked > 0 {
		d.Acked, d.AckedHead = acked, hexHash(ackedHead)
	}
	return s.seal(ctx, d, chain)
}

// seal writes the chain and the seal beside the recording and adds the
// seal to the manifest, then drops the live chain.
func (s *Store) seal(ctx context.Context, d SealData, chain []byte) error {
	if err := s.Backend.PutFile(ctx, d.Key+ChainSuffix, chain); err != nil {
		return err
	}
	_, err := s.man.add(func(seq int64) (Entry, error) {
		d.Seq, d.Sealed = seq, s.now().UTC()
		b, err := EncodeSeal(d, s.sg)
		if err != nil {
			return Entry{}, err
		}
		if err := s.Backend.PutFile(ctx, d.Key+SealSuffix, b); err != nil {
			return Entry{}, err
		}
		sl, _ := ParseSeal(b)
		return Entry{Op: OpSeal, Key: d.Key, Seal: hexHash(sl.Hash()), Size: d.Size, Status: d.Status}, nil
	})
	if err != nil {
		return err
	}
	return durable.Remove(s.livePath(d.Key))
}

// Recover implements store.Store: the wrapped store closes out what a
// crash left live, then every recording that still has a live chain (left
// live, or closed but not sealed) is sealed from what is stored.
func (s *Store) Recover(ctx context.Context) ([]store.Info, error) {
	infos, rerr := s.Backend.Recover(ctx)
	ents, err := os.ReadDir(s.live)
	if err != nil {
		return infos, errors.Join(rerr, fmt.Errorf("evidence: %w", err))
	}
	var errs []error
	for _, e := range ents {
		key, ok := keyOfLive(e.Name())
		if !ok {
			continue
		}
		if err := s.recoverOne(ctx, key); err != nil {
			errs = append(errs, fmt.Errorf("evidence: seal %s after a restart: %w", key, err))
		}
	}
	return infos, errors.Join(rerr, errors.Join(errs...))
}

func (s *Store) recoverOne(ctx context.Context, key string) error {
	p := s.livePath(key)
	info, err := s.Backend.Stat(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		// Created and never written to disk: nothing to seal.
		return durable.Remove(p)
	}
	if err != nil {
		return err
	}
	if info.Status == store.StatusLive {
		return fmt.Errorf("still live after recovery")
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var syncs []SyncRecord
	if cf, err := ParseChain(raw); err != nil {
		s.log.Error("live chain unreadable; sealing what is stored, without its acknowledgements", "key", key, "err", err)
	} else {
		syncs = cf.Syncs
	}
	st, err := openStream(ctx, s.Backend, key)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := hashStream(st, syncs, nil)
	if err != nil {
		return err
	}
	d := SealData{
		Key: key, Sender: info.Sender, Size: res.size, File: info.Size,
		Head: hexHash(res.head), Last: hexHash(res.last),
		Status: info.Status, Reason: info.Reason, Recovered: true,
	}
	// The acknowledged bytes are those of the last sync record whose head
	// the stored bytes still have. A record is written before its round's
	// bytes are synced (the two are synced together, then acknowledged),
	// so a crash can leave the last records beyond the stored bytes: those
	// bytes were never acknowledged.
	good := syncs[:0:0]
	for i, sr := range syncs {
		switch {
		case res.syncOK[i]:
			good = append(good, sr)
		case sr.Size > res.size:
			s.log.Warn("a sync record got ahead of the stored bytes in a crash: those bytes were never acknowledged; dropping the record", "key", key, "record", sr.Size, "stored", res.size)
		default:
			s.log.Error("stored bytes differ from what was acknowledged: the recording was changed before it was sealed", "key", key, "acked", sr.Size)
		}
	}
	if n := len(good); n > 0 {
		d.Acked, d.AckedHead = good[n-1].Size, hexHash(good[n-1].Head)
	}
	s.log.Warn("sealed a recording after a restart", "key", key, "status", info.Status, "bytes", res.size, "acked", d.Acked)
	return s.seal(ctx, d, encodeChain(key, res.blocks, good))
}

// encodeChain writes a chain file: the header, then block and sync lines
// in the order of the bytes they cover.
func encodeChain(key string, blocks []Hash, syncs []SyncRecord) []byte {
	b := chainHeader(key)
	i := 0
	for _, sr := range syncs {
		for ; int64(i+1)*BlockSize <= sr.Size && i < len(blocks); i++ {
			b = appendBlockLine(b, int64(i), blocks[i])
		}
		b = fmt.Appendf(b, "s %d %s %d %s %s\n", sr.Size, hexHash(sr.Head), sr.Time.UnixNano(), sr.KeyID, b64.EncodeToString(sr.Sig))
	}
	for ; i < len(blocks); i++ {
		b = appendBlockLine(b, int64(i), blocks[i])
	}
	return b
}

// stream is a recording's bytes as received: the recording file, then its
// tail (when the store cut it).
type stream struct {
	io.Reader
	file, tail int64 // sizes
	closers    []io.Closer
}

func (st *stream) Close() error {
	var errs []error
	for _, c := range st.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// openStream opens key's stream in st.
func openStream(ctx context.Context, st Backend, key string) (*stream, error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	s := &stream{file: r.Size(), closers: []io.Closer{r}}
	readers := []io.Reader{io.LimitReader(r, r.Size())}
	t, err := st.OpenFile(ctx, store.TailKey(key))
	switch {
	case err == nil:
		s.tail = t.Size()
		s.closers = append(s.closers, t)
		readers = append(readers, io.LimitReader(t, t.Size()))
	case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, fs.ErrNotExist):
		r.Close()
		return nil, err
	}
	s.Reader = io.MultiReader(readers...)
	return s, nil
}

// hashed is what hashStream found.
type hashed struct {
	size       int64
	head, last Hash
	blocks     []Hash // kept when wanted
	syncOK     []bool // per sync record: head at its size matches
	// atWant: the head when the stream reached *want (if it did).
	atWant      Hash
	reachedWant bool
}

// hashStream hashes r through a Chain, keeping its block hashes, checking
// the heads of syncs at their sizes, and noting the head at *want.
func hashStream(r io.Reader, syncs []SyncRecord, want *int64) (hashed, error) {
	var res hashed
	res.syncOK = make([]bool, len(syncs))
	ch := NewChain()
	ch.OnBlock = func(_ int64, d Hash) { res.blocks = append(res.blocks, d) }
	// Points at which to take the head: sync record sizes and want.
	var stops []int64
	for _, sr := range syncs {
		stops = append(stops, sr.Size)
	}
	if want != nil {
		stops = append(stops, *want)
	}
	check := func() {
		n := ch.Size()
		var h Hash
		taken := false
		for i, sr := range syncs {
			if sr.Size == n {
				if !taken {
					h, _ = ch.Head()
					taken = true
				}
				res.syncOK[i] = h == sr.Head
			}
		}
		if want != nil && *want == n {
			if !taken {
				h, _ = ch.Head()
			}
			res.atWant, res.reachedWant = h, true
		}
	}
	check()
	buf := make([]byte, 256<<10)
	for {
		// Read no further than the next stop.
		lim := int64(len(buf))
		for _, s := range stops {
			if s > ch.Size() && s-ch.Size() < lim {
				lim = s - ch.Size()
			}
		}
		n, err := r.Read(buf[:lim])
		if n > 0 {
			ch.Write(buf[:n])
			check()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
	}
	res.size = ch.Size()
	res.head, res.last = ch.Head()
	return res, nil
}
