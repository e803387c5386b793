// Command ingest measures reel serve's ingest figures (see docs/benchmarks.md):
//
//	P1:   aggregate throughput of N concurrent uploads by Tailscale's real
//	      client (tailscale.com/sessionrecording, v2 with durable acks) into
//	      "reel serve" (its search index and web UI on; and again with
//	      --index off and no UI, for the ratio), as a ratio to a raw loopback TCP -> file baseline
//	      (each stream copied to its own file and fsynced before the sender
//	      is told it is done) measured in the same run.
//	idle: M concurrent idle v2 sessions: the recorder's RSS per session and
//	      the worst interval between ack frames.
//
// Both servers run as child processes so that their costs are measured
// alike. Run from the repository root:
//
//	go run ./bench/ingest                      # both figures
//	go run ./bench/ingest -mode p1 -streams 32 -mib 32 -runs 3
//	go run ./bench/ingest -mode idle -sessions 1000 -hold 40s
//	go run ./bench/ingest -mode idle -sessions 10000 -hold 40s
//	go run ./bench/ingest -mode seal -streams 32 -mib 32 -runs 3
//
// The seal mode (not part of "all") measures what sealing costs: P1 into
// reel serve with sealing on (the default) and with --no-seal, alternating
// in the same run; then "reel verify --all" over the last sealed store,
// beside sha256sum over the same recording files.
//
// The idle mode raises this process's open-files limit with setrlimit
// (soft and hard, as root) to fit the sessions on both ends; reel serve,
// its child, inherits it. It runs reel serve with its connection and
// session limits off (-1), so that every figure comes from the same
// configuration whatever the count.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"github.com/reel-rec/reel/bench/internal/load"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "all", "what to measure: p1, idle or all (p1 and idle); seal")
	streams := flag.Int("streams", 32, "p1: concurrent uploads")
	mib := flag.Int("mib", 32, "p1: MiB each upload sends")
	runs := flag.Int("runs", 3, "p1: runs of each side, alternating")
	sessions := flag.Int("sessions", 1000, "idle: concurrent idle sessions")
	perConn := flag.Int("per-conn", 1, "idle: sessions per HTTP/2 connection (Tailscale's client uses 1; more saves file descriptors)")
	hold := flag.Duration("hold", 40*time.Second, "idle: how long to hold them (over 30 s proves the client's ack window is met)")
	reel := flag.String("reel", "", "reel binary (default: built from ./cmd/reel)")
	dir := flag.String("dir", "", "scratch directory on the disk to measure (default: a temp dir)")
	baselineServer := flag.String("baseline-server", "", "internal: run the baseline TCP->file server on this address")
	baselineDst := flag.String("baseline-dst", "", "internal: baseline server's directory")
	naiveServer := flag.String("naive-server", "", "internal: run the naive h2c recorder on this address")
	flag.Parse()

	if *baselineServer != "" {
		runBaselineServer(*baselineServer, *baselineDst)
		return
	}
	if *naiveServer != "" {
		runNaiveServer(*naiveServer, *baselineDst)
		return
	}
	log.SetFlags(0)
	if *dir == "" {
		d, err := os.MkdirTemp("", "reel-bench")
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
	if *mode == "p1" || *mode == "all" {
		p1(*reel, *dir, *streams, *mib, *runs)
	}
	if *mode == "seal" {
		pSeal(*reel, *dir, *streams, *mib, *runs)
	}
	if *mode == "idle" || *mode == "all" {
		// reel serve holds a file and a share of a connection per
		// session; this process, a share of a connection.
		raiseNoFile(uint64(*sessions + (*sessions+*perConn-1)/(*perConn) + 256))
		idle(*reel, *dir, *sessions, *perConn, *hold)
	}
}

type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(name string, args ...string) *child {
	cmd := exec.Command(name, args...)
	cmd.Stderr = io.Discard
	cmd.Stdout = io.Discard
	if os.Getenv("BENCH_VERBOSE") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	return &child{cmd: cmd}
}

// stop ends the child and returns the CPU time it used.
func (c *child) stop() time.Duration {
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	return c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
}

// selfCPU is the CPU time this process (the senders) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitListen(addr string) {
	if err := load.WaitListen(addr, nil); err != nil {
		log.Fatal(err)
	}
}

// p1 alternates reel and baseline runs and prints throughputs and ratio.
func p1(reel, dir string, streams, mib, runs int) {
	bodies := make([][][]byte, streams)
	total := 0
	for i := range bodies {
		bodies[i] = load.Lines(mib, uint64(i))
		total += load.Size(bodies[i])
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("P1: %d streams x %d MiB (%.0f MiB total), %d runs each, dir %s\n", streams, mib, float64(total)/(1<<20), runs, dir)
	var reelRates, baseRates, naiveRates, offRates []float64
	var cpu [6]time.Duration // baseline server, senders; reel server, senders; naive server, senders
	for run := range runs {
		// Baseline: raw TCP -> file, fsync at the end of each stream.
		bdst := filepath.Join(dir, fmt.Sprintf("base-%d", run))
		os.MkdirAll(bdst, 0o755)
		baddr := load.FreeAddr()
		b := startChild(self, "-baseline-server", baddr, "-baseline-dst", bdst)
		waitListen(baddr)
		c0 := selfCPU()
		rate := measure(total, func() error { return sendRaw(baddr, bodies) })
		cpu[1] += selfCPU() - c0
		cpu[0] += b.stop()
		os.RemoveAll(bdst)
		baseRates = append(baseRates, rate)

		// A naive recorder: the same protocol and client, no work.
		ndst := filepath.Join(dir, fmt.Sprintf("naive-%d", run))
		os.MkdirAll(ndst, 0o755)
		naddr := load.FreeAddr()
		nv := startChild(self, "-naive-server", naddr, "-baseline-dst", ndst)
		waitListen(naddr)
		c0 = selfCPU()
		rate = measure(total, func() error { return sendReel(naddr, bodies) })
		cpu[5] += selfCPU() - c0
		cpu[4] += nv.stop()
		os.RemoveAll(ndst)
		naiveRates = append(naiveRates, rate)

		// reel serve with the real client, its search index and web UI on.
		rdst := filepath.Join(dir, fmt.Sprintf("reel-%d", run))
		raddr := load.FreeAddr()
		r := startChild(reel, "serve", "--dst", rdst, "--listen", raddr, "--min-free", "0", "--ui", "--ui-listen", load.FreeAddr())
		waitListen(raddr)
		c0 = selfCPU()
		rate = measure(total, func() error { return sendReel(raddr, bodies) })
		cpu[3] += selfCPU() - c0
		cpu[2] += r.stop()
		os.RemoveAll(rdst)
		reelRates = append(reelRates, rate)

		// reel serve again with its search index and UI off: what they cost.
		odst := filepath.Join(dir, fmt.Sprintf("reel-noindex-%d", run))
		oaddr := load.FreeAddr()
		o := startChild(reel, "serve", "--dst", odst, "--listen", oaddr, "--min-free", "0", "--index", "off")
		waitListen(oaddr)
		rate = measure(total, func() error { return sendReel(oaddr, bodies) })
		o.stop()
		os.RemoveAll(odst)
		offRates = append(offRates, rate)
		fmt.Printf("  run %d: baseline %7.1f MiB/s   naive h2c recorder %7.1f MiB/s   reel %7.1f MiB/s   reel --index off (no UI) %7.1f MiB/s\n", run+1, baseRates[run], naiveRates[run], reelRates[run], offRates[run])
	}
	fmt.Printf("P1 with the search index and the web UI on / both off: %.1f / %.1f MiB/s, ratio %.3f (goal >= 0.9)\n",
		load.Median(reelRates), load.Median(offRates), load.Median(reelRates)/load.Median(offRates))
	mb, mn, mr := load.Median(baseRates), load.Median(naiveRates), load.Median(reelRates)
	fmt.Printf("P1 median: baseline %.1f MiB/s, naive recorder %.1f MiB/s, reel %.1f MiB/s\n", mb, mn, mr)
	fmt.Printf("P1 ratio reel/baseline %.3f (goal >= 0.9); naive/baseline %.3f; reel/naive %.3f\n", mr/mb, mn/mb, mr/mn)
	gib := float64(total*runs) / (1 << 30)
	fmt.Printf("CPU s per GiB (server + senders): baseline %.2f + %.2f; naive %.2f + %.2f; reel %.2f + %.2f\n",
		cpu[0].Seconds()/gib, cpu[1].Seconds()/gib, cpu[4].Seconds()/gib, cpu[5].Seconds()/gib, cpu[2].Seconds()/gib, cpu[3].Seconds()/gib)
}

func measure(total int, f func() error) float64 {
	start := time.Now()
	if err := f(); err != nil {
		log.Fatal(err)
	}
	return float64(total) / (1 << 20) / time.Since(start).Seconds()
}

// sendReel uploads every body concurrently with Tailscale's client and
// waits until the recorder has confirmed each upload.
func sendReel(addr string, bodies [][][]byte) error {
	return load.Send(netip.MustParseAddrPort(addr), load.Dial, bodies)
}

// sendRaw streams each body over its own TCP connection, half-closes, and
// waits for the server's one-byte "synced".
func sendRaw(addr string, bodies [][][]byte) error {
	errs := make(chan error, len(bodies))
	for _, body := range bodies {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for _, line := range body {
				if _, err := c.Write(line); err != nil {
					errs <- err
					return
				}
			}
			c.(*net.TCPConn).CloseWrite()
			var ok [1]byte
			_, err = io.ReadFull(c, ok[:])
			errs <- err
		}()
	}
	for range bodies {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// runBaselineServer: accept, copy the connection to a new file, fsync it,
// answer one byte.
func runBaselineServer(addr, dst string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	var n int
	var mu sync.Mutex
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		n++
		name := filepath.Join(dst, strconv.Itoa(n)+".cast")
		mu.Unlock()
		go func() {
			defer c.Close()
			f, err := os.Create(name)
			if err != nil {
				log.Fatal(err)
			}
			if _, err := io.Copy(f, c); err != nil {
				log.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
			f.Close()
			c.Write([]byte{1})
		}()
	}
}

// runNaiveServer is the least a v2 recorder can do: answer HEAD /v2/record,
// copy each POST /v2/record body to a file, fsync it, end the response. No
// acks while streaming, no checks, no crash safety.
func runNaiveServer(addr, dst string) {
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("HEAD /v2/record", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /v2/record", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		f, err := os.Create(filepath.Join(dst, strconv.FormatInt(n.Add(1), 10)+".cast"))
		if err != nil {
			log.Fatal(err)
		}
		c, err := io.Copy(f, r.Body)
		if err != nil {
			log.Fatal(err)
		}
		f.Sync()
		f.Close()
		fmt.Fprintf(w, "{\"ack\":%d}\n", c)
	})
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Addr: addr, Handler: mux, Protocols: &p}
	log.Fatal(srv.ListenAndServe())
}

// idle holds many idle v2 sessions open and reports the recorder's RSS per
// session and the worst gap between ack frames any session saw.
func idle(reel, dir string, sessions, perConn int, hold time.Duration) {
	dst := filepath.Join(dir, "idle")
	addr := load.FreeAddr()
	r := startChild(reel, "serve", "--dst", dst, "--listen", addr, "--min-free", "0",
		"--max-conns", "-1", "--max-conns-per-sender", "-1", "--max-sessions", "-1", "--max-sessions-per-sender", "-1")
	defer func() { r.stop() }()
	defer os.RemoveAll(dst)
	waitListen(addr)
	time.Sleep(500 * time.Millisecond)
	before := mustRSS(r.cmd.Process.Pid)

	type sess struct {
		pw      *io.PipeWriter
		worst   time.Duration
		frames  int
		ended   error
		endedAt time.Time
	}
	ss := make([]*sess, sessions)
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	var hc *http.Client
	for i := range ss {
		s := &sess{}
		ss[i] = s
		if i%perConn == 0 {
			// A transport per perConn sessions: one connection each.
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			hc = &http.Client{Transport: &http.Transport{Protocols: &p}}
		}
		pr, pw := io.Pipe()
		s.pw = pw
		req, _ := http.NewRequest("POST", "http://"+addr+"/v2/record", pr)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			log.Fatalf("session %d: %v %v", i, err, resp)
		}
		go pw.Write([]byte(fmt.Sprintf(`{"version":2,"width":80,"height":24,"timestamp":%d}`+"\n", time.Now().Unix())))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			last := time.Now()
			for {
				line, err := br.ReadBytes('\n')
				now := time.Now()
				if err != nil {
					mu.Lock()
					s.ended, s.endedAt = err, now
					mu.Unlock()
					return
				}
				if strings.Contains(string(line), "error") {
					mu.Lock()
					s.ended, s.endedAt = fmt.Errorf("error frame: %s", line), now
					mu.Unlock()
					return
				}
				mu.Lock()
				if gap := now.Sub(last); gap > s.worst && s.frames > 0 {
					s.worst = gap
				}
				s.frames++
				mu.Unlock()
				last = now
			}
		}()
	}
	fmt.Printf("idle: %d sessions (%d per connection) open in %s\n", sessions, perConn, time.Since(start).Round(time.Millisecond))
	time.Sleep(hold / 2)
	during := mustRSS(r.cmd.Process.Pid)
	time.Sleep(hold - hold/2)
	mu.Lock()
	var worst time.Duration
	ended := 0
	for _, s := range ss {
		worst = max(worst, s.worst)
		if s.ended != nil {
			ended++
		}
	}
	mu.Unlock()
	fmt.Printf("idle: recorder RSS %.1f MiB before, %.1f MiB with %d idle sessions: %.1f KiB per session (goal <= 64)\n",
		float64(before)/(1<<20), float64(during)/(1<<20), sessions, float64(during-before)/1024/float64(sessions))
	fmt.Printf("idle: worst ack interval %s over %s (goal <= 6s); sessions ended early: %d\n", worst.Round(time.Millisecond), hold, ended)
	for _, s := range ss {
		s.pw.Close()
	}
	wg.Wait()
}

// raiseNoFile raises the open-files limit to at least n, soft and hard
// (raising the hard limit needs root), and says so. Children inherit it:
// Go restores the original soft limit in children only when the program
// did not set it itself.
func raiseNoFile(n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Fatal(err)
	}
	if lim.Cur >= n && lim.Max >= n {
		fmt.Printf("open-files limit %d/%d is enough for the sessions\n", lim.Cur, lim.Max)
		return
	}
	want := syscall.Rlimit{Cur: max(lim.Cur, n), Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		log.Fatalf("raising the open-files limit from %d/%d to %d (a hard limit needs CAP_SYS_RESOURCE): %v; -per-conn N puts N sessions on one connection and needs fewer", lim.Cur, lim.Max, n, err)
	}
	fmt.Printf("open-files limit raised with setrlimit from %d/%d to %d/%d\n", lim.Cur, lim.Max, want.Cur, want.Max)
}

func mustRSS(pid int) int64 {
	n, err := load.RSS(pid)
	if err != nil {
		log.Fatal(err)
	}
	return n
}

// pSeal measures P1 with sealing on and off, alternating, in the same run,
// then reel verify --all beside sha256sum over the same recordings.
func pSeal(reel, dir string, streams, mib, runs int) {
	bodies := make([][][]byte, streams)
	total := 0
	for i := range bodies {
		bodies[i] = load.Lines(mib, uint64(i))
		total += load.Size(bodies[i])
	}
	fmt.Printf("P1 sealing on/off: %d streams x %d MiB (%.0f MiB total), %d runs each, dir %s\n", streams, mib, float64(total)/(1<<20), runs, dir)
	var on, off []float64
	var cpuOn, cpuOff time.Duration // reel serve's CPU time
	kept := ""
	for run := range runs {
		order := []bool{true, false}
		if run%2 == 1 {
			order = []bool{false, true}
		}
		var rates [2]float64
		for _, seal := range order {
			dst := filepath.Join(dir, fmt.Sprintf("seal-%v-%d", seal, run))
			addr := load.FreeAddr()
			args := []string{"serve", "--dst", dst, "--listen", addr, "--min-free", "0"}
			if !seal {
				args = append(args, "--no-seal")
			}
			r := startChild(reel, args...)
			waitListen(addr)
			rate := measure(total, func() error { return sendReel(addr, bodies) })
			cpu := r.stop()
			if seal {
				cpuOn += cpu
			} else {
				cpuOff += cpu
			}
			if seal {
				on, rates[0] = append(on, rate), rate
				if kept != "" {
					os.RemoveAll(kept)
				}
				kept = dst
			} else {
				off, rates[1] = append(off, rate), rate
				os.RemoveAll(dst)
			}
		}
		fmt.Printf("  run %d: sealing on %7.1f MiB/s   off (--no-seal) %7.1f MiB/s\n", run+1, rates[0], rates[1])
	}
	mon, moff := load.Median(on), load.Median(off)
	fmt.Printf("P1 median: sealing on %.1f MiB/s, off %.1f MiB/s, ratio on/off %.3f (goal >= 0.95)\n", mon, moff, mon/moff)
	gib := float64(total*runs) / (1 << 30)
	fmt.Printf("reel serve CPU s per GiB: sealing on %.2f, off %.2f (ratio %.3f)\n", cpuOn.Seconds()/gib, cpuOff.Seconds()/gib, cpuOn.Seconds()/cpuOff.Seconds())

	// Verification throughput over the last sealed store.
	files, err := filepath.Glob(filepath.Join(kept, "*", "*.cast"))
	if err != nil || len(files) == 0 {
		log.Fatalf("no recordings in %s: %v", kept, err)
	}
	var bytes int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			log.Fatal(err)
		}
		bytes += fi.Size()
	}
	timed := func(name string, args ...string) float64 {
		cmd := exec.Command(name, args...)
		cmd.Stdout = io.Discard
		var errb strings.Builder
		cmd.Stderr = &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			log.Fatalf("%s: %v\n%s", name, err, errb.String())
		}
		return float64(bytes) / 1e9 / time.Since(start).Seconds()
	}
	var vr, sr []float64
	for range 3 { // alternating, the files in the page cache for both
		vr = append(vr, timed(reel, "verify", "--dst", kept, "--all", "--quiet"))
		sr = append(sr, timed("sha256sum", files...))
	}
	fmt.Printf("verify: %d recordings, %.2f GB: reel verify --all %.2f GB/s, sha256sum %.2f GB/s (medians of 3; ratio %.2f)\n",
		len(files), float64(bytes)/1e9, load.Median(vr), load.Median(sr), load.Median(vr)/load.Median(sr))
	os.RemoveAll(kept)
}
