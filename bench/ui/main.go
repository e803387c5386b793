// Command ui measures figure P7 (see docs/benchmarks.md): in headless
// Chromium, the time from a click at 95 % of the player's progress bar, on
// a large recording played in snapshot segments, to the player showing
// that moment's screen.
//
// It writes a recording of -mib MiB (a numbered line every 0.1 s, so a
// screen names its moment) into a disk store, serves the web UI
// (internal/web) on loopback, lets the UI cut the recording into segments
// once (timed and reported apart), then for each run loads the recording's
// page with the browser cache off, waits for the player, clicks at 95 %
// and times, in the page, from the mousedown event to the first DOM change
// that puts the expected line on the screen. Run from the repository root:
//
//	go run ./bench/ui                       # 1 GiB, 20 runs
//	go run ./bench/ui -mib 256 -runs 10
//
// It needs Debian's chromium. Not part of "make test".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/web"
)

func main() {
	mib := flag.Int("mib", 1024, "size of the recording, MiB")
	runs := flag.Int("runs", 20, "clicks to time")
	at := flag.Float64("at", 0.95, "where to click on the progress bar, 0 to 1")
	keep := flag.String("dir", "", "keep the store and segment cache here (reused by the next run); default a temporary directory")
	flag.Parse()
	if err := run(*mib, *runs, *at, *keep); err != nil {
		log.Fatal(err)
	}
}

func run(mib, runs int, at float64, keep string) error {
	dir := keep
	if dir == "" {
		d, err := os.MkdirTemp("", "reel-bench-ui-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	st, err := fsstore.Open(dir+"/store", fsstore.Options{MinFree: -1})
	if err != nil {
		return err
	}
	defer st.Close()
	key, lines, size, err := recording(st, dir, int64(mib)<<20)
	if err != nil {
		return err
	}
	fmt.Printf("recording %s: %d bytes, %d lines, %.1f s\n", key, size, lines, float64(lines)/10)

	srv := &web.Server{Store: st, Index: noIndex{}, Auth: benchAuth{}, CacheDir: dir + "/segments",
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	node, name, _ := strings.Cut(key, "/")
	page := base + "/r/" + node + "/" + name

	// The cut, once.
	start := time.Now()
	for {
		req, _ := http.NewRequest("GET", page+"/prepare", nil)
		req.AddCookie(&http.Cookie{Name: "bench", Value: "1"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var b strings.Builder
		buf := make([]byte, 256)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		resp.Body.Close()
		if strings.Contains(b.String(), `"error"`) {
			return fmt.Errorf("cut: %s", b.String())
		}
		if strings.Contains(b.String(), `"done":true`) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("cut into segments: %.1f s (once per recording; %.0f MB/s)\n", time.Since(start).Seconds(), float64(size)/1e6/time.Since(start).Seconds())

	path, err := exec.LookPath("chromium")
	if err != nil {
		return errors.New("chromium not found (apt-get install chromium)")
	}
	udd, err := os.MkdirTemp("", "reel-bench-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(udd)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.UserDataDir(udd), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-component-update", true))...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login")); err != nil {
		return err
	}
	if _, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		return err
	}
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.cookie = "bench=1; path=/"`),
	); err != nil {
		return err
	}
	want := int(at * float64(lines))
	var times []time.Duration
	for i := 0; i < runs; i++ {
		d, err := clickOnce(ctx, page, at, want, lines)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	p := func(q float64) time.Duration { return times[min(len(times)-1, int(q*float64(len(times))))] }
	fmt.Printf("P7 click at %.0f %% -> that moment's screen, %d runs: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms\n",
		at*100, len(times), ms(p(0.5)), ms(p(0.99)), ms(times[0]), ms(times[len(times)-1]))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// clickOnce loads the page, waits for the player, clicks at the fraction at
// of the progress bar and returns the time, measured in the page, from the
// mousedown to the screen showing a line within 1 % of want.
func clickOnce(ctx context.Context, page string, at float64, want, lines int) (time.Duration, error) {
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(".ap-progressbar")),
		chromedp.ScrollIntoView(chromedp.CSS(".ap-progressbar")),
	); err != nil {
		return 0, err
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`(() => { const t = document.querySelector(".ap-time-remaining"); return !!t && /\d/.test(t.textContent); })()`)); err != nil {
		return 0, err
	}
	// In the page: note the mousedown, and the first DOM change after it
	// that shows the wanted moment.
	setup := fmt.Sprintf(`(() => {
		window.__p7 = {t0: 0, t1: 0};
		document.addEventListener("mousedown", () => { window.__p7.t0 = performance.now(); }, {capture: true, once: true});
		const term = document.querySelector(".ap-term-text");
		const ok = () => {
			let last = -1;
			for (const l of term.querySelectorAll(".ap-line")) {
				const m = /line (\d+)/.exec(l.textContent);
				if (m) last = parseInt(m[1], 10);
			}
			return Math.abs(last - %d) <= %d;
		};
		new MutationObserver((_, obs) => {
			if (window.__p7.t0 > 0 && ok()) { window.__p7.t1 = performance.now(); obs.disconnect(); }
		}).observe(term, {subtree: true, childList: true, characterData: true});
		return true;
	})()`, want, lines/100)
	box, err := chromedp.Run(tctx, chromedp.Dimensions(chromedp.CSS(".ap-progressbar .ap-bar")))
	if err != nil {
		return 0, err
	}
	q := box.Border
	x, y := q[0]+at*(q[2]-q[0]), (q[1]+q[5])/2
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](setup), chromedp.MouseClickXY(x, y)); err != nil {
		return 0, err
	}
	got, err := chromedp.Run(tctx, chromedp.Poll[float64](`window.__p7.t1 > 0 ? window.__p7.t1 - window.__p7.t0 : 0`, chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		return 0, fmt.Errorf("the screen never showed line %d: %w", want, err)
	}
	return time.Duration(got * float64(time.Millisecond)), nil
}

// recording writes (or finds, in a kept directory) the recording.
func recording(st *fsstore.Store, dir string, size int64) (key string, lines int, n int64, err error) {
	ctx := context.Background()
	if b, err := os.ReadFile(dir + "/lines"); err == nil {
		fmt.Sscan(string(b), &lines)
		for info, err := range st.List(ctx, store.Filter{}) {
			if err == nil && info.Size >= size && lines > 0 {
				return info.Key, lines, info.Size, nil
			}
		}
		lines = 0
	}
	w, err := st.Create(ctx, "bench-node", time.Now())
	if err != nil {
		return "", 0, 0, err
	}
	cw := &countWriter{w: w}
	enc := asciicast.NewEncoder(cw)
	enc.WriteHeader(asciicast.Header{Version: 2, Width: 120, Height: 30, Timestamp: time.Now().Unix(), Command: "tail -f big.log"})
	pad := strings.Repeat("lorem ipsum dolor sit amet ", 3)
	for cw.n < size {
		if err := enc.WriteEvent(asciicast.Event{Time: float64(lines) / 10, Code: asciicast.Output, Data: fmt.Sprintf("line %09d \x1b[32m%s\x1b[0m\r\n", lines, pad)}); err != nil {
			return "", 0, 0, err
		}
		lines++
	}
	if err := w.Close(store.StatusComplete, ""); err != nil {
		return "", 0, 0, err
	}
	if err := os.WriteFile(dir+"/lines", []byte(fmt.Sprint(lines)), 0o600); err != nil {
		return "", 0, 0, err
	}
	return w.Key(), lines, cw.n, nil
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// noIndex is an index with no rows: the UI then reads the recording's
// row from the store. (Only the player is measured here.)
type noIndex struct{}

func (noIndex) PutRecording(context.Context, index.Recording) error { return nil }
func (noIndex) GetRecording(context.Context, string) (index.Recording, error) {
	return index.Recording{}, index.ErrNotFound
}
func (noIndex) DeleteRecording(context.Context, string) error                 { return nil }
func (noIndex) AddChunks(context.Context, string, int64, []index.Chunk) error { return nil }
func (noIndex) ResetText(context.Context, string) error                       { return nil }
func (noIndex) List(context.Context, index.Filter, index.Page) ([]index.Recording, string, error) {
	return nil, "", nil
}
func (noIndex) Search(context.Context, string, index.Filter, index.Page) ([]index.Hit, string, error) {
	return nil, "", nil
}
func (noIndex) PutEvent(context.Context, index.Event) error { return nil }
func (noIndex) ListEvents(context.Context, index.Filter, index.EventFilter, index.Page) ([]index.Event, string, error) {
	return nil, "", nil
}
func (noIndex) Close() error { return nil }

// benchAuth lets in the one browser this tool drives (cookie bench=1).
// The UI listens on loopback only, for the run.
type benchAuth struct{}

func (benchAuth) Viewer(r *http.Request) (web.Viewer, bool) {
	c, err := r.Cookie("bench")
	return web.Viewer{Name: "bench", Admin: true}, err == nil && c.Value == "1"
}
func (benchAuth) Login(http.ResponseWriter, *http.Request, string, string) (web.Viewer, error) {
	return web.Viewer{}, web.ErrBadLogin
}
func (benchAuth) Logout(http.ResponseWriter, *http.Request) {}
