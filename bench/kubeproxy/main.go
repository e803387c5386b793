// Command kubeproxy measures what "reel kube-proxy" costs kubectl (see
// docs/kubernetes.md, "Performance"), against the same kubectl talking
// straight to the same test API server (internal/kubetest, served over TLS
// as a real API server is; -plain for plain HTTP), in the same run, runs
// alternating:
//
//	latency:     wall time of "kubectl exec test -- true", p50 and p99,
//	             through the proxy (recorded, enforceRecorder) and direct;
//	             the added p50.
//	throughput:  "kubectl exec test -- cat FILE" of a large file, the bytes
//	             kubectl writes per second, recorded through the proxy
//	             against direct, as a ratio (medians); every recording is
//	             checked to hold the whole file.
//
// reel serve (the recorder, on disk with durable acks) and reel kube-proxy
// run as child processes; the API server runs in this process. Run from
// the repository root:
//
//	go run ./bench/kubeproxy
//	go run ./bench/kubeproxy -n 200 -mib 100 -runs 5 -spdy
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reel-rec/reel/bench/internal/load"
	"github.com/reel-rec/reel/internal/kubetest"
)

func main() {
	n := flag.Int("n", 100, "latency: execs through each path")
	mib := flag.Int("mib", 100, "throughput: size of the file to cat, MiB")
	runs := flag.Int("runs", 3, "throughput: runs through each path, alternating")
	spdy := flag.Bool("spdy", false, "use SPDY instead of WebSocket")
	plain := flag.Bool("plain", false, "serve the test API server over plain HTTP (default: TLS, as a real API server; both paths then pay a handshake per connection)")
	reel := flag.String("reel", "", "reel binary (default: built from ./cmd/reel)")
	noRecord := flag.Bool("no-record", false, "do not record through the proxy: what the proxy alone costs")
	serveArgs := flag.String("serve-args", "", "extra arguments for reel serve, space-separated (e.g. \"--index off\" to see what indexing costs)")
	kubectl := flag.String("kubectl", "kubectl", "kubectl binary")
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "reel-bench-kubeproxy")
	must(err)
	defer os.RemoveAll(dir)
	if *reel == "" {
		*reel = filepath.Join(dir, "reel")
		out, err := exec.Command("go", "build", "-o", *reel, "./cmd/reel").CombinedOutput()
		if err != nil {
			log.Fatalf("building reel (run from the repository root): %v\n%s", err, out)
		}
	}

	// The API server, in process.
	work := filepath.Join(dir, "pod")
	must(os.MkdirAll(work, 0o755))
	kube := &kubetest.Server{Dir: work}
	hs := httptest.NewUnstartedServer(kube.Handler())
	var ca []byte
	if *plain {
		hs.Start()
	} else {
		hs.StartTLS() // HTTP/1.1 only, as kubectl's upgrades need
		ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
		kube.TLS = hs.Client().Transport.(*http.Transport).TLSClientConfig
	}
	defer hs.Close()
	kube.URL = hs.URL
	direct := filepath.Join(dir, "direct.kubeconfig")
	must(os.WriteFile(direct, []byte(kubeconfig(kube.URL, ca)), 0o600))

	// The recorder and the proxy.
	defer stopChildren()
	start := func(args ...string) {
		c := exec.Command(*reel, args...)
		c.Stdout, c.Stderr = io.Discard, os.Stderr
		must(c.Start())
		children = append(children, c)
	}
	recAddr, proxyAddr := load.FreeAddr(), load.FreeAddr()
	dst := filepath.Join(dir, "recordings")
	start(append([]string{"serve", "--dst", dst, "--listen", recAddr, "--min-free", "0", "--log-level", "warn"}, strings.Fields(*serveArgs)...)...)
	waitListen(recAddr)
	pol := filepath.Join(dir, "policy.hujson")
	rule := `"recorder": ["tag:rec"], "enforceRecorder": true`
	if *noRecord {
		rule = `"action": "accept"`
	}
	must(os.WriteFile(pol, []byte(fmt.Sprintf(`{"recorders": {"tag:rec": [%q]},
  "kubernetes": [{"src": ["*"], "namespaces": ["*"], %s}]}`, recAddr, rule)), 0o600))
	state := filepath.Join(dir, "state")
	start("kube-proxy", "--listen", proxyAddr, "--policy", pol, "--kubeconfig", direct, "--state-dir", state, "--log-level", "warn")
	waitListen(proxyAddr)
	out, err := exec.Command(*reel, "kube-proxy", "--print-kubeconfig", "--state-dir", state, "--server", "https://"+proxyAddr,
		"--token", "bench").Output() // kubectl asks for a password over TLS without credentials
	must(err)
	proxied := filepath.Join(dir, "proxy.kubeconfig")
	must(os.WriteFile(proxied, out, 0o600))

	proto := "websocket"
	if *spdy {
		proto = "spdy"
	}
	env := append(os.Environ(), fmt.Sprintf("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=%t", !*spdy), "HOME="+dir)
	run := func(kc string, stdout io.Writer, args ...string) time.Duration {
		c := exec.Command(*kubectl, append([]string{"--kubeconfig", kc, "exec", "test", "--"}, args...)...)
		c.Env, c.Stdout = env, stdout
		var stderr strings.Builder
		c.Stderr = &stderr
		t0 := time.Now()
		if err := c.Run(); err != nil {
			die("kubectl %v (%s): %v\n%s", args, filepath.Base(kc), err, stderr.String())
		}
		return time.Since(t0)
	}

	scheme := "TLS"
	if *plain {
		scheme = "plain HTTP"
	}
	fmt.Printf("reel kube-proxy vs direct, kubectl %s, %s, API server over %s\n", kubectlVersion(*kubectl), proto, scheme)
	// Warm up both paths (kubectl's discovery cache, connections).
	run(direct, io.Discard, "true")
	run(proxied, io.Discard, "true")

	recorded := "recorded"
	if *noRecord {
		recorded = "not recorded"
	}
	var lat [2][]time.Duration
	for i := 0; i < *n; i++ {
		lat[0] = append(lat[0], run(direct, io.Discard, "true"))
		lat[1] = append(lat[1], run(proxied, io.Discard, "true"))
	}
	d50, d99 := pct(lat[0], 50), pct(lat[0], 99)
	p50, p99 := pct(lat[1], 50), pct(lat[1], 99)
	fmt.Printf("latency, kubectl exec -- true, %d each:\n", *n)
	fmt.Printf("  direct  p50 %6.1f ms  p99 %6.1f ms\n", ms(d50), ms(d99))
	fmt.Printf("  proxy   p50 %6.1f ms  p99 %6.1f ms   (%s)\n", ms(p50), ms(p99), recorded)
	fmt.Printf("  added   p50 %+6.1f ms  p99 %+6.1f ms\n", ms(p50-d50), ms(p99-d99))

	file := filepath.Join(work, "big.txt")
	writeText(file, *mib)
	size := int64(*mib) << 20
	var tput [2][]float64
	var lags []time.Duration
	for i := 0; i < *runs; i++ {
		for j, kc := range []string{direct, proxied} {
			cw := &countWriter{}
			d := run(kc, cw, "cat", "big.txt")
			if cw.n != size {
				die("kubectl wrote %d bytes, want %d", cw.n, size)
			}
			tput[j] = append(tput[j], float64(size)/d.Seconds()/(1<<20))
			if j == 1 && !*noRecord {
				// The recorder may still be receiving the tail: let it
				// finish before the next run, so that neither path is
				// measured while the other's recording uploads.
				lag, err := waitRecordings(dst, i+1, size)
				must(err)
				lags = append(lags, lag)
			}
		}
	}
	fmt.Printf("throughput, kubectl exec -- cat of %d MiB, %d runs each:\n", *mib, *runs)
	fmt.Printf("  direct  %7.1f MiB/s (median)\n", load.Median(tput[0]))
	fmt.Printf("  proxy   %7.1f MiB/s (median, %s)\n", load.Median(tput[1]), recorded)
	fmt.Printf("  ratio   %.2fx\n", load.Median(tput[1])/load.Median(tput[0]))
	if *noRecord {
		fmt.Println("  (not recorded: -no-record)")
		return
	}
	fmt.Printf("  every recorded cat holds the whole file (%d recordings checked); the recording was whole %.0f ms (median) after kubectl exited\n",
		*runs, ms(load.Median(lags)))
}

// waitRecordings waits until the runs largest recordings each carry at
// least size bytes, and says how long that took. It gives up after two
// minutes: a recording still short then has lost bytes.
func waitRecordings(dst string, runs int, size int64) (time.Duration, error) {
	t0 := time.Now()
	for {
		err := checkRecordings(dst, runs, size)
		if err == nil {
			return time.Since(t0), nil
		}
		if time.Since(t0) > 2*time.Minute {
			return 0, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkRecordings checks that the runs largest recordings each carry at
// least size bytes of output.
func checkRecordings(dst string, runs int, size int64) error {
	files, _ := filepath.Glob(filepath.Join(dst, "*", "*.cast"))
	var sizes []int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err == nil {
			sizes = append(sizes, fi.Size())
		}
	}
	slices.Sort(sizes)
	if len(sizes) < runs {
		return fmt.Errorf("%d recordings, want at least %d", len(sizes), runs)
	}
	for _, s := range sizes[len(sizes)-runs:] {
		if s < size {
			return fmt.Errorf("a recording of %d bytes, want at least %d", s, size)
		}
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// kubeconfig points at server, trusting the PEM certificate ca (if any).
func kubeconfig(server string, ca []byte) string {
	cluster, user := fmt.Sprintf("{server: %q}", server), "{}"
	if ca != nil {
		// Over TLS without credentials kubectl asks for a password.
		cluster = fmt.Sprintf("{server: %q, certificate-authority-data: %s}", server, base64.StdEncoding.EncodeToString(ca))
		user = "{token: bench}"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: %s}]
users: [{name: u, user: %s}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]
current-context: c
`, cluster, user)
}

// writeText writes mib MiB of random text lines (valid UTF-8).
func writeText(path string, mib int) {
	f, err := os.Create(path)
	must(err)
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	line := make([]byte, 100)
	for n := 0; n < mib<<20; n += len(line) {
		for i := range line[:99] {
			line[i] = 'a' + byte(r.IntN(26))
		}
		line[99] = '\n'
		if rest := mib<<20 - n; rest < len(line) {
			line = line[:rest]
		}
		w.Write(line)
	}
	must(w.Flush())
	must(f.Close())
}

func kubectlVersion(kubectl string) string {
	out, _ := exec.Command(kubectl, "version", "--client").Output()
	return strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(out), "\n", 2)[0], "Client Version: "))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func waitListen(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	die("nothing listens on %s", addr)
}

// children are the reel processes, stopped at exit, also on failure.
var children []*exec.Cmd

// stopChildren stops the proxy before the recorder, so that no recording
// is cut by the bench's own exit.
func stopChildren() {
	for i := len(children) - 1; i >= 0; i-- {
		children[i].Process.Kill()
		children[i].Wait()
	}
	children = nil
}

func die(format string, args ...any) {
	stopChildren()
	log.Fatalf(format, args...)
}

func must(err error) {
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		die("%v", err)
	}
}
