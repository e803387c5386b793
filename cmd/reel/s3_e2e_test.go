package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
	"github.com/reel-rec/reel/internal/testutil"
)

// s3Recorder is "reel serve" storing to a real S3 server.
type s3Recorder struct {
	srv      *s3test.Server
	bucket   string
	stateDir string
	debug    string // --debug-listen address
}

func newS3Recorder(t *testing.T, server string) *s3Recorder {
	return &s3Recorder{srv: s3test.Start(t, server), bucket: "reel-e2e", stateDir: t.TempDir()}
}

// dst is the --dst of the recorder.
func (r *s3Recorder) dst() string { return "s3+http://" + r.srv.Addr }

// start runs reel serve on the bucket with the spool in r.stateDir. The
// credentials go in the environment, where a secret belongs.
func (r *s3Recorder) start(t *testing.T) *reelProc {
	t.Helper()
	r.debug = freeAddr(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(r.srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServe(t, r.dst(), "--bucket", r.bucket, "--s3-create-bucket", "--statedir", r.stateDir,
		"--access-key", r.srv.AccessKey, "--secret-key-file", secret, "--debug-listen", r.debug)
}

// env is the environment with the server's credentials.
func (r *s3Recorder) env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + r.srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + r.srv.SecretKey}
}

// partsUploaded returns how many bytes of multipart uploads in progress
// the bucket holds (parts of live recordings that went up).
func (r *s3Recorder) partsUploaded(t *testing.T, c *minio.Client) int64 {
	t.Helper()
	us, err := s3test.Uploads(t.Context(), c, r.bucket)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, u := range us {
		n += u.Size
	}
	return n
}

// reader opens the bucket the way "reel ls" does.
func (r *s3Recorder) reader(t *testing.T) store.Store {
	t.Helper()
	env := map[string]string{"AWS_ACCESS_KEY_ID": r.srv.AccessKey, "AWS_SECRET_ACCESS_KEY": r.srv.SecretKey}
	st, err := openStore(storeOptions{dst: r.dst() + "/" + r.bucket, readOnly: true, getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatalf("open the bucket: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// waitLanded waits until the bucket lists n recordings that are not live,
// and returns them.
func (r *s3Recorder) waitLanded(t *testing.T, n int, timeout time.Duration) []store.Info {
	t.Helper()
	st := r.reader(t)
	var infos []store.Info
	testutil.WaitForSeen(t, timeout, fmt.Sprintf("the bucket to list %d recordings", n), func() bool {
		infos = infos[:0]
		for info, err := range st.List(t.Context(), store.Filter{}) {
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			infos = append(infos, info)
		}
		if len(infos) > n {
			t.Fatalf("bucket lists %d recordings, want %d: %+v", len(infos), n, infos)
		}
		return len(infos) == n
	}, func() string { return fmt.Sprintf("%d recordings: %+v", len(infos), infos) })
	return infos
}

// object reads a recording from the bucket through the read path.
func (r *s3Recorder) object(t *testing.T, key string) []byte {
	t.Helper()
	rd, err := r.reader(t).Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// tail reads key's .tail object from versitygw's posix data directory,
// "" when there is none.
func (r *s3Recorder) tail(t *testing.T, key string) []byte {
	t.Helper()
	if r.srv.Name != "versitygw" {
		t.Fatal("tail: only versitygw keeps objects as plain files")
	}
	b, err := os.ReadFile(filepath.Join(r.srv.Dir, "data", r.bucket, filepath.FromSlash(store.TailKey(key))))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// metric returns the value of a metric on the recorder's /metrics.
func (r *s3Recorder) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + r.debug + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

func s3dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// checkDecodes checks that b is valid asciicast v2: a header object, then
// event arrays [time, code, data], every line whole.
func checkDecodes(t *testing.T, name string, b []byte) {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s: ends in a partial line", name)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if i == 0 {
			var h struct{ Version int }
			if err := json.Unmarshal(line, &h); err != nil || h.Version != 2 {
				t.Errorf("%s: header %q: %v", name, line, err)
				return
			}
			continue
		}
		var ev []any
		if err := json.Unmarshal(line, &ev); err != nil || len(ev) != 3 {
			t.Errorf("%s: line %d %q does not decode: %v", name, i+1, line, err)
			return
		}
	}
}

// castStream returns a recording of about size bytes: a header, then
// output events.
func castStream(size int, tag string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"version":2,"width":120,"height":40,"timestamp":%d,"srcNode":%q}`+"\n", time.Now().Unix(), tag)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `[%d.%06d,"o","%s line %d %s\r\n"]`+"\n", i/100, i%100*10000, tag, i, strings.Repeat("=", i%300))
	}
	return b.Bytes()
}

// TestS3RealClient streams recordings with Tailscale's own client to a
// recorder whose --dst is S3: each object equals what was sent, byte for
// byte, and reel ls reads the bucket.
func TestS3RealClient(t *testing.T) {
	for _, server := range s3test.Names {
		t.Run(server, func(t *testing.T) {
			r := newS3Recorder(t, server)
			p := r.start(t)
			ap := netip.MustParseAddrPort(p.addr)
			bodies := [][]byte{castStream(20<<20, "big"), castStream(4<<10, "small")} // the big one goes up in parts
			var wg sync.WaitGroup
			for _, body := range bodies {
				wg.Go(func() {
					wc, _, errc, err := sessionrecording.ConnectToRecorder(t.Context(), []netip.AddrPort{ap}, s3dial)
					if err != nil {
						t.Errorf("ConnectToRecorder: %v", err)
						return
					}
					for rest := body; len(rest) > 0; {
						i := bytes.IndexByte(rest, '\n') + 1
						if _, err := wc.Write(rest[:i]); err != nil {
							t.Errorf("write: %v", err)
							return
						}
						rest = rest[i:]
					}
					wc.Close()
					if err := <-errc; err != nil {
						t.Errorf("upload: %v", err)
					}
				})
			}
			wg.Wait()
			event := `{"type":"kubernetes-api-request","request":{"method":"GET","path":"/api/v1/pods"}}`
			if err := sessionrecording.SendEvent(ap, strings.NewReader(event), s3dial); err != nil {
				t.Errorf("SendEvent: %v", err)
			}

			infos := r.waitLanded(t, len(bodies), time.Minute)
			bySize := map[int64]store.Info{}
			for _, info := range infos {
				bySize[info.Size] = info
			}
			for _, body := range bodies {
				info, ok := bySize[int64(len(body))]
				if !ok {
					t.Errorf("no recording of %d bytes in the bucket: %+v", len(body), infos)
					continue
				}
				if info.Status != store.StatusComplete {
					t.Errorf("%s: status %s", info.Key, info.Status)
				}
				if got := r.object(t, info.Key); !bytes.Equal(got, body) {
					t.Errorf("%s: the object differs from what was sent (%d vs %d bytes)", info.Key, len(got), len(body))
				}
				if !strings.Contains(serveLogs(p), "recording stored") || !strings.Contains(serveLogs(p), info.Key) {
					t.Errorf("reel serve did not log where %s went", info.Key)
				}
			}

			// reel ls reads the same bucket from another process.
			cmd := exec.Command(reelExe(t), "ls", "--dst", r.dst()+"/"+r.bucket)
			cmd.Env = append(os.Environ(), r.env()...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("reel ls: %v\n%s", err, out)
			}
			for _, info := range infos {
				if name := strings.TrimSuffix(filepath.Base(info.Key), ".cast"); !strings.Contains(string(out), info.Node) {
					t.Errorf("reel ls does not show %s (%s):\n%s", info.Key, name, out)
				}
			}

			// Stopping drains the spool: the event lands too.
			p.cmd.Process.Signal(syscall.SIGTERM)
			if err := p.wait(); err != nil {
				t.Fatalf("reel serve: %v", err)
			}
			var n int
			for ev, err := range r.reader(t).ListEvents(t.Context(), infos[0].Node, time.Time{}, time.Time{}) {
				if err != nil {
					t.Fatal(err)
				}
				if string(ev.Data) != event {
					t.Errorf("event = %s, want %s", ev.Data, event)
				}
				n++
			}
			if n != 1 {
				t.Errorf("the bucket has %d events, want 1", n)
			}
		})
	}
}

// liveStreams opens n v2 uploads to addr and keeps writing asciicast to
// them (some lines split across writes) until stop is closed.
func liveStreams(t *testing.T, addr string, n int, stop <-chan struct{}) ([]*ackStream, *sync.WaitGroup) {
	streams := make([]*ackStream, n)
	for i := range streams {
		hc := h2cClient()
		t.Cleanup(hc.CloseIdleConnections)
		streams[i] = openAckStream(t, hc, addr)
	}
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			s.write(fmt.Appendf(nil, `{"version":2,"width":80,"height":24,"timestamp":%d,"srcNode":"n%d"}`+"\n", time.Now().Unix(), i))
			pad := 10 + i*50 // stream 0 is slow, the last fast enough to fill parts
			if i == n-1 {
				pad = 4000
			}
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				line := fmt.Sprintf(`[%d.%03d,"o","stream %d line %d %s\r\n"]`+"\n", j/1000, j%1000, i, j, strings.Repeat("x", pad+j%100))
				if j%7 == 0 {
					if s.write([]byte(line[:10])) != nil || s.write([]byte(line[10:])) != nil {
						return
					}
				} else if s.write([]byte(line)) != nil {
					return
				}
				if i == 0 {
					time.Sleep(time.Millisecond) // a slow sender: a rate, not a wait
				}
			}
		})
	}
	return streams, &wg
}

// TestS3Kill9KeepsEveryAckedByte kills the recorder mid-session, after at
// least one part of a live recording went up: after a restart every acked
// byte is in the bucket, and every object decodes.
func TestS3Kill9KeepsEveryAckedByte(t *testing.T) {
	r := newS3Recorder(t, "versitygw")
	p := r.start(t)
	s3 := r.srv.Client(t)
	const n = 8
	stop := make(chan struct{})
	streams, wg := liveStreams(t, p.addr, n, stop)
	// Kill once every stream has acks and the fast one has a part (8 MiB,
	// reel's part size) in the bucket: recovery must then complete a
	// multipart upload, not just upload a spool file.
	var parts int64
	testutil.WaitForSeen(t, testutil.DefaultWait, "acks on every stream and a part in the bucket", func() bool {
		for _, s := range streams {
			if s.acked.Load() == 0 {
				return false
			}
		}
		parts = r.partsUploaded(t, s3)
		return parts > 0
	}, func() string { return ackedList(streams) })
	acked := make([]int64, n)
	for i, s := range streams {
		acked[i] = s.acked.Load()
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait()
	close(stop)
	for _, s := range streams {
		s.pw.CloseWithError(io.ErrClosedPipe)
	}
	wg.Wait()
	var total int64
	for _, a := range acked {
		total += a
	}
	if r.partsUploaded(t, s3) == 0 {
		t.Fatal("no part in the bucket after the kill: the test would prove nothing about multipart recovery")
	}

	p2 := r.start(t)
	infos := r.waitLanded(t, n, time.Minute)
	if !strings.Contains(serveLogs(p2), "recovered interrupted recording") && !strings.Contains(serveLogs(p2), "closed out a recording interrupted") {
		t.Errorf("the restart did not log the recovery:\n%s", serveLogs(p2))
	}
	byNode := map[string][]byte{}
	for _, info := range infos {
		if info.Status != store.StatusInterrupted {
			t.Errorf("%s: status %q, want interrupted", info.Key, info.Status)
		}
		b := r.object(t, info.Key)
		checkDecodes(t, info.Key, b)
		var h struct{ SrcNode string }
		json.Unmarshal(b[:bytes.IndexByte(b, '\n')+1], &h)
		byNode[h.SrcNode] = append(b, r.tail(t, info.Key)...)
	}
	for i, s := range streams {
		got := byNode[fmt.Sprintf("n%d", i)]
		switch {
		case int64(len(got)) < acked[i]:
			t.Errorf("stream %d: %d bytes acked, %d in the bucket", i, acked[i], len(got))
		case !bytes.Equal(got, s.sent.Bytes()[:len(got)]):
			t.Errorf("stream %d: the bucket holds bytes that were not sent", i)
		}
	}
	// The restart completed the upload it found rather than leave it.
	if left := r.partsUploaded(t, s3); left != 0 {
		t.Errorf("%d bytes of multipart uploads left in the bucket after recovery", left)
	}
	t.Logf("%d streams, %d bytes acked before kill -9 (%d in parts already uploaded), all in the bucket", n, total, parts)
}

// TestS3OutageKeepsEveryAckedByte stops the S3 server mid-session: acks go
// on from the spool, uploads retry, and when the server is back every
// recording lands whole.
func TestS3OutageKeepsEveryAckedByte(t *testing.T) {
	r := newS3Recorder(t, "versitygw")
	p := r.start(t)
	const n = 8
	stop := make(chan struct{})
	streams, wg := liveStreams(t, p.addr, n, stop)
	testutil.WaitForSeen(t, testutil.DefaultWait, "acks on every stream", func() bool {
		for _, s := range streams {
			if s.acked.Load() == 0 {
				return false
			}
		}
		return true
	}, func() string { return ackedList(streams) })

	r.srv.Stop()
	before := make([]int64, n)
	for i, s := range streams {
		before[i] = s.acked.Load()
	}
	// The streams go on; the fast one fills parts that cannot go up.
	testutil.WaitForSeen(t, testutil.DefaultWait, "a failed upload during the outage (else the test proves nothing)", func() bool {
		return r.metric(t, "reel_s3_upload_retries_total") != "0"
	}, func() string { return serveLogs(p) })
	testutil.WaitForSeen(t, testutil.DefaultWait, "acks on every stream during the outage", func() bool {
		for i, s := range streams {
			if s.acked.Load() <= before[i] {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("before the outage: %v; now: %s", before, ackedList(streams)) })
	if v := r.metric(t, "reel_s3_spool_bytes"); v == "0" {
		t.Errorf("reel_s3_spool_bytes = %s during the outage", v)
	}
	r.srv.Restart(t)
	// Uploads resume while the sessions are still live.
	testutil.WaitForSeen(t, testutil.DefaultWait, "the failed uploads to go through after the restart", func() bool {
		return r.metric(t, "reel_s3_uploads_failing") == "0"
	}, func() string { return serveLogs(p) })
	close(stop)
	wg.Wait()
	for _, s := range streams {
		s.pw.Close() // the sender ends the session normally
		<-s.done
	}

	infos := r.waitLanded(t, n, 2*time.Minute)
	byNode := map[string]store.Info{}
	for _, info := range infos {
		b := r.object(t, info.Key)
		var h struct{ SrcNode string }
		json.Unmarshal(b[:bytes.IndexByte(b, '\n')+1], &h)
		byNode[h.SrcNode] = info
		if info.Status != store.StatusComplete {
			continue // checked below
		}
		checkDecodes(t, info.Key, b)
		var i int
		fmt.Sscanf(h.SrcNode, "n%d", &i)
		if i < 0 || i >= n || !bytes.Equal(b, streams[i].sent.Bytes()) {
			t.Errorf("%s (%s): the object differs from what was sent", info.Key, h.SrcNode)
		}
	}
	for i := range streams {
		info, ok := byNode[fmt.Sprintf("n%d", i)]
		if !ok || info.Status != store.StatusComplete {
			t.Errorf("stream %d: %+v, want a complete recording", i, info)
		}
	}
	for _, name := range []string{"reel_s3_uploads_pending", "reel_s3_spool_bytes"} {
		testutil.WaitForSeen(t, testutil.DefaultWait, name+" to be 0", func() bool { return r.metric(t, name) == "0" },
			func() string { return name + " = " + r.metric(t, name) })
	}
}

// ackedList says how many bytes each stream has had acked.
func ackedList(streams []*ackStream) string {
	var b strings.Builder
	for i, s := range streams {
		fmt.Fprintf(&b, "stream %d: %d bytes acked\n", i, s.acked.Load())
	}
	return b.String()
}
