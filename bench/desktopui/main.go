// Command desktopui measures the desktop player's seek (issue 11's figure:
// from a click at 95 % of a 1-hour recording to that frame on screen in
// Chromium, at most 500 ms).
//
// It writes a desktop recording (internal/desktop's encoder, as reel vnc
// records) of -minutes minutes at -size: a screen of text windows where
// a character is typed every 200 ms, a window scrolls (CopyRect) every
// 10 s, and the whole screen is redrawn (another application) every 5
// minutes. It serves the web UI (internal/web) on loopback, and for each
// run loads the recording's page with the browser cache off, waits for
// the player, clicks on the progress bar at -at (and, as the baseline,
// at -base), and times in the page from the pointerdown to the first
// animation frame after the player has drawn the keyframe's segment up
// to that moment. Beside that time it gives the CPU time the page's main
// thread spent from the click to the frame (Chromium's ThreadTime
// metric): on a shared machine the wall time follows the load, the CPU
// time much less. With -hover the pointer first rests over the place
// until the page has fetched the segment under it (as the player does
// when a pointer moves over the progress bar), then clicks; the time is
// still from the pointerdown. Run from the repository root:
//
//	go run ./bench/desktopui                  # 1 hour at 1920x1080, 20 runs
//	go run ./bench/desktopui -minutes 10 -runs 5
//
// It needs Debian's chromium. Not part of "make test".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/bench/internal/uibench"
	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/web"
)

func main() {
	minutes := flag.Int("minutes", 60, "length of the recording")
	size := flag.String("size", "1920x1080", "screen size")
	runs := flag.Int("runs", 20, "clicks to time at each place")
	at := flag.Float64("at", 0.95, "where to click on the progress bar, 0 to 1")
	base := flag.Float64("base", 0.05, "where to click for the baseline, 0 to 1")
	hover := flag.Bool("hover", false, "rest the pointer over the place until its segment has come, then click")
	flag.Parse()
	var w, h int
	if _, err := fmt.Sscanf(*size, "%dx%d", &w, &h); err != nil || w < 64 || h < 64 {
		log.Fatalf("-size %q: want WxH", *size)
	}
	if err := run(*minutes, w, h, *runs, []float64{*base, *at}, *hover); err != nil {
		log.Fatal(err)
	}
}

func run(minutes, w, h, runs int, places []float64, hover bool) error {
	dir, err := os.MkdirTemp("", "reel-bench-desktopui-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := fsstore.Open(dir+"/store", fsstore.Options{MinFree: -1})
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	key, n, err := record(st, minutes, w, h)
	if err != nil {
		return err
	}
	rd, err := st.Open(context.Background(), key)
	if err != nil {
		return err
	}
	ix, err := desktop.Scan(io.NewSectionReader(rd, 0, rd.Size()))
	rd.Close()
	if err != nil {
		return err
	}
	fmt.Printf("recording %s: %d min at %dx%d, %.1f MB, %d keyframes (written in %.1f s)\n",
		key, minutes, w, h, float64(n)/1e6, len(ix.Keyframes), time.Since(start).Seconds())

	srv := &web.Server{Store: st, Index: uibench.NoIndex{}, Auth: uibench.Auth{},
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	node, name, _ := strings.Cut(key, "/")
	page := "http://" + ln.Addr().String() + "/r/" + node + "/" + name

	ctx, stop, err := uibench.Browser(page + "/desk/index.json")
	if err != nil {
		return err
	}
	defer stop()
	dur := ix.Duration.Seconds()
	for _, place := range places {
		var times, cpus []time.Duration
		var fetched int64
		for i := 0; i < runs; i++ {
			d, cpu, t, err := clickOnce(ctx, page, place, hover)
			if err != nil {
				return fmt.Errorf("click at %.0f %%, run %d: %w", place*100, i, err)
			}
			if t < (place-0.02)*dur || t > (place+0.02)*dur {
				return fmt.Errorf("click at %.0f %%: the player went to %.1f s of %.1f", place*100, t, dur)
			}
			times = append(times, d)
			cpus = append(cpus, cpu)
			k, _ := ix.Before(time.Duration(t * float64(time.Second)))
			fetched = segmentSize(ix, k)
		}
		slices.Sort(times)
		slices.Sort(cpus)
		p := func(d []time.Duration, q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
		fmt.Printf("click at %.0f %% -> that frame on screen, %d runs: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms (segment of %.0f KB); main-thread CPU p50 %.0f ms, min %.0f ms\n",
			place*100, len(times), ms(p(times, 0.5)), ms(p(times, 0.99)), ms(times[0]), ms(times[len(times)-1]), float64(fetched)/1e3,
			ms(p(cpus, 0.5)), ms(cpus[0]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// segmentSize is the size of the segment that starts at keyframe k.
func segmentSize(ix *desktop.Index, k desktop.Keyframe) int64 {
	for i, kf := range ix.Keyframes {
		if kf == k {
			if i+1 < len(ix.Keyframes) {
				return ix.Keyframes[i+1].Off - kf.Off
			}
			return ix.Size - kf.Off
		}
	}
	return 0
}

// clickOnce loads the page, waits for the player, clicks at the fraction
// at of the progress bar and returns the time, measured in the page, from
// the pointerdown to the frame on screen, the main thread's CPU time over
// the click, and the moment shown. With hover, the pointer first rests
// there until the page has fetched one more segment.
func clickOnce(ctx context.Context, page string, at float64, hover bool) (time.Duration, time.Duration, float64, error) {
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("desk-seek"))); err != nil {
		return 0, 0, 0, err
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.getElementById("desktop").dataset.ready === "1"`)); err != nil {
		return 0, 0, 0, err
	}
	setup := `(() => {
		window.__seek = {t0: 0};
		document.getElementById("desk-seek").addEventListener("pointerdown", () => { window.__seek.t0 = performance.now(); }, {capture: true, once: true});
		delete document.getElementById("desktop").dataset.shown;
	})()`
	box, err := chromedp.Run(tctx, chromedp.Dimensions(chromedp.ID("desk-seek")))
	if err != nil {
		return 0, 0, 0, err
	}
	q := box.Border
	// A range input's thumb (16 px in Chromium) travels the width less
	// its own.
	const thumb = 16
	x, y := q[0]+thumb/2+at*(q[2]-q[0]-thumb), (q[1]+q[5])/2
	if hover {
		const segs = `performance.getEntriesByType("resource").filter((e) => e.name.includes("/desk/seg/") && e.responseEnd > 0).length`
		n, err := chromedp.Run(tctx, chromedp.Evaluate[int](segs))
		if err != nil {
			return 0, 0, 0, err
		}
		if err := chromedp.Do(tctx, chromedp.MouseEvent(chromedp.MouseMoved, x, y)); err != nil {
			return 0, 0, 0, err
		}
		if _, err := chromedp.Run(tctx, chromedp.Poll[bool](fmt.Sprintf("%s > %d", segs, n), chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
			return 0, 0, 0, fmt.Errorf("hovering: the segment never came: %w", err)
		}
	}
	if _, err := chromedp.Call(tctx, performance.Enable, performance.EnableParams{TimeDomain: performance.EnableTimeDomainThreadTicks}); err != nil {
		return 0, 0, 0, err
	}
	cpu0, err := threadTime(tctx)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := chromedp.Do(tctx, chromedp.Evaluate[chromedp.Void](setup), chromedp.MouseClickXY(x, y)); err != nil {
		return 0, 0, 0, err
	}
	got, err := chromedp.Run(tctx, chromedp.Poll[string](`(() => { const s = document.getElementById("desktop").dataset.shown; return s ? (parseFloat(s) - window.__seek.t0) + " " + document.getElementById("desktop").dataset.t : ""; })()`, chromedp.WithPollingInterval(10*time.Millisecond)))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("the frame never showed: %w", err)
	}
	cpu1, err := threadTime(tctx)
	if err != nil {
		return 0, 0, 0, err
	}
	msStr, tStr, _ := strings.Cut(got, " ")
	d, _ := strconv.ParseFloat(msStr, 64)
	t, _ := strconv.ParseFloat(tStr, 64)
	return time.Duration(d * float64(time.Millisecond)), time.Duration((cpu1 - cpu0) * float64(time.Second)), t, nil
}

// threadTime is the page's main-thread CPU time so far, in seconds.
func threadTime(ctx context.Context) (float64, error) {
	res, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		return 0, err
	}
	for _, m := range res.Metrics {
		if m.Name == "ThreadTime" {
			return m.Value, nil
		}
	}
	return 0, fmt.Errorf("no ThreadTime among Chromium's metrics")
}

// record writes the recording into st.
func record(st *fsstore.Store, minutes, w, h int) (string, int64, error) {
	start := time.Now().Add(-time.Duration(minutes) * time.Minute)
	sw, err := st.CreateKind(context.Background(), "bench-node", start, store.KindDesktop)
	if err != nil {
		return "", 0, err
	}
	cw := &countWriter{w: sw}
	enc, err := desktop.NewEncoder(cw, desktop.Header{Width: w, Height: h, Start: start, User: "bench", Protocol: "rfb", Host: "bench"}, 0)
	if err != nil {
		return "", 0, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	img := desktop.NewImage(w, h)
	glyphs := make([][128]bool, 96) // 8x16 "characters"
	for i := range glyphs {
		for j := range glyphs[i] {
			glyphs[i][j] = rng.IntN(3) == 0 && j%8 != 7 && j/8 > 1 && j/8 < 14
		}
	}
	glyph := func(x, y int, g int, fg, bg uint32) {
		for j := 0; j < 128; j++ {
			px, py := x+j%8, y+j/8
			if px < w && py < h {
				v := bg
				if glyphs[g][j] {
					v = fg
				}
				img.Pix[py*w+px] = v
			}
		}
	}
	// app draws a screen of text windows.
	app := func() {
		for i := range img.Pix {
			img.Pix[i] = 0x203040 + uint32(i%w*64/w)
		}
		for win := 0; win < 4; win++ {
			x0, y0 := rng.IntN(w/2), rng.IntN(h/2)
			ww, wh := w/3+rng.IntN(w/3), h/3+rng.IntN(h/3)
			for y := y0; y < min(h, y0+wh); y += 16 {
				for x := x0; x < min(w, x0+ww); x += 8 {
					glyph(x, y, rng.IntN(len(glyphs)), 0xE0E0E0, 0x101010+uint32(win)*0x0F0F0F)
				}
			}
		}
	}
	app()
	if err := enc.Keyframe(0, img); err != nil {
		return "", 0, err
	}
	enc.Cursor(0, &desktop.Cursor{W: 12, H: 20, HotX: 0, HotY: 0, Pix: slices.Repeat([]uint32{0xFF000000, 0xFFFFFFFF, 0x80000000, 0}, 60)})
	tx, ty := 40, 40
	end := time.Duration(minutes) * time.Minute
	for at := 200 * time.Millisecond; at <= end; at += 200 * time.Millisecond {
		var r desktop.Rect
		switch {
		case at%(5*time.Minute) == 0:
			app()
			r = desktop.Rect{W: w, H: h}
		case at%(10*time.Second) == 0:
			// Scroll the typing window up a line.
			sr := desktop.Rect{X: 32, Y: 32, W: w / 2, H: h/2 - 16}
			desktop.CopyRect(img, 32, 48, sr)
			if err := enc.Copy(at, 32, 48, sr); err != nil {
				return "", 0, err
			}
			continue
		default:
			glyph(tx, ty, rng.IntN(len(glyphs)), 0x30FF30, 0x000000)
			r = desktop.Rect{X: tx, Y: ty, W: min(8, w-tx), H: min(16, h-ty)}
			if tx += 8; tx > w/2 {
				tx, ty = 40, 40+(ty-24)%(h/2-40)
			}
		}
		if enc.NeedKeyframe(at) {
			err = enc.Keyframe(at, img)
		} else {
			err = enc.Region(at, img, r)
		}
		if err != nil {
			return "", 0, err
		}
		if err := enc.Pointer(at, tx+4, ty+20, 0); err != nil {
			return "", 0, err
		}
	}
	if err := sw.Close(store.StatusComplete, ""); err != nil {
		return "", 0, err
	}
	return sw.Key(), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
