package rfb_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// novncDir is where scripts/test-deps.sh installs noVNC and
// playwright-core from testdata/novnc's lockfile.
func novncDir(t testing.TB) string {
	dir := os.Getenv("REEL_NOVNC_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			testutil.SkipOrFail(t, "no cache directory: %v", err)
		}
		dir = filepath.Join(cache, "reel-test", "novnc")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@novnc", "novnc", "core", "rfb.js")); err != nil {
		testutil.SkipOrFail(t, "noVNC is not installed in %s (run scripts/test-deps.sh): %v", dir, err)
	}
	return dir
}

// browser is noVNC in headless Chromium, driven by testdata/novnc/drive.cjs.
type browser struct {
	stdin  io.WriteCloser
	result string
	logs   *testutil.Buffer
	done   chan struct{}
}

func startNoVNC(t *testing.T, p *proxy, user, pass string) *browser {
	t.Helper()
	dir := novncDir(t)
	testutil.NeedTool(t, "node")
	testutil.NeedTool(t, "chromium")
	page, err := os.ReadFile("testdata/novnc/page.html")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(dir, "node_modules", "@novnc", "novnc"))))
	mux.HandleFunc("/reel-test.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(page)
	})
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)
	q := url.Values{"ws": {"wss://" + p.wsAddr + "/"}, "user": {user}, "pass": {pass}}
	cmd := exec.Command("node", "testdata/novnc/drive.cjs", web.URL+"/reel-test.html?"+q.Encode())
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	b := &browser{logs: new(testutil.Buffer), done: make(chan struct{})}
	cmd.Stderr = b.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if b.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		b.close()
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-b.done
		}
		if t.Failed() {
			t.Logf("browser output:\n%s", b.logs.String())
		}
	})
	select {
	case b.result = <-lines:
	case <-time.After(120 * time.Second):
		t.Fatalf("noVNC gave no result in 120 s\n%s", b.logs.String())
	}
	return b
}

func (b *browser) close() { b.stdin.Close() }

// noVNC in headless Chromium logs in through reel vnc's WebSocket; what is
// typed is recorded, and the recorded screen matches the server's
// screenshot within JPEG's loss (noVNC asks for Tight with JPEG).
func TestNoVNC(t *testing.T) {
	d := startDesktop(t, 800, 600)
	r := startRecorder(t)
	p := startProxy(t, d, []netip.AddrPort{r.addr}, true, func(s *rfb.Server) {
		s.WebSocketOrigins = []string{"127.0.0.1:*"}
	})

	bad := startNoVNC(t, p, userName, "wrong")
	if bad.result != "FAILED reel: authentication failed" {
		t.Errorf("wrong password: noVNC shows %q", bad.result)
	}
	bad.close()

	b := startNoVNC(t, p, userName, userPass)
	if b.result != "CONNECTED" {
		t.Fatalf("noVNC: %s\n%s", b.result, p.logs.String())
	}
	var key string
	testutil.WaitForSeen(t, 60*time.Second, "a live desktop recording", func() bool {
		if ds := r.desktops(t); len(ds) == 1 && ds[0].Status == store.StatusLive {
			key = ds[0].Key
			return true
		}
		return false
	}, p.logs.String)
	d.Must(t, "type", "--delay", "10", "echo hello-from-novnc")
	d.Must(t, "key", "Return")
	d.Must(t, "search", "--class", "xterm", "windowmove", "%@", "150", "100")
	shot := d.StableScreenshot(t)
	// Tight's JPEG is lossy: the tolerance is a mean channel error of 2
	// and a worst of 96; lossless rectangles match exactly.
	var worst int
	var mean float64
	testutil.WaitForSeen(t, 30*time.Second, "the recorded screen to match the server's screenshot", func() bool {
		pl, _ := lastFrame(t, r.read(t, key))
		if pl.Screen.W != shot.W || pl.Screen.H != shot.H {
			return false
		}
		worst, mean = maxChannelDiff(pl.Screen, shot)
		return mean <= 2 && worst <= 96
	}, func() string { return fmt.Sprintf("worst %d, mean %.2f\n%s", worst, mean, p.logs.String()) })
	t.Logf("noVNC recording vs screenshot: worst channel difference %d, mean %.3f", worst, mean)

	b.close()
	testutil.WaitForSeen(t, 60*time.Second, "the recording to be complete", func() bool {
		ds := r.desktops(t)
		return len(ds) == 1 && ds[0].Status == store.StatusComplete
	}, p.logs.String)
	if !strings.Contains(p.logs.String(), "session started") {
		t.Errorf("no session in the log")
	}
}
