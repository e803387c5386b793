package s3store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// The spool directory:
//
//	<dir>/lock                          held (flock) by the one process using the spool
//	<dir>/spool.json                    the bucket the spool uploads to
//	<dir>/rec/<node>/<name>.cast        a recording not yet landed, byte for byte
//	<dir>/rec/<node>/<name>.cast.state  its upload state (JSON); absent while live and not uploading
//	<dir>/rec/<node>/.sender            the sender's identity, when the node is not it unchanged (sender.go)
//	<dir>/ev/<node>/<day>/<seg>.jsonl   an event segment not yet landed
//	<dir>/files/<name>                  a file (store.Files) not yet landed
//
// A recording's spool file goes only after its object has landed; its state
// file goes after that, so a state file without a recording is one that
// landed.

// spool is a Store's local spool and its uploaders.
type spool struct {
	s    *Store
	dir  string
	lock *os.File

	limit    int64
	warnAt   int64
	refuseAt int64
	used     atomic.Int64 // bytes in spool files
	alarm    atomic.Bool  // past warnAt

	openedAt time.Time

	claimMu sync.Mutex // held while a node's sender is checked and kept

	mu     sync.Mutex
	recs   map[string]*rec      // by key: every recording in the spool
	landed map[string]time.Time // keys this process landed, with their start (for unique names)
	// checkBefore: a Create whose start is before it asks the bucket
	// whether the name is taken (starts from before this process, or whose
	// landed keys were pruned from landed).
	checkBefore time.Time
	files       map[string]*file    // by name: every file in the spool
	segs        map[string]*segment // by id prefix "<node>/events/<day>/<seg>.jsonl": every segment in the spool
	active      map[string]*segment // by node: the segment events are appended to
	lastSeg     map[string]time.Time
	closed      bool
	dead        atomic.Bool // crashed: write nothing more

	run       *runner
	liveSlots chan struct{} // uploads of live recordings' parts under way

	tickStop chan struct{}
	tickDone chan struct{}
}

// spoolID is spool.json: a spool belongs to one bucket.
type spoolID struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix"`
}

func openSpool(s *Store) (*spool, error) {
	dir, err := filepath.Abs(s.cfg.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("s3store: spool: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "rec"), filepath.Join(dir, "ev"), filepath.Join(dir, "files")} {
		if err := durable.MkdirAll(d); err != nil {
			return nil, err
		}
	}
	// Fails with a *store.InUseError naming the other process.
	lock, err := durable.Lock(filepath.Join(dir, "lock"), dir)
	if err != nil {
		return nil, err
	}
	sp := &spool{
		s:        s,
		dir:      dir,
		lock:     lock,
		limit:    s.cfg.SpoolLimit,
		warnAt:   int64(float64(s.cfg.SpoolLimit) * s.cfg.SpoolWarn),
		refuseAt: int64(float64(s.cfg.SpoolLimit) * createRefuseFraction),
		openedAt: s.now(),
		recs:     map[string]*rec{},
		landed:   map[string]time.Time{},
		segs:     map[string]*segment{},
		files:    map[string]*file{},
		active:   map[string]*segment{},
		lastSeg:  map[string]time.Time{},
	}
	sp.checkBefore = sp.openedAt
	if err := sp.checkID(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := sp.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return sp, nil
}

// checkID refuses a spool that holds uploads for another bucket.
func (sp *spool) checkID() error {
	want := spoolID{Endpoint: sp.s.cfg.Endpoint, Bucket: sp.s.cfg.Bucket, Prefix: sp.s.prefix}
	p := filepath.Join(sp.dir, "spool.json")
	b, err := os.ReadFile(p)
	if err == nil {
		var have spoolID
		if err := json.Unmarshal(b, &have); err != nil {
			return fmt.Errorf("s3store: %s: %w", p, err)
		}
		if have == want {
			return nil
		}
		if !sp.empty() {
			return fmt.Errorf("s3store: spool %s holds uploads for bucket %s/%s%s at %s; use another --statedir, or let them land first",
				sp.dir, have.Bucket, have.Prefix, "", have.Endpoint)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("s3store: %w", err)
	}
	b, _ = json.Marshal(want)
	return durable.WriteFile(p, append(b, '\n'))
}

// empty reports whether the spool holds no recordings and no events.
func (sp *spool) empty() bool {
	for _, sub := range []string{"rec", "ev", "files"} {
		found := false
		filepath.WalkDir(filepath.Join(sp.dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() != ".sender" { // senders stay; they are no upload
				found = true
				return fs.SkipAll
			}
			return nil
		})
		if found {
			return false
		}
	}
	return true
}

func (sp *spool) recPath(key string) string {
	return filepath.Join(sp.dir, "rec", filepath.FromSlash(key))
}

// load reads what an earlier process left in the spool.
func (sp *spool) load() error {
	nodes, err := os.ReadDir(filepath.Join(sp.dir, "rec"))
	if err != nil {
		return fmt.Errorf("s3store: spool: %w", err)
	}
	for _, n := range nodes {
		if !n.IsDir() || !store.ValidNode(n.Name()) {
			continue
		}
		dir := filepath.Join(sp.dir, "rec", n.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("s3store: spool: %w", err)
		}
		names := map[string]bool{}
		for _, e := range ents {
			names[e.Name()] = true
		}
		for _, e := range ents {
			name := e.Name()
			switch {
			case strings.HasSuffix(name, ".tmp"):
				os.Remove(filepath.Join(dir, name))
			case strings.HasSuffix(name, ".state") && store.IsRecordingName(strings.TrimSuffix(name, ".state")) && !names[strings.TrimSuffix(name, ".state")]:
				// Landed; the crash came before the state file went.
				os.Remove(filepath.Join(dir, name))
			case store.IsRecordingName(name):
				key := n.Name() + "/" + name
				r, err := sp.loadRec(key)
				if err != nil {
					return err
				}
				sp.recs[key] = r
			}
		}
	}
	if err := sp.loadFiles(); err != nil {
		return fmt.Errorf("s3store: spool: %w", err)
	}
	return sp.loadSegments()
}

func (sp *spool) loadRec(key string) (*rec, error) {
	node, start, err := store.ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("s3store: spool: stray file %s: %w", sp.recPath(key), err)
	}
	sender, err := sp.spooledSender(node)
	if err != nil {
		return nil, err
	}
	r := &rec{sp: sp, key: key, node: node, sender: sender, start: start, path: sp.recPath(key), loaded: true}
	fi, err := os.Stat(r.path)
	if err != nil {
		return nil, fmt.Errorf("s3store: spool: %w", err)
	}
	r.size.Store(fi.Size())
	sp.used.Add(fi.Size())
	b, err := os.ReadFile(r.path + ".state")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("s3store: spool: %w", err)
	default:
		if err := json.Unmarshal(b, &r.st); err != nil {
			// A torn state file cannot be trusted: treat the recording as
			// live, so Recover closes it out again and re-uploads it.
			sp.s.log.Warn("spool: unreadable upload state; the recording will be uploaded again", "key", key, "err", err)
			r.st = recState{}
		}
	}
	return r, nil
}

// start launches the uploaders and queues what the spool holds.
func (sp *spool) start() {
	sp.run = newRunner(sp.s, sp.s.cfg.Uploaders)
	sp.liveSlots = make(chan struct{}, max(1, sp.s.cfg.Uploaders/2))
	sp.mu.Lock()
	for _, r := range sp.recs {
		if r.st.Closed {
			sp.run.kick(r)
		}
	}
	for _, seg := range sp.segs {
		sp.run.kick(seg)
	}
	for _, f := range sp.files {
		sp.run.kick(f)
	}
	sp.mu.Unlock()
	sp.tickStop, sp.tickDone = make(chan struct{}), make(chan struct{})
	go sp.ticker()
}

// ticker seals event segments that are old enough, and repeats the spool
// alarm while it lasts.
func (sp *spool) ticker() {
	defer close(sp.tickDone)
	period := min(sp.s.cfg.EventSegmentAge/4, 5*time.Second)
	t := time.NewTicker(max(period, 10*time.Millisecond))
	defer t.Stop()
	lastAlarm := time.Time{}
	for {
		select {
		case <-sp.tickStop:
			return
		case <-t.C:
		}
		sp.sealOld(sp.s.now().Add(-sp.s.cfg.EventSegmentAge))
		if sp.alarm.Load() && time.Since(lastAlarm) > time.Minute {
			lastAlarm = time.Now()
			sp.logAlarm()
		}
	}
}

func (sp *spool) logAlarm() {
	used := sp.used.Load()
	sp.s.log.Warn("s3 spool is filling up: uploads are behind (is the bucket reachable?)",
		"spool", sp.dir, "used_bytes", used, "limit_bytes", sp.limit,
		"percent", used*100/max(sp.limit, 1), "new_recordings_refused_at_percent", int(createRefuseFraction*100))
}

// grow accounts for n more spooled bytes, or fails if the spool is full.
func (sp *spool) grow(n int64) error {
	used := sp.used.Add(n)
	if used > sp.limit {
		sp.used.Add(-n)
		return fmt.Errorf("s3store: spool %s is full (%d of %d bytes; uploads are behind): %w", sp.dir, used-n, sp.limit, store.ErrInsufficientSpace)
	}
	if used >= sp.warnAt && !sp.alarm.Swap(true) {
		sp.logAlarm()
	}
	return nil
}

func (sp *spool) shrink(n int64) {
	used := sp.used.Add(-n)
	if used < sp.warnAt*9/10 && sp.alarm.Swap(false) {
		sp.s.log.Info("s3 spool is back below its warning level", "spool", sp.dir, "used_bytes", used, "limit_bytes", sp.limit)
	}
}

// roomForNew reports whether the spool takes a new recording.
func (sp *spool) roomForNew() error {
	if used := sp.used.Load(); used >= sp.refuseAt {
		return fmt.Errorf("s3store: spool %s is %d%% full (uploads are behind): %w", sp.dir, used*100/max(sp.limit, 1), store.ErrInsufficientSpace)
	}
	if sp.s.cfg.MinFree > 0 {
		var st unix.Statfs_t
		if err := unix.Statfs(sp.dir, &st); err != nil {
			return fmt.Errorf("s3store: statfs %s: %w", sp.dir, err)
		}
		if free := int64(st.Bavail) * st.Bsize; free < sp.s.cfg.MinFree {
			return fmt.Errorf("%w in the S3 spool %s: %d MiB free, below the %d MiB reserve", store.ErrInsufficientSpace, sp.dir, free>>20, sp.s.cfg.MinFree>>20)
		}
	}
	return nil
}

var errStoreClosed = errors.New("s3store: store closed")

// close stops the uploaders and seals open segments. crash skips
// everything a dying process would not do.
func (sp *spool) close(crash bool) error {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil
	}
	sp.closed = true
	sp.dead.Store(crash)
	sp.mu.Unlock()
	close(sp.tickStop)
	<-sp.tickDone
	sp.run.stop()
	var errs []error
	if !crash {
		sp.mu.Lock()
		segs := make([]*segment, 0, len(sp.segs))
		for _, seg := range sp.segs {
			segs = append(segs, seg)
		}
		sp.mu.Unlock()
		for _, seg := range segs {
			errs = append(errs, seg.seal())
		}
	}
	errs = append(errs, sp.lock.Close())
	return errors.Join(errs...)
}

// flush waits until everything but live recordings has landed.
func (sp *spool) flush(ctx context.Context) error {
	sp.mu.Lock()
	var segs []*segment
	for _, seg := range sp.active {
		segs = append(segs, seg)
	}
	sp.mu.Unlock()
	for _, seg := range segs {
		sp.sealSegment(seg)
	}
	sp.run.retryNow()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if sp.pending() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("s3store: flush: %d uploads still pending: %w", sp.pending(), ctx.Err())
		case <-t.C:
		}
	}
}

// pending counts closed recordings and segments not yet landed.
func (sp *spool) pending() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	n := len(sp.segs) - len(sp.active) + len(sp.files)
	for _, r := range sp.recs {
		if r.closedNow() {
			n++
		}
	}
	return n
}

func (sp *spool) metrics(m *Metrics) {
	m.SpoolBytes = sp.used.Load()
	m.SpoolLimit = sp.limit
	m.SpoolAlarm = sp.alarm.Load()
	sp.mu.Lock()
	for _, r := range sp.recs {
		if !r.closedNow() {
			m.LiveRecordings++
		}
	}
	m.UploadsPending = len(sp.recs) + len(sp.segs) + len(sp.files)
	sp.mu.Unlock()
	m.UploadsFailing = sp.run.failing()
}
