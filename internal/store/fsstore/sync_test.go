package fsstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// syncWatch stands between a Store and the system calls that make data
// durable. It records, per file, how many bytes the last successful sync
// made durable (the file's size just before the sync began: every byte
// written by then is covered), and injects the faults a test asks for.
type syncWatch struct {
	dir string

	mu           sync.Mutex
	durable      map[string]int64 // path -> bytes known durable
	failSyncfs   int              // fail this many more syncfs calls (<0: all)
	failNode     string           // fail the next fdatasync of this node's recording
	syncfsCalls  int
	syncfsFailed int
	fdatasyncs   int
}

var errInjected = fmt.Errorf("injected fault: %w", unix.EIO)

// watchSyncs installs a syncWatch on s. Call it before s is used.
func watchSyncs(t *testing.T, s *Store) *syncWatch {
	t.Helper()
	if s.sys.syncfs == nil {
		testutil.SkipOrFail(t, "syncfs does not report write-back errors on this kernel (Linux >= 5.8 needed); the store does not use it")
	}
	sw := &syncWatch{dir: s.dir, durable: map[string]int64{}}
	s.sys.fdatasync = sw.fdatasync
	s.sys.syncfs = sw.syncfs
	return sw
}

func (sw *syncWatch) fdatasync(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	sw.mu.Lock()
	sw.fdatasyncs++
	fail := sw.failNode != "" && strings.Contains(f.Name(), "/"+sw.failNode+"/")
	if fail {
		sw.failNode = ""
	}
	sw.mu.Unlock()
	if fail {
		// As when write-back of this file failed: the data is lost.
		return errInjected
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	sw.record(f.Name(), fi.Size())
	return nil
}

func (sw *syncWatch) syncfs(fd int) error {
	sizes := sw.castSizes()
	err := unix.Syncfs(fd)
	sw.mu.Lock()
	sw.syncfsCalls++
	if err == nil && sw.failSyncfs != 0 {
		// As when write-back of some other file on the file system failed:
		// syncfs reports it, though our files are fine.
		sw.failSyncfs--
		sw.syncfsFailed++
		err = errInjected
	}
	sw.mu.Unlock()
	if err != nil {
		return err
	}
	for p, n := range sizes {
		sw.record(p, n)
	}
	return nil
}

func (sw *syncWatch) record(path string, n int64) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.durable[path] = max(sw.durable[path], n)
}

// castSizes returns the size of every recording in the store.
func (sw *syncWatch) castSizes() map[string]int64 {
	paths, _ := filepath.Glob(filepath.Join(sw.dir, "*", "*.cast"))
	sizes := map[string]int64{}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			sizes[p] = fi.Size()
		}
	}
	return sizes
}

func (sw *syncWatch) durableOf(path string) int64 {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.durable[path]
}

func (sw *syncWatch) counts() (syncfsCalls, syncfsFailed, fdatasyncs int) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.syncfsCalls, sw.syncfsFailed, sw.fdatasyncs
}

func (sw *syncWatch) set(f func(sw *syncWatch)) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	f(sw)
}

func openWatched(t *testing.T) (*Store, *syncWatch) {
	t.Helper()
	s, err := Open(t.TempDir(), Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, watchSyncs(t, s)
}

// TestSyncAllFallsBackPerFile: a syncfs error (another program's file
// failed to write back) fails no writer: each is synced on its own. A
// writer whose own fdatasync fails fails alone, and for good.
func TestSyncAllFallsBackPerFile(t *testing.T) {
	s, sw := openWatched(t)
	const n = 5
	ws := make([]store.Writer, n)
	for i := range ws {
		w, err := s.Create(t.Context(), fmt.Sprintf("n%d", i), time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close(store.StatusComplete, "")
		ws[i] = w
	}
	writeAll := func(line string) {
		t.Helper()
		for _, w := range ws {
			if _, err := io.WriteString(w, line); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkDurable := func(skip int) {
		t.Helper()
		for i, w := range ws {
			if i == skip {
				continue
			}
			fw := w.(*writer)
			if got := sw.durableOf(fw.f.Name()); got != fw.size {
				t.Errorf("writer %d: %d of %d bytes durable after SyncAll returned nil", i, got, fw.size)
			}
		}
	}

	writeAll(`{"version":2}` + "\n")
	sw.set(func(sw *syncWatch) { sw.failSyncfs = 1 })
	for i, err := range s.SyncAll(ws) {
		if err != nil {
			t.Errorf("writer %d after a failed syncfs: %v; want nil (synced on its own)", i, err)
		}
	}
	if _, failed, _ := sw.counts(); failed != 1 {
		t.Fatalf("injected syncfs failures = %d, want 1", failed)
	}
	checkDurable(-1)

	writeAll(`[1,"o","a"]` + "\n")
	for i, err := range s.SyncAll(ws) {
		if err != nil {
			t.Errorf("writer %d, syncfs working again: %v", i, err)
		}
	}
	checkDurable(-1)

	// Writer 2's own data is lost, and syncfs says so too.
	writeAll(`[2,"o","b"]` + "\n")
	sw.set(func(sw *syncWatch) { sw.failSyncfs, sw.failNode = 1, "n2" })
	for i, err := range s.SyncAll(ws) {
		if i == 2 && !errors.Is(err, unix.EIO) {
			t.Errorf("writer 2, whose fdatasync failed: %v; want EIO", err)
		}
		if i != 2 && err != nil {
			t.Errorf("writer %d: %v; only writer 2 lost data", i, err)
		}
	}
	checkDurable(2)
	// Later syncs never claim writer 2's lost bytes durable; the rest go on.
	writeAll(`[3,"o","c"]` + "\n")
	for i, err := range s.SyncAll(ws) {
		if i == 2 && err == nil {
			t.Errorf("writer 2: a later SyncAll succeeded; its lost bytes would be acked")
		}
		if i != 2 && err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if err := ws[2].Sync(); err == nil {
		t.Errorf("writer 2: Sync succeeded after its data was lost")
	}
	checkDurable(2)
}

// recHarness runs the real recorder on a watched fsstore over cleartext
// HTTP/2, and checks every ack frame at the moment the recorder writes it
// against what the store had made durable by then.
type recHarness struct {
	t      *testing.T
	st     *Store
	sw     *syncWatch
	url    string
	client *http.Client

	acksChecked atomic.Int64 // ack frames > 0 checked
}

func startRecorder(t *testing.T) *recHarness {
	t.Helper()
	st, sw := openWatched(t)
	h := &recHarness{t: t, st: st, sw: sw}
	srv := &recorder.Server{
		Store:       st,
		AckInterval: 10 * time.Millisecond,
		Identify: func(r *http.Request) (string, error) {
			if n := r.Header.Get("X-Node"); n != "" {
				return n, nil
			}
			return "", errors.New("no X-Node")
		},
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: h.checkAcks(srv.Handler()), Protocols: &p}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	h.url = "http://" + ln.Addr().String()
	h.client = &http.Client{Transport: &http.Transport{Protocols: &p}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("recorder shutdown: %v", err)
		}
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		h.client.CloseIdleConnections()
	})
	return h
}

// checkAcks wraps the recorder's handler: each ack frame of a /v2/record
// response is compared, as it is written, with the bytes the store has
// synced of that sender's recording.
func (h *recHarness) checkAcks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/record" || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		node := r.Header.Get("X-Node")
		next.ServeHTTP(&frameWriter{ResponseWriter: w, frame: func(line []byte) {
			var f struct {
				Ack *int64 `json:"ack"`
			}
			if json.Unmarshal(line, &f) != nil || f.Ack == nil || *f.Ack == 0 {
				return
			}
			paths, _ := filepath.Glob(filepath.Join(h.st.dir, node, "*.cast"))
			if len(paths) != 1 {
				h.t.Errorf("node %s: ack %d with recordings %q; want exactly one", node, *f.Ack, paths)
				return
			}
			if synced := h.sw.durableOf(paths[0]); *f.Ack > synced {
				h.t.Errorf("node %s: ack %d covers bytes the store has not synced: %d synced", node, *f.Ack, synced)
			}
			h.acksChecked.Add(1)
		}}, r)
	})
}

// frameWriter calls frame for every line written to the response.
type frameWriter struct {
	http.ResponseWriter
	frame func([]byte)
	buf   []byte
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.frame(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return w.ResponseWriter.Write(p)
}

func (w *frameWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// upload is one POST /v2/record from the client side.
type upload struct {
	t      *testing.T
	node   string
	pw     *io.PipeWriter
	sent   int64
	events int

	mu     sync.Mutex
	ack    int64
	errMsg string
	ended  bool
	done   chan struct{}
}

func (h *recHarness) open(node string) *upload {
	h.t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.url+"/v2/record", pr)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-Node", node)
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("POST /v2/record for %s: %v", node, err)
	}
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("POST /v2/record for %s: %s", node, resp.Status)
	}
	u := &upload{t: h.t, node: node, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var f struct {
				Ack   int64  `json:"ack"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
				u.t.Errorf("%s: bad frame %q", node, sc.Bytes())
				continue
			}
			u.mu.Lock()
			u.ack = max(u.ack, f.Ack)
			if f.Error != "" {
				u.errMsg = f.Error
			}
			u.mu.Unlock()
		}
		u.mu.Lock()
		u.ended = true
		u.mu.Unlock()
		pw.CloseWithError(errors.New("response ended"))
	}()
	u.send([]byte(`{"version":2,"width":80,"height":24}` + "\n"))
	return u
}

func (u *upload) send(b []byte) {
	u.t.Helper()
	if _, err := u.pw.Write(b); err != nil {
		u.t.Fatalf("%s: send: %v (%s)", u.node, err, u.state())
	}
	u.sent += int64(len(b))
}

func (u *upload) state() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return fmt.Sprintf("sent %d, acked %d, ended %v, error %q", u.sent, u.ack, u.ended, u.errMsg)
}

// acked reports whether every byte sent is acked; it fails the test if the
// upload ended first.
func (u *upload) acked() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ended && u.ack < u.sent {
		u.t.Fatalf("%s: upload ended before its bytes were acked: sent %d, acked %d, error %q", u.node, u.sent, u.ack, u.errMsg)
	}
	return u.ack >= u.sent
}

func (u *upload) errorFrame() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.errMsg
}

// finish ends the body and waits for the response to end.
func (u *upload) finish() {
	u.t.Helper()
	u.pw.Close()
	testutil.Recv(u.t, u.node+"'s response to end", u.done)
}

// event sends an asciicast event line of about n bytes, later than the
// last.
func (u *upload) event(n int) {
	u.t.Helper()
	u.events++
	u.send(fmt.Appendf(nil, "[%d.5,\"o\",\"%s\"]\n", u.events, strings.Repeat("x", max(1, n-16))))
}

// round sends a line to each upload in ups for which pick is true, then
// waits until each has every byte it sent acked.
func round(t *testing.T, ups []*upload, r int, pick func(r, i int) bool) {
	t.Helper()
	for i, u := range ups {
		if pick(r, i) {
			// Some lines are past the recorder's coalescing size, to go
			// straight to the store.
			size := 40 + (r*7919+i*104729)%3000
			if r%9 == 4 {
				size = 70 << 10
			}
			u.event(size)
		}
	}
	for _, u := range ups {
		testutil.WaitForSeen(t, testutil.DefaultWait, u.node+"'s bytes acked", u.acked, u.state)
	}
}

// roundsUntil runs rounds until cond holds, and fails the test if it does
// not within maxRounds.
func roundsUntil(t *testing.T, ups []*upload, maxRounds int, pick func(r, i int) bool, what string, cond func() bool) {
	t.Helper()
	for r := range maxRounds {
		if cond() {
			return
		}
		if t.Failed() {
			t.FailNow()
		}
		round(t, ups, r, pick)
	}
	if !cond() {
		t.Fatalf("%s: not after %d rounds", what, maxRounds)
	}
}

func all(r, i int) bool { return true }

// TestAcksCoverOnlySyncedBytes drives the real recorder on fsstore and
// checks that no ack ever covers a byte the store had not synced, through
// both ways the recorder syncs (one fdatasync per recording, and syncfs
// for many at once).
func TestAcksCoverOnlySyncedBytes(t *testing.T) {
	h := startRecorder(t)
	var ups []*upload
	for i := range 6 {
		ups = append(ups, h.open(fmt.Sprintf("n%d", i)))
	}
	roundsUntil(t, ups, 2000,
		// Rounds with one or two senders sync each on its own; rounds
		// with all six sync them together.
		func(r, i int) bool { return r%3 == 0 || i < 1+r%2 },
		"both ways of syncing used, and acks checked",
		func() bool {
			syncfs, _, fdatasyncs := h.sw.counts()
			return syncfs >= 5 && fdatasyncs >= 20 && h.acksChecked.Load() >= 50
		})
	for _, u := range ups {
		u.finish()
		if u.ack != u.sent || u.errMsg != "" {
			t.Errorf("%s: %s; want every byte acked and no error", u.node, u.state())
		}
	}
	syncfs, _, fdatasyncs := h.sw.counts()
	t.Logf("%d acks checked; %d syncfs, %d fdatasync", h.acksChecked.Load(), syncfs, fdatasyncs)
}

// TestSyncfsErrorFailsNoRecording: when syncfs reports an error (write-back
// of some file on the file system failed, maybe another program's), every
// live recording is synced on its own and goes on being acked.
func TestSyncfsErrorFailsNoRecording(t *testing.T) {
	h := startRecorder(t)
	var ups []*upload
	for i := range 5 {
		ups = append(ups, h.open(fmt.Sprintf("n%d", i)))
	}
	h.sw.set(func(sw *syncWatch) { sw.failSyncfs = 1 })
	roundsUntil(t, ups, 2000, all, "a syncfs failed", func() bool { _, failed, _ := h.sw.counts(); return failed == 1 })
	for r := range 3 { // acks go on after it
		round(t, ups, r, all)
	}
	for _, u := range ups {
		u.finish()
		if u.ack != u.sent || u.errMsg != "" {
			t.Errorf("%s: %s; want every byte acked and no error", u.node, u.state())
		}
		if info, err := h.st.Stat(t.Context(), onlyKey(t, h.st, u.node)); err != nil || info.Status != store.StatusComplete {
			t.Errorf("%s: %+v, %v; want complete", u.node, info, err)
		}
	}
}

// TestSyncErrorFailsOnlyItsRecording: a recording whose own data failed to
// write back ends with an error frame and is marked failed; the others go
// on, even while every syncfs fails.
func TestSyncErrorFailsOnlyItsRecording(t *testing.T) {
	h := startRecorder(t)
	h.sw.set(func(sw *syncWatch) { sw.failSyncfs = -1 })
	var ups []*upload
	for i := range 5 {
		ups = append(ups, h.open(fmt.Sprintf("n%d", i)))
	}
	roundsUntil(t, ups, 2000, all, "syncfs used (and failing)", func() bool { syncfs, _, _ := h.sw.counts(); return syncfs >= 2 })
	h.sw.set(func(sw *syncWatch) { sw.failNode = "n2" })
	bad, good := ups[2], append(ups[:2:2], ups[3:]...)
	for _, u := range ups {
		u.event(100)
	}
	testutil.WaitForSeen(t, testutil.DefaultWait, "an error frame for n2", func() bool { return bad.errorFrame() != "" }, bad.state)
	for r := range 3 {
		round(t, good, r, all)
	}
	bad.finish()
	if info, err := h.st.Stat(t.Context(), onlyKey(t, h.st, "n2")); err != nil || info.Status != store.StatusFailed {
		t.Errorf("n2: %+v, %v; want failed", info, err)
	}
	for _, u := range good {
		u.finish()
		if u.ack != u.sent || u.errMsg != "" {
			t.Errorf("%s: %s; want every byte acked and no error", u.node, u.state())
		}
		if info, err := h.st.Stat(t.Context(), onlyKey(t, h.st, u.node)); err != nil || info.Status != store.StatusComplete {
			t.Errorf("%s: %+v, %v; want complete", u.node, info, err)
		}
	}
	if syncfs, failed, _ := h.sw.counts(); syncfs == 0 || failed != syncfs {
		t.Errorf("%d of %d syncfs calls failed; want all, and some", failed, syncfs)
	}
}

// onlyKey returns the key of node's one recording.
func onlyKey(t *testing.T, s *Store, node string) string {
	t.Helper()
	var keys []string
	for info, err := range s.List(t.Context(), store.Filter{Node: node}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if len(keys) != 1 {
		t.Fatalf("node %s has recordings %q; want one", node, keys)
	}
	return keys[0]
}
