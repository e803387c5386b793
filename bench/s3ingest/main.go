// Command s3ingest measures figure P8: ingest of N concurrent recordings
// into S3 storage (a versitygw server on loopback) as a ratio to disk
// storage, both measured in the same run (see docs/benchmarks.md).
//
// Two levels:
//
//	serve  "reel serve" as a child process, fed by Tailscale's real client
//	       (tailscale.com/sessionrecording, v2 with durable acks), once with
//	       --dst a directory and once with --dst s3+http://versitygw.
//	store  the store interface in process, as the recorder drives it
//	       (Write, Sync at least every 100 ms, Close), fsstore against
//	       s3store: the storage layer alone.
//
// For S3, two rates are reported: "acked" (every stream fully acknowledged,
// i.e. spooled and synced: what senders see, and the P8 figure) and
// "landed" (every object complete in the bucket). Run from the repository
// root, after scripts/install-s3-servers.sh:
//
//	go run ./bench/s3ingest                         # serve level, 32 x 16 MiB, 3 runs
//	go run ./bench/s3ingest -level store -streams 32 -mib 16
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-rec/reel/bench/internal/load"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/store/s3store"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
)

func main() {
	level := flag.String("level", "serve", "what to measure: serve (reel serve + real client) or store (the store interface)")
	streams := flag.Int("streams", 32, "concurrent recordings")
	mib := flag.Int("mib", 16, "MiB each recording sends")
	runs := flag.Int("runs", 3, "runs of each side, alternating")
	reel := flag.String("reel", "", "serve level: reel binary (default: built from ./cmd/reel)")
	dir := flag.String("dir", "", "scratch directory on the disk to measure (default: a temp dir)")
	flag.Parse()
	log.SetFlags(0)

	if *dir == "" {
		d, err := os.MkdirTemp("", "reel-s3bench")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	srv := startVersitygw(*dir)
	defer srv.Stop()

	bodies := make([][][]byte, *streams)
	total := 0
	for i := range bodies {
		bodies[i] = load.Lines(*mib, uint64(i))
		total += load.Size(bodies[i])
	}
	fmt.Printf("P8 (%s level): %d streams x %d MiB (%.0f MiB total), %d runs each, dir %s, versitygw %s\n",
		*level, *streams, *mib, float64(total)/(1<<20), *runs, *dir, srv.Addr)

	var disk, acked, landed []float64
	for run := range *runs {
		var d, a, l float64
		switch *level {
		case "serve":
			if *reel == "" {
				*reel = filepath.Join(*dir, "reel")
				if out, err := exec.Command("go", "build", "-o", *reel, "./cmd/reel").CombinedOutput(); err != nil {
					log.Fatalf("building reel (run from the repository root): %v\n%s", err, out)
				}
			}
			d = serveDisk(*reel, filepath.Join(*dir, fmt.Sprintf("disk-%d", run)), bodies, total)
			a, l = serveS3(*reel, srv, filepath.Join(*dir, fmt.Sprintf("state-%d", run)), fmt.Sprintf("bench-%d", run), bodies, total)
		case "store":
			d = storeDisk(filepath.Join(*dir, fmt.Sprintf("disk-%d", run)), bodies, total)
			a, l = storeS3(srv, filepath.Join(*dir, fmt.Sprintf("spool-%d", run)), fmt.Sprintf("bench-%d", run), bodies, total)
		default:
			log.Fatalf("-level %q: want serve or store", *level)
		}
		disk, acked, landed = append(disk, d), append(acked, a), append(landed, l)
		fmt.Printf("  run %d: disk %7.1f MiB/s   s3 acked %7.1f MiB/s   s3 landed %7.1f MiB/s\n", run+1, d, a, l)
	}
	md, ma, ml := load.Median(disk), load.Median(acked), load.Median(landed)
	fmt.Printf("P8 median: disk %.1f MiB/s, s3 acked %.1f MiB/s (ratio %.3f, goal >= 0.8), s3 landed %.1f MiB/s (ratio %.3f)\n",
		md, ma, ma/md, ml, ml/md)
}

// startVersitygw runs the versitygw that scripts/install-s3-servers.sh
// built.
func startVersitygw(dir string) *s3test.Server {
	t := &benchTB{dir: dir}
	defer func() {
		if t.failed != "" {
			log.Fatal(t.failed)
		}
	}()
	return s3test.Start(t, "versitygw")
}

func rate(total int, d time.Duration) float64 { return float64(total) / (1 << 20) / d.Seconds() }

// --- serve level ---

type child struct {
	cmd   *exec.Cmd
	addr  string
	debug string // --debug-listen, for /metrics
	done  chan struct{}
}

func startServe(reel string, env []string, args ...string) *child {
	addr := load.FreeAddr()
	debug := load.FreeAddr()
	cmd := exec.Command(reel, append([]string{"serve", "--listen", addr, "--debug-listen", debug, "--min-free", "0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.Discard
	cmd.Stderr = io.Discard
	if os.Getenv("BENCH_VERBOSE") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	c := &child{cmd: cmd, addr: addr, debug: debug, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	if err := load.WaitListen(addr, c.done); err != nil {
		log.Fatalf("reel serve %v: %v", args, err)
	}
	return c
}

func (c *child) stop() {
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// metric reads one value from the child's /metrics.
func (c *child) metric(name string) string {
	resp, err := http.Get("http://" + c.debug + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// sendReel uploads every body with Tailscale's client and waits until
// each upload is fully acknowledged.
func sendReel(addr string, bodies [][][]byte) {
	if err := load.Send(netip.MustParseAddrPort(addr), load.Dial, bodies); err != nil {
		log.Fatal(err)
	}
}

func serveDisk(reel, dst string, bodies [][][]byte, total int) float64 {
	c := startServe(reel, nil, "--dst", dst)
	defer os.RemoveAll(dst)
	defer c.stop()
	start := time.Now()
	sendReel(c.addr, bodies)
	return rate(total, time.Since(start))
}

func serveS3(reel string, srv *s3test.Server, stateDir, bucket string, bodies [][][]byte, total int) (acked, landed float64) {
	c := startServe(reel, []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey},
		"--dst", "s3+http://"+srv.Addr, "--bucket", bucket, "--s3-create-bucket", "--statedir", stateDir)
	defer os.RemoveAll(stateDir)
	defer c.stop()
	start := time.Now()
	sendReel(c.addr, bodies)
	acked = rate(total, time.Since(start))
	if err := load.WaitUntil(10*time.Minute, func() bool {
		return c.metric("reel_s3_uploads_pending") == "0" && c.metric("reel_s3_objects_landed_total") == fmt.Sprint(len(bodies))
	}); err != nil {
		log.Fatalf("objects did not land: %v", err)
	}
	landed = rate(total, time.Since(start))
	os.RemoveAll(filepath.Join(srv.Dir, "data", bucket))
	return acked, landed
}

// --- store level ---

// ingest drives st as the recorder does: one writer goroutine per stream
// writing event lines, a Sync at least every 100 ms, Close at the end.
func ingest(st store.Store, bodies [][][]byte) {
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			w, err := st.Create(context.Background(), fmt.Sprintf("node-%d", i%4), time.Now())
			if err != nil {
				log.Fatal(err)
			}
			last := time.Now()
			for _, line := range body {
				if _, err := w.Write(line); err != nil {
					log.Fatal(err)
				}
				if time.Since(last) > 100*time.Millisecond {
					if err := w.Sync(); err != nil {
						log.Fatal(err)
					}
					last = time.Now()
				}
			}
			if err := w.Close(store.StatusComplete, ""); err != nil {
				log.Fatal(err)
			}
		})
	}
	wg.Wait()
}

func storeDisk(dir string, bodies [][][]byte, total int) float64 {
	st, err := fsstore.Open(dir, fsstore.Options{MinFree: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	defer st.Close()
	start := time.Now()
	ingest(st, bodies)
	return rate(total, time.Since(start))
}

func storeS3(srv *s3test.Server, spool, bucket string, bodies [][][]byte, total int) (acked, landed float64) {
	st, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: srv.Addr, Insecure: true, Bucket: bucket, CreateBucket: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, SpoolDir: spool,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(spool)
	defer st.Close()
	start := time.Now()
	ingest(st, bodies)
	acked = rate(total, time.Since(start))
	if err := st.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	landed = rate(total, time.Since(start))
	os.RemoveAll(filepath.Join(srv.Dir, "data", bucket))
	return acked, landed
}

// benchTB lets s3test run outside a test.
type benchTB struct {
	testing.TB // nil: only the methods below are called
	dir        string
	n          int
	failed     string
}

func (b *benchTB) Helper()                   {}
func (b *benchTB) Logf(string, ...any)       {}
func (b *benchTB) Cleanup(func())            {}
func (b *benchTB) Fatalf(f string, a ...any) { log.Fatalf(f, a...) }
func (b *benchTB) Skipf(f string, a ...any)  { log.Fatalf(f, a...) }
func (b *benchTB) TempDir() string {
	b.n++
	d := filepath.Join(b.dir, fmt.Sprintf("s3server-%d", b.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		log.Fatal(err)
	}
	return d
}
