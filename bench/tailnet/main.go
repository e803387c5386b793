// Command tailnet measures what tailnet mode costs: reel's ingest figures
// with senders reaching "reel serve --tailnet" over an in-process tailnet
// (userspace WireGuard through tsnet on both ends, a local control server,
// DERP and STUN on loopback), as ratios to the same figures over plain
// loopback TCP (see docs/benchmarks.md and docs/tailnet.md):
//
//	P1:   aggregate throughput of N concurrent uploads by Tailscale's real
//	      client (tailscale.com/sessionrecording, v2 with durable acks).
//	idle: M concurrent idle v2 sessions: the recorder's RSS per session and
//	      the worst interval between ack frames.
//
// The recorder runs as a child process; the senders share one tsnet node in
// this process (Tailscale SSH servers are separate machines; one node is the
// harder case for the tailnet side: all streams share one WireGuard peer).
// Nothing leaves loopback: no logs are uploaded and the tailnet's servers are
// local. Run from the repository root:
//
//	go run ./bench/tailnet                       # both figures
//	go run ./bench/tailnet -mode p1 -streams 32 -mib 16 -runs 3
//	go run ./bench/tailnet -mode idle -sessions 1000 -hold 40s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/reel-rec/reel/bench/internal/load"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
)

func main() {
	mode := flag.String("mode", "all", "what to measure: p1, idle or all")
	streams := flag.Int("streams", 32, "p1: concurrent uploads")
	mib := flag.Int("mib", 16, "p1: MiB each upload sends")
	runs := flag.Int("runs", 3, "p1: runs of each side, alternating")
	sessions := flag.Int("sessions", 1000, "idle: concurrent idle sessions")
	hold := flag.Duration("hold", 40*time.Second, "idle: how long to hold them (over 30 s proves the client's ack window is met)")
	reel := flag.String("reel", "", "reel binary (default: built from ./cmd/reel)")
	dir := flag.String("dir", "", "scratch directory on the disk to measure (default: a temp dir)")
	flag.Parse()
	log.SetFlags(0)

	if err := tailnettest.SetNodeEnv(); err != nil {
		log.Fatal(err)
	}
	os.Setenv("TS_ASSUME_NETWORK_UP_FOR_TEST", "1") // also inside a loopback-only namespace
	if *dir == "" {
		d, err := os.MkdirTemp("", "reel-bench-tailnet")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *reel == "" {
		*reel = filepath.Join(*dir, "reel")
		out, err := exec.Command("go", "build", "-o", *reel, "./cmd/reel").CombinedOutput()
		if err != nil {
			log.Fatalf("building reel (run from the repository root): %v\n%s", err, out)
		}
	}
	ctl, err := tailnettest.Start(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ctl.Close()
	ctx := context.Background()
	sender, err := tailnet.Start(ctx, tailnet.Config{Hostname: "bench-sender", Dir: filepath.Join(*dir, "sender"), ControlURL: ctl.URL, Ephemeral: true})
	if err != nil {
		log.Fatal(err)
	}
	defer sender.Close()

	b := &bench{reel: *reel, dir: *dir, ctl: ctl, sender: sender}
	if *mode == "p1" || *mode == "all" {
		b.p1(*streams, *mib, *runs)
	}
	if *mode == "idle" || *mode == "all" {
		b.idle(*sessions, *hold)
	}
}

type bench struct {
	reel   string
	dir    string
	ctl    *tailnettest.Control
	sender *tailnet.Server
	n      int
}

// recorder is a running reel serve child and how to reach it.
type recorder struct {
	cmd  *exec.Cmd
	addr netip.AddrPort
	dial load.DialFunc
}

func (r *recorder) stop() {
	r.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

var tailnetURL = regexp.MustCompile(`recording API on the tailnet at http://(100\.[0-9.]+:80)`)

// start runs reel serve on loopback or on the tailnet, storing in dst.
func (b *bench) start(onTailnet bool, dst string) *recorder {
	b.n++
	var args []string
	var dial load.DialFunc
	if onTailnet {
		args = []string{"serve", "--tailnet", "--hostname", fmt.Sprintf("recorder-%d", b.n), "--statedir", filepath.Join(b.dir, fmt.Sprintf("state-%d", b.n)), "--dst", dst, "--min-free", "0"}
		dial = b.sender.Dial
	} else {
		args = []string{"serve", "--listen", load.FreeAddr(), "--dst", dst, "--min-free", "0"}
		dial = load.Dial
	}
	cmd := exec.Command(b.reel, args...)
	cmd.Env = append(os.Environ(), "TSRECORDER_LOGIN_SERVER="+b.ctl.URL)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if os.Getenv("BENCH_VERBOSE") != "" {
		cmd.Stderr = io.MultiWriter(pw, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	found := make(chan netip.AddrPort, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if m := tailnetURL.FindStringSubmatch(line); m != nil && onTailnet {
				found <- netip.MustParseAddrPort(m[1])
			}
			if i := strings.Index(line, "recording API on http://"); i >= 0 && !onTailnet {
				f := strings.Fields(line[i+len("recording API on http://"):])
				found <- netip.MustParseAddrPort(strings.TrimSuffix(f[0], ","))
			}
		}
	}()
	select {
	case ap := <-found:
		return &recorder{cmd: cmd, addr: ap, dial: dial}
	case <-time.After(60 * time.Second):
		log.Fatalf("reel serve %v did not come up", args)
	}
	return nil
}

// p1 alternates loopback and tailnet runs and prints throughputs and the
// ratio of the medians.
func (b *bench) p1(streams, mib, runs int) {
	bodies := make([][][]byte, streams)
	total := 0
	for i := range bodies {
		bodies[i] = load.Lines(mib, uint64(i))
		total += load.Size(bodies[i])
	}
	fmt.Printf("P1: %d streams x %d MiB (%.0f MiB total), %d runs each\n", streams, mib, float64(total)/(1<<20), runs)
	var plain, overTailnet []float64
	for run := range runs {
		for _, onTailnet := range []bool{false, true} {
			dst := filepath.Join(b.dir, fmt.Sprintf("p1-%d-%t", run, onTailnet))
			r := b.start(onTailnet, dst)
			start := time.Now()
			if err := load.Send(r.addr, r.dial, bodies); err != nil {
				log.Fatalf("upload (tailnet %t): %v", onTailnet, err)
			}
			rate := float64(total) / (1 << 20) / time.Since(start).Seconds()
			r.stop()
			os.RemoveAll(dst)
			if onTailnet {
				overTailnet = append(overTailnet, rate)
			} else {
				plain = append(plain, rate)
			}
		}
		fmt.Printf("  run %d: loopback %7.1f MiB/s   tailnet %7.1f MiB/s\n", run+1, plain[run], overTailnet[run])
	}
	mp, mt := load.Median(plain), load.Median(overTailnet)
	fmt.Printf("P1 median: loopback %.1f MiB/s, tailnet %.1f MiB/s, ratio tailnet/loopback %.3f\n", mp, mt, mt/mp)
}

// idle holds many idle v2 sessions open on each side in turn.
func (b *bench) idle(sessions int, hold time.Duration) {
	type result struct {
		perSession float64 // KiB
		worst      time.Duration
		ended      int
	}
	res := map[bool]result{}
	for _, onTailnet := range []bool{false, true} {
		dst := filepath.Join(b.dir, fmt.Sprintf("idle-%t", onTailnet))
		r := b.start(onTailnet, dst)
		time.Sleep(500 * time.Millisecond)
		before := rss(r.cmd.Process.Pid)
		during, worst, ended := holdIdle(r, sessions, hold)
		r.stop()
		os.RemoveAll(dst)
		res[onTailnet] = result{float64(during-before) / 1024 / float64(sessions), worst, ended}
		name := map[bool]string{false: "loopback", true: "tailnet"}[onTailnet]
		fmt.Printf("idle %s: %d sessions for %s: recorder RSS %.1f MiB before, %.1f MiB during: %.1f KiB per session; worst ack interval %s; ended early %d\n",
			name, sessions, hold, float64(before)/(1<<20), float64(during)/(1<<20), res[onTailnet].perSession, worst.Round(time.Millisecond), ended)
	}
	p, t := res[false], res[true]
	fmt.Printf("idle ratios tailnet/loopback: RSS per session %.2f, worst ack interval %.2f\n", t.perSession/p.perSession, t.worst.Seconds()/p.worst.Seconds())
}

// holdIdle opens sessions idle v2 uploads (header only), holds them, and
// returns the recorder's RSS half-way, the worst gap between ack frames
// any session saw, and how many ended early.
func holdIdle(r *recorder, sessions int, hold time.Duration) (int64, time.Duration, int) {
	idle, err := load.HoldIdle(r.addr, r.dial, sessions)
	if err != nil {
		log.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(hold / 2)
	during := rss(r.cmd.Process.Pid)
	time.Sleep(hold - hold/2)
	worst, ended := idle.Worst()
	return during, worst, ended
}

func rss(pid int) int64 {
	n, err := load.RSS(pid)
	if err != nil {
		log.Fatal(err)
	}
	return n
}
