package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// rec is one recording in the spool: live (a writer appends to it) or
// closed and waiting to land.
type rec struct {
	sp     *spool
	key    string
	node   string
	sender string // the sender's identity (see sender.go)
	start  time.Time
	path   string
	// loaded: found in the spool at Open, left by an earlier process (no
	// writer of ours holds it).
	loaded bool

	// Written by the writer goroutine, read by anyone.
	size   atomic.Int64 // bytes in the spool file
	lastNL atomic.Int64 // offset after the last '\n'

	// Guarded by mu.
	mu       sync.Mutex
	synced   int64 // bytes known durable
	syncedNL int64 // offset after the last '\n' among them
	st       recState

	sc sched // guarded by runner.mu
}

// recState is the .cast.state file: how far the upload got, and how the
// recording ended.
type recState struct {
	UploadID string       `json:"upload_id,omitempty"`
	Parts    []partState  `json:"parts,omitempty"`
	Closed   bool         `json:"closed,omitempty"`
	Status   store.Status `json:"status,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Final    int64        `json:"final,omitempty"` // the recording's size: [0, Final) is the object
	End      int64        `json:"end,omitempty"`   // the spool file's size: [Final, End) is the tail
	ClosedAt time.Time    `json:"closed_at,omitzero"`
}

type partState struct {
	N    int    `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

func (st *recState) uploaded() int64 {
	var n int64
	for _, p := range st.Parts {
		n += p.Size
	}
	return n
}

func (r *rec) sched() *sched     { return &r.sc }
func (r *rec) describe() string  { return r.key }
func (r *rec) statePath() string { return r.path + ".state" }

func (r *rec) closedNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Closed
}

// saveState writes st durably. Called with r.mu held or by the one
// goroutine that owns the recording's upload.
func (r *rec) saveState(st recState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return durable.WriteFile(r.statePath(), append(b, '\n'))
}

// info describes r as Stat does.
func (r *rec) info() store.Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := store.Info{Key: r.key, Node: r.node, Sender: r.sender, Start: r.start, Size: r.size.Load(), Status: store.StatusLive}
	if r.st.Closed {
		info.Size, info.Status, info.Reason = r.st.Final, r.st.Status, r.st.Reason
	}
	return info
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, sender string, start time.Time) (store.Writer, error) {
	return s.CreateKind(ctx, sender, start, store.KindTerminal)
}

var _ store.KindCreator = (*Store)(nil)

// CreateKind implements store.KindCreator: as Create, for a recording of
// kind k.
func (s *Store) CreateKind(ctx context.Context, sender string, start time.Time, k store.Kind) (store.Writer, error) {
	sp := s.sp
	if sp == nil {
		return nil, errReadOnly
	}
	node, err := store.CheckSender(sender)
	if err != nil {
		return nil, fmt.Errorf("s3store: create: %w", err)
	}
	if err := sp.roomForNew(); err != nil {
		return nil, err
	}
	if err := sp.claim(node, sender); err != nil {
		return nil, err
	}
	dir := filepath.Join(sp.dir, "rec", node)
	if err := durable.MkdirAll(dir); err != nil {
		return nil, err
	}
	for i := range 1000 {
		t := start.UTC().Add(time.Duration(i))
		key := store.KindKey(node, t, k)
		sp.mu.Lock()
		_, landed := sp.landed[key]
		if sp.closed || landed || sp.recs[key] != nil {
			closed := sp.closed
			sp.mu.Unlock()
			if closed {
				return nil, errStoreClosed
			}
			continue
		}
		r := &rec{sp: sp, key: key, node: node, sender: sender, start: t, path: sp.recPath(key)}
		sp.recs[key] = r // reserve the name

		checkBefore := sp.checkBefore
		sp.mu.Unlock()

		f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil && r.start.Before(checkBefore) && s.exists(ctx, key) {
			// A start from before this process began (or from before the
			// landed keys it still remembers) may name a recording that
			// has landed.
			f.Close()
			os.Remove(r.path)
			err = fs.ErrExist
		}
		if err != nil {
			sp.mu.Lock()
			delete(sp.recs, key)
			sp.mu.Unlock()
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return nil, fmt.Errorf("s3store: create %s: %w", key, err)
		}
		return &writer{r: r, f: f}, nil
	}
	return nil, fmt.Errorf("s3store: create: no free name near %s", start)
}

// exists reports whether key's object is in the bucket; when that cannot
// be told (the bucket is unreachable), it reports false.
func (s *Store) exists(ctx context.Context, key string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.client.StatObject(ctx, s.cfg.Bucket, s.objKey(key), minio.StatObjectOptions{})
	return err == nil
}

var errReadOnly = errors.New("s3store: store opened read-only (no spool)")

// writer is a live recording's store.Writer.
type writer struct {
	r *rec
	f *os.File

	syncMu    sync.Mutex
	dirSynced bool
	err       error // sticky sync error
	closed    bool
}

func (w *writer) Key() string { return w.r.key }

func (w *writer) Write(p []byte) (int, error) {
	r := w.r
	if err := r.sp.alive(); err != nil {
		return 0, err
	}
	if err := r.sp.grow(int64(len(p))); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	if n < len(p) {
		r.sp.shrink(int64(len(p) - n))
	}
	size := r.size.Load()
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		r.lastNL.Store(size + int64(i) + 1)
	}
	r.size.Store(size + int64(n))
	if err != nil {
		return n, fmt.Errorf("s3store: spool %s: %w", r.key, err)
	}
	return n, nil
}

// Sync makes the written bytes durable in the spool, and hands whole parts
// of them to the uploaders.
func (w *writer) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.r.sp.alive(); err != nil {
		return err
	}
	size, nl := w.r.size.Load(), w.r.lastNL.Load()
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		w.err = fmt.Errorf("s3store: sync spool %s: %w", w.r.key, err)
		return w.err
	}
	return w.synced(size, nl, nil)
}

// synced records that the first size bytes are durable (err == nil), and
// kicks the uploader when a part is ready. Called with syncMu held.
func (w *writer) synced(size, nl int64, err error) error {
	if w.err != nil {
		return w.err
	}
	if err != nil {
		w.err = fmt.Errorf("s3store: sync spool %s: %w", w.r.key, err)
		return w.err
	}
	if !w.dirSynced {
		if err := durable.SyncDir(filepath.Dir(w.r.path)); err != nil {
			w.err = err
			return err
		}
		w.dirSynced = true
	}
	r := w.r
	r.mu.Lock()
	r.synced, r.syncedNL = max(r.synced, size), max(r.syncedNL, nl)
	ready := r.syncedNL-r.st.uploaded() >= r.sp.s.cfg.PartSize
	r.mu.Unlock()
	if ready {
		r.sp.run.kick(r)
	}
	return nil
}

// Close finishes the recording in the spool; the upload completes in the
// background.
func (w *writer) Close(status store.Status, reason string) error {
	r := w.r
	if w.closed {
		return fmt.Errorf("s3store: %s: closed twice", r.key)
	}
	w.closed = true
	syncErr := w.Sync()
	var errs []error
	if syncErr != nil {
		errs = append(errs, syncErr)
		if status == store.StatusComplete || status == store.StatusMalformed {
			status, reason = store.StatusFailed, syncErr.Error()
		}
	}
	end := r.size.Load()
	final := end
	if status != store.StatusComplete && status != store.StatusMalformed {
		final = r.lastNL.Load()
	}
	errs = append(errs, w.f.Close())
	if err := r.sp.alive(); err != nil {
		return err
	}
	r.mu.Lock()
	st := r.st
	st.Closed, st.Status, st.Reason, st.Final, st.End, st.ClosedAt = true, status, reason, final, end, r.sp.s.now().UTC()
	err := r.saveState(st)
	if err == nil {
		r.st = st
	}
	r.mu.Unlock()
	if err != nil {
		// The recording stays live in the spool; Recover closes it out
		// after a restart.
		return errors.Join(append(errs, err)...)
	}
	r.sp.run.kick(r)
	return errors.Join(errs...)
}

// alive fails once the store has crashed (Crash in tests): a dead process
// writes nothing more.
func (sp *spool) alive() error {
	if sp.dead.Load() {
		return errStoreClosed
	}
	return nil
}

// SyncAll makes every writer in ws durable: the batch sync the recorder
// uses when many recordings are dirty at once. Unlike fsstore it fsyncs
// each spool file rather than the whole file system, which may hold other
// programs' data (a local S3 server's, for one); on a journalling file
// system the first fdatasync commits the journal for all of them, so the
// rest are cheap. It returns one error per writer.
func (s *Store) SyncAll(ws []store.Writer) []error {
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = w.Sync()
	}
	return errs
}

// Recover implements store.Store: recordings the spool holds that were
// live when the last process stopped are cut at their last complete line,
// marked interrupted and queued for upload.
func (s *Store) Recover(ctx context.Context) ([]store.Info, error) {
	sp := s.sp
	if sp == nil {
		return nil, errReadOnly
	}
	sp.mu.Lock()
	var todo []*rec
	for _, r := range sp.recs {
		r.mu.Lock()
		if r.loaded && !r.st.Closed {
			todo = append(todo, r)
		}
		r.mu.Unlock()
	}
	sp.mu.Unlock()
	var out []store.Info
	var errs []error
	for _, r := range todo {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		info, err := r.recover()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, info)
		s.log.Warn("recovered interrupted recording", "key", r.key, "size", info.Size, "cut", r.st.End-r.st.Final)
		sp.run.kick(r)
	}
	return out, errors.Join(errs...)
}

// recover closes out a recording a crash left live.
func (r *rec) recover() (store.Info, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return store.Info{}, fmt.Errorf("s3store: recover %s: %w", r.key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return store.Info{}, fmt.Errorf("s3store: recover %s: %w", r.key, err)
	}
	nl, err := durable.LastNewline(f, fi.Size())
	if err != nil {
		return store.Info{}, fmt.Errorf("s3store: recover %s: %w", r.key, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	if st.uploaded() > nl {
		// Cannot happen (parts end at synced line ends), but if it did the
		// upload could not be cut: start it again.
		st.UploadID, st.Parts = "", nil
	}
	st.Closed, st.Status, st.Final, st.End, st.ClosedAt = true, store.StatusInterrupted, nl, fi.Size(), r.sp.s.now().UTC()
	st.Reason = "the recorder stopped while the recording was live; cut at the last complete line"
	if err := r.saveState(st); err != nil {
		return store.Info{}, fmt.Errorf("s3store: recover %s: %w", r.key, err)
	}
	r.st = st
	r.size.Store(fi.Size())
	return store.Info{Key: r.key, Node: r.node, Sender: r.sender, Start: r.start, Size: nl, Status: st.Status, Reason: st.Reason}, nil
}

// run is the recording's upload job: send the parts that are ready and,
// once it is closed, the rest, then land it.
func (r *rec) run(ctx context.Context) error {
	s := r.sp.s
	r.mu.Lock()
	st := r.st
	readyTo := r.syncedNL
	r.mu.Unlock()
	if !st.Closed {
		if readyTo-st.uploaded() < s.cfg.PartSize {
			return nil
		}
		// Parts of live recordings are not urgent (the spool holds them
		// durably): they take at most half the uploaders, so that they
		// compete less with the recorder for the CPU while it is busy,
		// and leave room for recordings that have ended. A part that
		// finds no slot goes up after the recording's next sync.
		select {
		case r.sp.liveSlots <- struct{}{}:
			defer func() { <-r.sp.liveSlots }()
		default:
			return nil
		}
		for readyTo-st.uploaded() >= s.cfg.PartSize {
			from := st.uploaded()
			to, err := r.partEnd(from, readyTo)
			if err != nil {
				return err
			}
			if err := r.uploadPart(ctx, &st, from, to); err != nil {
				return err
			}
		}
		return nil
	}
	return r.land(ctx, st)
}

// saveProgress saves and publishes st's upload progress, keeping how the
// recording ended as Close or Recover (which run outside the upload job)
// decided it.
func (r *rec) saveProgress(st recState) error {
	if err := r.sp.alive(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.st
	cur.UploadID, cur.Parts = st.UploadID, st.Parts
	if err := r.saveState(cur); err != nil {
		return err
	}
	r.st = cur
	return nil
}

// maxPartFactor bounds a live part to this many PartSizes, so that a
// backlog (after an outage) goes up in several parts rather than one huge
// one.
const maxPartFactor = 8

// partEnd returns where a live part starting at from ends: readyTo (a line
// end) if the part is not too big, else the last line end within
// maxPartFactor part sizes (or readyTo if there is none).
func (r *rec) partEnd(from, readyTo int64) (int64, error) {
	ps := r.sp.s.cfg.PartSize
	if readyTo-from <= maxPartFactor*ps {
		return readyTo, nil
	}
	f, err := os.Open(r.path)
	if err != nil {
		return 0, fmt.Errorf("spool %s: %w", r.key, err)
	}
	defer f.Close()
	lo, hi := from+ps, from+maxPartFactor*ps
	nl, err := durable.LastNewline(f, hi)
	if err != nil {
		return 0, fmt.Errorf("spool %s: %w", r.key, err)
	}
	if nl < lo {
		return readyTo, nil
	}
	return nl, nil
}

// uploadPart sends [from, to) of the spool file as the next part, starting
// the multipart upload first if needed.
func (r *rec) uploadPart(ctx context.Context, st *recState, from, to int64) error {
	s := r.sp.s
	obj := s.objKey(r.key)
	if st.UploadID == "" {
		id, err := s.up.NewMultipartUpload(ctx, s.cfg.Bucket, obj, minio.PutObjectOptions{ContentType: contentType(r.key)})
		if err != nil {
			return fmt.Errorf("start multipart upload of %s: %w", obj, err)
		}
		st.UploadID, st.Parts = id, nil
		if err := r.saveProgress(*st); err != nil {
			return err
		}
	}
	f, err := os.Open(r.path)
	if err != nil {
		return fmt.Errorf("spool %s: %w", r.key, err)
	}
	defer f.Close()
	n := len(st.Parts) + 1
	opts := minio.PutObjectPartOptions{}
	if s.cfg.SendContentMD5 {
		if opts.Md5Base64, err = md5Of(io.NewSectionReader(f, from, to-from)); err != nil {
			return fmt.Errorf("spool %s: %w", r.key, err)
		}
	}
	part, err := s.up.PutObjectPart(ctx, s.cfg.Bucket, obj, st.UploadID, n, io.NewSectionReader(f, from, to-from), to-from, opts)
	if err != nil {
		if errCode(err) == "NoSuchUpload" {
			// The bucket dropped the upload (lifecycle rule, abort): start
			// again from the first byte.
			s.log.Warn("multipart upload vanished; restarting it", "key", r.key, "upload_id", st.UploadID)
			st.UploadID, st.Parts = "", nil
			if serr := r.saveProgress(*st); serr != nil {
				return serr
			}
		}
		return fmt.Errorf("upload part %d of %s: %w", n, obj, err)
	}
	st.Parts = append(st.Parts, partState{N: n, ETag: part.ETag, Size: to - from})
	return r.saveProgress(*st)
}

// land uploads what is left of a closed recording, its tail and status,
// completes the object, and removes it from the spool.
func (r *rec) land(ctx context.Context, st recState) error {
	s := r.sp.s
	if s.spooled(r.key) != r {
		return nil // landed by an earlier run
	}
	obj := s.objKey(r.key)
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r.forget()
	}
	if err == nil {
		if err = s.landSender(ctx, r.node); err != nil {
			f.Close()
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("spool %s: %w", r.key, err)
	}
	defer f.Close()

	// Tail and status first: a reader that sees the object sees them too.
	if st.End > st.Final {
		if err := s.putObject(ctx, store.TailKey(r.key), io.NewSectionReader(f, st.Final, st.End-st.Final), st.End-st.Final); err != nil {
			return err
		}
	}
	if st.Status != store.StatusComplete {
		b, _ := json.Marshal(statusFile{Status: st.Status, Reason: st.Reason, Size: st.Final, Closed: st.ClosedAt})
		if err := s.putObject(ctx, statusKey(r.key), bytes.NewReader(b), int64(len(b))); err != nil {
			return err
		}
	}

	if st.UploadID == "" && st.Final <= 4*s.cfg.PartSize {
		if err := s.putObject(ctx, r.key, io.NewSectionReader(f, 0, st.Final), st.Final); err != nil {
			return err
		}
	} else {
		for from := st.uploaded(); from < st.Final || st.UploadID == "" || len(st.Parts) == 0; from = st.uploaded() {
			to := min(st.Final, from+s.cfg.PartSize)
			if st.Final-to < MinPartSize {
				to = st.Final // no runt part before the last
			}
			if err := r.uploadPart(ctx, &st, from, to); err != nil {
				return err
			}
		}
		parts := make([]minio.CompletePart, len(st.Parts))
		for i, p := range st.Parts {
			parts[i] = minio.CompletePart{PartNumber: p.N, ETag: p.ETag}
		}
		_, err := s.up.CompleteMultipartUpload(ctx, s.cfg.Bucket, obj, st.UploadID, parts, minio.PutObjectOptions{ContentType: contentType(r.key)})
		if err != nil {
			code := errCode(err)
			if code == "NoSuchUpload" || code == "InvalidPart" || code == "InvalidPartOrder" {
				// Completed before a crash, or lost: if the object is
				// whole, it has landed; otherwise upload it again.
				oi, serr := s.client.StatObject(ctx, s.cfg.Bucket, obj, minio.StatObjectOptions{})
				if serr != nil || oi.Size != st.Final {
					s.log.Warn("multipart upload cannot be completed; restarting it", "key", r.key, "err", err)
					st.UploadID, st.Parts = "", nil
					if serr := r.saveProgress(st); serr != nil {
						return serr
					}
					return fmt.Errorf("complete %s: %w", obj, err)
				}
			} else {
				return fmt.Errorf("complete %s: %w", obj, err)
			}
		}
	}
	s.stats.landed.Add(1)
	s.stats.landedBytes.Add(st.Final)
	s.log.Info("recording stored", "key", r.key, "object", s.ObjectURL(r.key), "bytes", st.Final, "status", st.Status)
	return r.forget()
}

// forget removes a landed recording from the spool: the spool file first,
// then its state.
func (r *rec) forget() error {
	sp := r.sp
	if err := sp.alive(); err != nil {
		return err
	}
	if err := durable.Remove(r.path); err != nil {
		return err
	}
	if err := durable.Remove(r.statePath()); err != nil {
		return err
	}
	sp.mu.Lock()
	if sp.recs[r.key] != r {
		sp.mu.Unlock()
		return nil // forgotten already: a run after the one that landed it
	}
	delete(sp.recs, r.key)
	sp.landed[r.key] = r.start
	if len(sp.landed) > maxLanded {
		sp.pruneLanded()
	}
	sp.mu.Unlock()
	sp.shrink(r.size.Load())
	return nil
}

// maxLanded bounds the landed keys a spool remembers.
const maxLanded = 100_000

// pruneLanded forgets the older half of the landed keys; Create then asks
// the bucket about starts that old. Called with sp.mu held.
func (sp *spool) pruneLanded() {
	starts := make([]time.Time, 0, len(sp.landed))
	for _, t := range sp.landed {
		starts = append(starts, t)
	}
	slices.SortFunc(starts, time.Time.Compare)
	cut := starts[len(starts)/2]
	for key, t := range sp.landed {
		if t.Before(cut) {
			delete(sp.landed, key)
		}
	}
	if cut.After(sp.checkBefore) {
		sp.checkBefore = cut
	}
}

// putObject uploads one object in a single PUT.
func (s *Store) putObject(ctx context.Context, key string, body io.ReadSeeker, size int64) error {
	var md5b64 string
	if s.cfg.SendContentMD5 {
		var err error
		if md5b64, err = md5Of(body); err != nil {
			return err
		}
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	_, err := s.up.PutObject(ctx, s.cfg.Bucket, s.objKey(key), body, size, md5b64, "", minio.PutObjectOptions{ContentType: contentType(key)})
	if err != nil {
		return fmt.Errorf("put %s: %w", s.objKey(key), err)
	}
	return nil
}

func md5Of(r io.Reader) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// contentType is what an object is served as.
func contentType(key string) string {
	switch filepath.Ext(key) {
	case ".cast":
		return "application/x-asciicast"
	case ".desk":
		return "application/x-reel-desktop"
	case ".status", ".jsonl":
		return "application/json"
	}
	return "application/octet-stream"
}

// statusFile is the JSON in a .status object, as in fsstore's .status file.
type statusFile struct {
	Status store.Status `json:"status"`
	Reason string       `json:"reason,omitempty"`
	Size   int64        `json:"size"`
	Closed time.Time    `json:"closed"`
}
