package rfb_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		os.Unsetenv(v)
	}
	goleak.VerifyTestMain(m)
}

// viewer is TigerVNC's vncviewer, on its own Xvfb.
type viewer struct {
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan struct{}
}

func startViewer(t testing.TB, p *proxy, user, pass string, args ...string) *viewer {
	t.Helper()
	args = append([]string{"-X509CA", p.pki.caFile, "-SecurityTypes", "X509Plain"}, args...)
	return startViewerAt(t, p.addr, []string{"VNC_USERNAME=" + user, "VNC_PASSWORD=" + pass}, args...)
}

// startViewerAt runs vncviewer against addr with env and args added.
func startViewerAt(t testing.TB, addr string, env []string, args ...string) *viewer {
	t.Helper()
	testutil.NeedTool(t, "vncviewer")
	display := startX(t, "Xvfb", "-screen", "0", "1600x1200x24")
	home := t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	all := append([]string{"-AlertOnFatalError=0", "-ReconnectOnError=0", "-RemoteResize=0", "-Shared=1"}, args...)
	all = append(all, "127.0.0.1::"+port)
	cmd := exec.Command("vncviewer", all...)
	cmd.Env = append(append(os.Environ(), "DISPLAY="+display, "HOME="+home), env...)
	v := &viewer{cmd: cmd, out: new(testutil.Buffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = v.out, v.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		v.stop()
		if t.Failed() {
			t.Logf("vncviewer output:\n%s", v.out.String())
		}
	})
	return v
}

func (v *viewer) stop() {
	v.cmd.Process.Kill()
	<-v.done
}

// lossless are vncviewer's flags for exact frames.
var lossless = []string{"-AutoSelect=0", "-FullColor", "-NoJPEG", "-PreferredEncoding", "ZRLE"}

// A real vncviewer logs in through reel vnc to a real Xvnc showing an
// xterm; what is typed and a moved window are recorded, and the recorded
// screen equals the server's own screenshot, pixel for pixel.
func TestTigerVNCViewer(t *testing.T) {
	for _, enc := range []string{"ZRLE", "Hextile", "Tight", "Raw"} {
		t.Run(enc, func(t *testing.T) {
			d := startDesktop(t, 800, 600)
			r := startRecorder(t)
			p := startProxy(t, d, []netip.AddrPort{r.addr}, true, nil)
			v := startViewer(t, p, userName, userPass, "-AutoSelect=0", "-FullColor", "-NoJPEG", "-PreferredEncoding", enc)

			var key string
			testutil.WaitForSeen(t, 60*time.Second, "a live desktop recording", func() bool {
				if ds := r.desktops(t); len(ds) == 1 && ds[0].Status == store.StatusLive {
					key = ds[0].Key
					return true
				}
				return false
			}, p.logs.String)

			d.Must(t, "type", "--delay", "10", "echo reel-was-here-"+enc)
			d.Must(t, "key", "Return")
			matchLive(t, d, r, key, p)

			d.Must(t, "search", "--class", "xterm", "windowmove", "%@", "200", "150")
			matchLive(t, d, r, key, p)

			v.stop()
			testutil.WaitForSeen(t, 30*time.Second, "the recording to be complete", func() bool {
				ds := r.desktops(t)
				return len(ds) == 1 && ds[0].Status == store.StatusComplete
			}, func() string { return fmt.Sprintf("%+v\n%s", r.desktops(t), p.logs.String()) })
			data := r.read(t, key)
			pl, ix := lastFrame(t, data)
			h := ix.Header
			if h.User != userName || h.Width != 800 || h.Height != 600 || h.Upstream != d.Addr || h.ConnectionID == "" || !strings.HasPrefix(h.Source, "127.0.0.1:") {
				t.Errorf("header %+v", h)
			}
			if h.Keys || h.Clipboard {
				t.Errorf("keys or clipboard recorded without a rule asking: %+v", h)
			}
			if bytes.Contains(data, []byte{desktop.TypeKey}) && countType(t, data, desktop.TypeKey) > 0 {
				t.Errorf("key records without a rule asking")
			}
			if n := diffPixels(pl.Screen, d.StableScreenshot(t)); n != 0 {
				t.Errorf("final recorded frame differs from the server's screenshot in %d pixels", n)
			}
		})
	}
}

// matchLive waits for the screen to settle, takes the server's screenshot,
// and waits for the live recording's latest frame to equal it exactly.
func matchLive(t *testing.T, d *desk, r *rec, key string, p *proxy) {
	t.Helper()
	shot := d.StableScreenshot(t)
	var last int
	var where string
	testutil.WaitForSeen(t, 30*time.Second, "the recorded screen to equal the server's screenshot", func() bool {
		pl, _ := lastFrame(t, r.read(t, key))
		last = diffPixels(pl.Screen, shot)
		where = describeDiff(pl.Screen, shot)
		return last == 0
	}, func() string { return fmt.Sprintf("%d pixels differ: %s\n%s", last, where, p.logs.String()) })
}

func countType(t testing.TB, data []byte, typ byte) int {
	t.Helper()
	dec, err := desktop.NewDecoder(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		rec, err := dec.Next()
		if err != nil {
			return n
		}
		if rec.Type == typ {
			n++
		}
	}
}

// describeDiff says where two screens differ: the bounding box and the
// first differing pixel.
func describeDiff(got, want *desktop.Image) string {
	if got.W != want.W || got.H != want.H {
		return fmt.Sprintf("size %dx%d, want %dx%d", got.W, got.H, want.W, want.H)
	}
	box := desktop.Rect{}
	first := ""
	for i := range got.Pix {
		if got.Pix[i] != want.Pix[i] {
			x, y := i%got.W, i/got.W
			box = box.Union(desktop.Rect{X: x, Y: y, W: 1, H: 1})
			if first == "" {
				first = fmt.Sprintf("(%d,%d) %06x want %06x", x, y, got.Pix[i], want.Pix[i])
			}
		}
	}
	return fmt.Sprintf("in %+v, first %s", box, first)
}
