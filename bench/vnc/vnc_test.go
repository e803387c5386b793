// Package vnc measures reel vnc (docs/vnc.md, "Figures"): storage per
// minute of desktop recordings, the latency the proxy adds to a
// framebuffer update, and the proxy's CPU per MB of RFB traffic. The
// desktop is TigerVNC's Xvnc at 1920×1080 with a full-screen xterm; the
// client is reel's RFB client (the same decoders every viewer has to
// run); the recorder is reel's, in process, on disk. Benchmarks, not
// tests: `make test` does not run them. Run from the repository root:
//
//	go test ./bench/vnc -run '^$' -bench . -benchtime 1x -v
//	go test ./bench/vnc -run '^$' -bench Latency -benchtime 1x -v -args -updates 500
package vnc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/rfb/rfbtest"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
)

var (
	seconds = flag.Int("seconds", 30, "how long each storage scenario runs")
	updates = flag.Int("updates", 200, "full-screen updates per latency run")
)

const w, h = 1920, 1080

// setup starts the desktop with a full-screen xterm, a recorder on disk
// and the proxy, recording everything.
type setup struct {
	d     *rfbtest.Desktop
	dir   string
	proxy string
	tls   *tls.Config
}

func start(b *testing.B, xtermCmd string) *setup {
	b.Helper()
	d := rfbtest.StartDesktop(b, w, h)
	// A second, full-screen xterm on top of the small one.
	xt := exec.Command("xterm", "-display", d.Display, "-geometry", "319x82+0+0", "-fa", "", "-fn", "fixed", "+sb",
		"-bg", "white", "-fg", "black", "-e", "sh", "-c", xtermCmd)
	if err := xt.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { xt.Process.Kill(); xt.Wait() })

	dir := b.TempDir()
	st, err := fsstore.Open(dir, fsstore.Options{MinFree: -1})
	if err != nil {
		b.Fatal(err)
	}
	rs := &recorder.Server{Store: st}
	rln, _ := net.Listen("tcp", "127.0.0.1:0")
	go rs.Serve(rln)
	b.Cleanup(func() { shutdown(rs.Shutdown); st.Close() })

	cert, pool := selfSigned(b)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("u:"+string(hash)+"\n"), 0o600)
	pol, err := policy.Parse("p", []byte(fmt.Sprintf(`{"recorders": {"tag:r": [%q]}, "desktop": [{"action": "accept", "src": ["*"], "dst": ["*"], "recorder": ["tag:r"], "enforceRecorder": true}]}`, rln.Addr().String())))
	if err != nil {
		b.Fatal(err)
	}
	srv := &rfb.Server{
		Upstream: d.Addr, UpstreamPassword: rfbtest.VNCPassword,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Auth:      &rfb.UserFile{Path: users}, Policy: func() *policy.Policy { return pol },
		Recording: &sender.Client{BufferSize: 64 << 20}, Log: slog.New(slog.DiscardHandler),
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	b.Cleanup(func() { shutdown(srv.Shutdown) })
	return &setup{d: d, dir: dir, proxy: ln.Addr().String(), tls: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
}

// client logs in, through the proxy or directly to Xvnc.
func (s *setup) client(b *testing.B, direct bool, encs ...int32) *rfb.Client {
	b.Helper()
	addr, cfg := s.proxy, rfb.ClientConfig{User: "u", Password: "pw", TLS: s.tls}
	if direct {
		addr, cfg = s.d.Addr, rfb.ClientConfig{VNCPassword: rfbtest.VNCPassword}
	}
	cfg.Encodings = encs
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := rfb.NewClient(conn, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// follow keeps asking for incremental updates, as a viewer does, until
// stop closes.
func follow(c *rfb.Client, stop chan struct{}) chan error {
	done := make(chan error, 1)
	go func() {
		c.RequestUpdate(false)
		for {
			select {
			case <-stop:
				c.Close()
				done <- nil
				return
			default:
			}
			typ, err := c.ReadMessage()
			if err != nil {
				done <- err
				return
			}
			if typ == 0 {
				c.RequestUpdate(true)
			}
		}
	}()
	return done
}

// key returns the path of the session's recording.
func (s *setup) key(b *testing.B) string {
	m, _ := filepath.Glob(filepath.Join(s.dir, "*", "*"+store.KindDesktop.Ext()))
	if len(m) != 1 {
		b.Fatalf("recordings: %v", m)
	}
	return m[0]
}

// recording waits for the session's recording to be complete and scans it.
func (s *setup) recording(b *testing.B) (*desktop.Index, int64) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		m, _ := filepath.Glob(filepath.Join(s.dir, "*", "*"+store.KindDesktop.Ext()))
		if len(m) == 1 {
			if _, err := os.Stat(filepath.Join(s.dir, ".reel", "open", filepath.Base(filepath.Dir(m[0])), filepath.Base(m[0]))); os.IsNotExist(err) {
				data, _ := os.ReadFile(m[0])
				ix, err := desktop.Scan(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				return ix, int64(len(data))
			}
		}
		time.Sleep(50 * time.Millisecond) // a load tool polling a file, not a test
	}
	b.Fatal("no complete recording")
	return nil, 0
}

// BenchmarkStorageTyping: text typed into a full-screen xterm at about
// five characters a second.
func BenchmarkStorageTyping(b *testing.B) {
	s := start(b, "exec sh")
	c := s.client(b, false)
	stop := make(chan struct{})
	done := follow(c, stop)
	time.Sleep(2 * time.Second) // let the first keyframe go
	text := strings.Repeat("the quick brown fox jumps over the lazy dog ", 100)
	typed := exec.Command("xdotool", "type", "--delay", "200", text)
	typed.Env = append(os.Environ(), "DISPLAY="+s.d.Display)
	typed.Start()
	time.Sleep(time.Duration(*seconds) * time.Second)
	typed.Process.Kill()
	typed.Wait()
	close(stop)
	<-done
	ix, size := s.recording(b)
	perMin := float64(size) / ix.Duration.Minutes()
	b.ReportMetric(perMin/1024, "KiB/min")
	b.ReportMetric(float64(len(ix.Keyframes)), "keyframes")
	b.Logf("typing at 1920x1080: %d bytes in %v (%d records, %d keyframes): %.0f KiB/min", size, ix.Duration.Round(time.Millisecond), ix.Records, len(ix.Keyframes), perMin/1024)
}

// BenchmarkStorageRedraw: the full-screen xterm is filled with new text
// and cleared twice a second: every update redraws the whole screen.
func BenchmarkStorageRedraw(b *testing.B) {
	s := start(b, `while :; do clear; ls -lR /usr/share | head -n 80; sleep 0.5; done`)
	c := s.client(b, false)
	stop := make(chan struct{})
	done := follow(c, stop)
	time.Sleep(time.Duration(*seconds) * time.Second)
	close(stop)
	<-done
	ix, size := s.recording(b)
	redraws := ix.Duration.Seconds() * 2
	perMin := float64(size) / ix.Duration.Minutes()
	// A keyframe is exactly one full 1920x1080 screen.
	data, _ := os.ReadFile(s.key(b))
	var kf []float64
	for i, k := range ix.Keyframes {
		end := int64(len(data))
		if i+1 < len(ix.Keyframes) {
			end = ix.Keyframes[i+1].Off
		}
		if nl := bytes.IndexByte(data[k.Off:end], '\n'); nl >= 0 {
			kf = append(kf, float64(nl+1))
		}
	}
	slices.Sort(kf)
	// Teleport stores PNGs of changed regions: the same last full screen
	// as a PNG (Go's encoder, default compression), for comparison.
	if last, err := desktop.FrameAt(bytes.NewReader(data), ix, ix.Keyframes[len(ix.Keyframes)-1].T); err == nil {
		rgba := image.NewRGBA(image.Rect(0, 0, last.Screen.W, last.Screen.H))
		for i, v := range last.Screen.Pix {
			rgba.Pix[4*i], rgba.Pix[4*i+1], rgba.Pix[4*i+2], rgba.Pix[4*i+3] = byte(v>>16), byte(v>>8), byte(v), 255
		}
		var pb bytes.Buffer
		png.Encode(&pb, rgba)
		b.ReportMetric(float64(pb.Len())/1024, "KiB/png-screen")
		b.Logf("the same full screen as PNG: %.1f KiB", float64(pb.Len())/1024)
	}
	if len(kf) > 0 {
		b.ReportMetric(kf[len(kf)/2]/1024, "KiB/keyframe")
		b.Logf("a full 1920x1080 screen (keyframe): median %.1f KiB of %d", kf[len(kf)/2]/1024, len(kf))
	}
	b.ReportMetric(perMin/1024, "KiB/min")
	b.ReportMetric(float64(size)/redraws/1024, "KiB/redraw")
	b.Logf("full-screen redraws at 1920x1080: %d bytes in %v (%d records, %d keyframes): %.0f KiB/min, %.1f KiB per redraw (Teleport: ~250 KB)", size, ix.Duration.Round(time.Millisecond), ix.Records, len(ix.Keyframes), perMin/1024, float64(size)/redraws/1024)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLatency: full-screen (1920×1080) updates asked for with a
// non-incremental request, one at a time, directly from Xvnc and through
// the recording proxy: the time from request to the whole update decoded,
// p50 and p99, and the process's CPU per MB of RFB traffic (the client's
// share is the direct run's and is subtracted).
func BenchmarkLatency(b *testing.B) {
	for _, enc := range []struct {
		name string
		enc  int32
	}{{"ZRLE", rfb.EncZRLE}, {"Raw", rfb.EncRaw}} {
		b.Run(enc.name, func(b *testing.B) { latency(b, enc.enc) })
	}
}

func latency(b *testing.B, enc int32) {
	s := start(b, `ls -lR /usr/share | head -n 80; exec sh`)
	type result struct {
		lat   []time.Duration
		cpu   time.Duration
		bytes int64
	}
	run := func(direct bool) result {
		c := s.client(b, direct, enc)
		var r result
		c.RequestUpdate(false)
		for {
			if typ, err := c.ReadMessage(); err != nil || typ == 0 {
				break
			}
		}
		n0, cpu0 := c.BytesRead(), cpuTime()
		for i := 0; i < *updates; i++ {
			t0 := time.Now()
			if err := c.RequestUpdate(false); err != nil {
				b.Fatal(err)
			}
			for {
				typ, err := c.ReadMessage()
				if err != nil {
					b.Fatal(err)
				}
				if typ == 0 {
					break
				}
			}
			r.lat = append(r.lat, time.Since(t0))
		}
		r.cpu, r.bytes = cpuTime()-cpu0, c.BytesRead()-n0
		c.Close()
		slices.Sort(r.lat)
		return r
	}
	pct := func(l []time.Duration, p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
	direct := run(true)
	proxied := run(false)
	mb := float64(proxied.bytes) / (1 << 20)
	b.ReportMetric(float64(pct(proxied.lat, 0.5)-pct(direct.lat, 0.5))/1e6, "ms-added-p50")
	b.ReportMetric(float64(pct(proxied.lat, 0.99)-pct(direct.lat, 0.99))/1e6, "ms-added-p99")
	b.ReportMetric(float64(proxied.cpu-direct.cpu)/1e6/mb, "cpu-ms/MB")
	b.Logf("direct:  p50 %v p99 %v, %.1f MB, CPU %v", pct(direct.lat, 0.5), pct(direct.lat, 0.99), float64(direct.bytes)/(1<<20), direct.cpu)
	b.Logf("proxied: p50 %v p99 %v, %.1f MB, CPU %v (proxy, recorder and client in this process)", pct(proxied.lat, 0.5), pct(proxied.lat, 0.99), mb, proxied.cpu)
	b.Logf("proxy CPU: %.1f ms per MB of RFB traffic", float64(proxied.cpu-direct.cpu)/1e6/mb)
}

func shutdown(f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f(ctx)
}

func selfSigned(b *testing.B) (tls.Certificate, *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
