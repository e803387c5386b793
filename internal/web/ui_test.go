package web

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/web/webtest"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func out(t float64, s string) asciicast.Event {
	return asciicast.Event{Time: t, Code: asciicast.Output, Data: s}
}

// seed stores and indexes three recordings: an SSH session on node-a whose
// screen shows a needle at 65.5 s after a clear, a "top" on node-b, and a
// Kubernetes exec on node-b.
func seed(t *testing.T, u *ui) (needleKey, topKey string) {
	t.Helper()
	needleKey = writeCast(t, u.st, "node-a", t0, asciicast.Header{Version: 2, Width: 80, Height: 24, Timestamp: t0.Unix(), Command: "bash -l", SrcNodeUser: "carol@example.com", SSHUser: "root"}, []asciicast.Event{
		out(0, "$ ls\r\n"),
		out(10, "first screen text\r\n"),
		out(65.5, "\x1b[H\x1b[2Jthe needle appears here\r\n"),
		out(70, "after the needle\r\n"),
		out(80, "logout\r\n"),
	}, store.StatusComplete)
	topKey = writeCast(t, u.st, "node-b", t0.Add(time.Hour), asciicast.Header{Version: 2, Width: 80, Height: 24, Timestamp: t0.Add(time.Hour).Unix(), Command: "top", SrcNodeUser: "dave@example.com", SSHUser: "dave"}, []asciicast.Event{
		out(0, "top - 10:00:00 up 1 day\r\n"),
		out(1, "Tasks: 100 total\r\n"),
	}, store.StatusComplete)
	k8s := writeCast(t, u.st, "node-b", t0.Add(2*time.Hour), asciicast.Header{Version: 2, Width: 80, Height: 24, Timestamp: t0.Add(2 * time.Hour).Unix(), SrcNodeUser: "erin@example.com",
		Kubernetes: &asciicast.Kubernetes{PodName: "web-0", Namespace: "prod", Container: "app", SessionType: "exec"}}, []asciicast.Event{
		out(0, "# cat /etc/hostname\r\nweb-0\r\n"),
		{Time: 1, Code: asciicast.Resize, Data: "30x100"},
	}, store.StatusComplete)
	for _, k := range []string{needleKey, topKey, k8s} {
		indexRecording(t, u.st, u.idx, k)
	}
	return needleKey, topKey
}

// TestBrowserFindAndPlay: log in, list, filter, search, click a hit, and
// the player shows the screen of that moment.
func TestBrowserFindAndPlay(t *testing.T) {
	u := newUI(t, nil, nil)
	needleKey, _ := seed(t, u)
	tb := webtest.NewTab(t)
	tb.Login(u.base, "alice", "alice-pw")

	rows := tb.WaitText("#recordings tbody tr.rec", "three recordings", func(s string) bool { return strings.Count(s, "\n") == 2 })
	for _, want := range []string{"bash -l", "top", "exec prod/web-0", "kubernetes", "carol@example.com as root"} {
		if !strings.Contains(rows, want) && !(want == "exec prod/web-0" && strings.Contains(rows, "prod/web-0")) {
			t.Errorf("list lacks %q:\n%s", want, rows)
		}
	}

	// Filter by user, in the page's form.
	tb.Do(
		chromedp.SendKeys(chromedp.CSS(`form.filters input[name=user]`), "dave@example.com"),
		chromedp.Click(chromedp.ID("filter")),
	)
	rows = tb.WaitText("#recordings tbody tr.rec", "only dave's recording", func(s string) bool {
		return strings.Contains(s, "top") && !strings.Contains(s, "bash -l") && !strings.Contains(s, "web-0")
	})
	if strings.Count(rows, "\n") != 0 {
		t.Fatalf("filtered list has more than one row:\n%s", rows)
	}

	// Search, and open the hit.
	tb.Do(
		chromedp.Navigate(u.base+"/search"),
		chromedp.SendKeys(chromedp.ID("q"), "needle appears"),
		chromedp.Click(chromedp.ID("search")),
	)
	hits := tb.WaitText("#hits li.hit", "the hit", func(s string) bool { return strings.Contains(s, "the needle appears here") })
	if !strings.Contains(hits, "1:05") {
		t.Errorf("hit does not name its moment 1:05:\n%s", hits)
	}
	tb.Do(chromedp.Click(chromedp.CSS(`#hits li.hit a.moment`)))
	screen := tb.WaitScreen("the needle on the screen", func(s string) bool { return strings.Contains(s, "the needle appears here") })
	if strings.Contains(screen, "first screen text") || strings.Contains(screen, "after the needle") {
		t.Errorf("the player is not at the hit's moment; screen:\n%s", screen)
	}
	if url := tb.Eval(`location.href`); !strings.HasSuffix(url, "#t=1:05.6") || !strings.Contains(url, recURL(needleKey)) {
		t.Errorf("player page URL %s", url)
	}
	// The hit is a marker on the progress bar.
	tb.WaitText(".ap-marker-container .ap-tooltip", "the hit's marker", func(s string) bool { return strings.Contains(s, "needle appears") })

	// A link to a moment opens there.
	tb.Do(chromedp.Navigate(u.base + recURL(needleKey) + "#t=0:72"))
	tb.WaitScreen("the screen at 1:12", func(s string) bool {
		return strings.Contains(s, "after the needle") && !strings.Contains(s, "logout")
	})
	tb.Clean()
	for _, a := range []string{"list", "search", "view", "play"} {
		if !u.audit.has("alice", a, "") {
			t.Errorf("no %q in the audit log: %+v", a, u.audit.entries)
		}
	}
}

// TestBrowserRefused: a viewer without rights sees no recording, cannot
// open one by its address, and the refusal is audited.
func TestBrowserRefused(t *testing.T) {
	u := newUI(t, nil, nil)
	needleKey, _ := seed(t, u)
	tb := webtest.NewTab(t)
	tb.Login(u.base, "bob", "bob-pw")
	tb.WaitText("#recordings tbody", "an empty list", func(s string) bool { return strings.Contains(s, "No recordings match") })
	tb.Do(chromedp.Navigate(u.base + "/search?q=needle"))
	tb.WaitText("#hits", "no hits", func(s string) bool { return strings.Contains(s, "No screen text matches") })
	tb.Do(chromedp.Navigate(u.base + recURL(needleKey)))
	body := tb.WaitText("body", "a refusal", func(s string) bool { return strings.Contains(s, "no such recording") })
	if strings.Contains(body, "needle") || strings.Contains(body, "carol") {
		t.Fatalf("the refusal shows the recording: %s", body)
	}
	for _, path := range []string{"/cast", "/download", "/seg/index.json", "/seg/0.json", "/prepare"} {
		got := tb.EvalAsync(`fetch(` + jsString(recURL(needleKey)+path) + `).then(r => r.status + " " + r.statusText)`)
		if !strings.HasPrefix(got, "404") {
			t.Errorf("%s as bob: %s, want 404", path, got)
		}
	}
	if !u.audit.has("bob", "refused", needleKey) {
		t.Errorf("refusal not audited: %+v", u.audit.entries)
	}
	if u.sent.cast.Load() != 0 || u.sent.segments.Load() != 0 {
		t.Errorf("sent bob %d bytes of recordings and %d of segments", u.sent.cast.Load(), u.sent.segments.Load())
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserNoMarkup: a recording whose header and output carry script
// payloads is shown as text everywhere, and nothing runs.
func TestBrowserNoMarkup(t *testing.T) {
	u := newUI(t, nil, nil)
	const (
		script  = `<script>alert("cmd")</script>`
		img     = `<img src=x onerror=alert("title")>`
		jsURL   = `javascript:alert("user")`
		outText = `<script>alert("out")</script> <img src=x onerror=alert("out2")> javascript:alert(3)`
	)
	key := writeCast(t, u.st, "node-x", t0, asciicast.Header{Version: 2, Width: 100, Height: 24, Timestamp: t0.Unix(),
		Command: script, Title: img, SrcNodeUser: jsURL, SSHUser: `"><svg onload=alert(4)>`}, []asciicast.Event{
		out(0, "payload: "+outText+"\r\n"),
		{Time: 1, Code: asciicast.Marker, Data: `<img src=x onerror=alert("marker")>`},
		out(2, "end\r\n"),
	}, store.StatusComplete)
	rec := indexRecording(t, u.st, u.idx, key)
	rec.Reason = `<b onmouseover=alert(5)>why</b>`
	rec.Status = string(store.StatusMalformed)
	u.idx.PutRecording(t.Context(), rec)

	tb := webtest.NewTab(t)
	tb.Login(u.base, "alice", "alice-pw")
	list := tb.WaitText("#recordings tbody tr.rec", "the payload row", func(s string) bool { return strings.Contains(s, script) })
	for _, want := range []string{jsURL, "malformed", `<b onmouseover=alert(5)>why</b>`} {
		if !strings.Contains(list, want) {
			t.Errorf("list does not show %q as text:\n%s", want, list)
		}
	}
	tb.Do(chromedp.Navigate(u.base + "/search?q=" + url.QueryEscape(`<script>alert("out")`)))
	tb.WaitText("#hits li.hit", "the payload hit", func(s string) bool { return strings.Contains(s, outText) })
	tb.Do(chromedp.Click(chromedp.CSS(`#hits li.hit a.moment`)))
	tb.WaitScreen("the payload on the player's screen", func(s string) bool { return strings.Contains(s, "payload: "+outText) })
	tb.WaitText("#title", "the command as the title", func(s string) bool { return s == script })
	tb.WaitText(".ap-marker-container .ap-tooltip", "the marker labels", func(s string) bool {
		return strings.Contains(s, `<img src=x onerror=alert("marker")>`) && strings.Contains(s, outText)
	})
	// Injected elements would be in the DOM even if CSP stopped them.
	if n := tb.Eval(`String(document.querySelectorAll("main script, main img, main svg [onload], [onerror], [onmouseover]").length)`); n != "0" {
		t.Errorf("%s payload elements made it into the DOM", n)
	}
	tb.Clean()
}

// largeCast writes a recording of about size bytes: a numbered line every
// 0.1 s, so the screen at any moment names the time. It returns the key
// and the number of lines.
func largeCast(t testing.TB, st store.Store, size int) (string, int) {
	t.Helper()
	w, err := st.Create(t.Context(), "node-big", t0)
	if err != nil {
		t.Fatal(err)
	}
	enc := asciicast.NewEncoder(w)
	enc.WriteHeader(asciicast.Header{Version: 2, Width: 120, Height: 30, Timestamp: t0.Unix(), Command: "tail -f big.log"})
	pad := strings.Repeat("lorem ipsum dolor sit amet ", 3)
	n := 0
	for written := 0; written < size; n++ {
		line := fmt.Sprintf("line %07d \x1b[32m%s\x1b[0m\r\n", n, pad)
		if err := enc.WriteEvent(out(float64(n)/10, line)); err != nil {
			t.Fatal(err)
		}
		written += len(line) + 20
	}
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	return w.Key(), n
}

// lineNumbers are the numbers of the "line N" rows on a screen.
func lineNumbers(screen string) []int {
	var ns []int
	for _, l := range strings.Split(screen, "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "line %d", &n); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// TestBrowserSeekLarge: a large recording plays in segments; a click at
// 95 % of the progress bar shows that moment's screen, and what was sent
// is a small part of the recording.
func TestBrowserSeekLarge(t *testing.T) {
	u := newUI(t, nil, func(s *Server) { s.SegmentThreshold = 1 << 20 })
	key, lines := largeCast(t, u.st, 24<<20)
	rec := indexRecording(t, u.st, u.idx, key)
	tb := webtest.NewTab(t)
	tb.Login(u.base, "alice", "alice-pw")
	tb.Do(chromedp.Navigate(u.base + recURL(key)))
	if f := tb.Eval(`document.getElementById("player").dataset.format`); f != formatSegmented {
		t.Fatalf("format %q, want %q", f, formatSegmented)
	}
	// The cut runs first (a progress bar), then the player loads.
	tb.Do(chromedp.WaitVisible(chromedp.CSS(".ap-progressbar")))
	tb.WaitText(".ap-time-remaining", "the duration", func(s string) bool { return s != "" && s != "--:--" })
	tb.Do(chromedp.ScrollIntoView(chromedp.CSS(".ap-progressbar")))
	box, err := chromedp.Run(tb.Ctx, chromedp.Dimensions(chromedp.CSS(".ap-progressbar .ap-bar")))
	if err != nil {
		t.Fatal(err)
	}
	q := box.Border // x1, y1, x2, y2, x3, y3, x4, y4: clockwise from top left
	left, right := q[0], q[2]
	y := (q[1] + q[5]) / 2
	before := u.sent.segments.Load()
	tb.Do(chromedp.MouseClickXY(left+0.95*(right-left), y))
	want := int(0.95 * float64(lines))
	screen := tb.WaitScreen("the screen near 95 %", func(s string) bool {
		ns := lineNumbers(s)
		return len(ns) > 0 && ns[len(ns)-1] > want-lines/50 && ns[len(ns)-1] < want+lines/50
	})
	sent := u.sent.segments.Load()
	t.Logf("recording %d bytes; sent %d bytes of segments (%d for the seek); last line on screen %d of %d",
		rec.Size, sent, sent-before, lineNumbers(screen)[len(lineNumbers(screen))-1], lines)
	if sent > rec.Size/20 {
		t.Errorf("sent %d bytes of segments for a %d-byte recording: more than 5 %%", sent, rec.Size)
	}
	tb.Clean()
}

// TestBrowserLive: a recording in progress plays as it arrives; a viewer
// who joins late sees the current screen at once; the list marks it live
// and updates it when it ends.
func TestBrowserLive(t *testing.T) {
	u := newUI(t, nil, nil)
	w, err := u.st.Create(t.Context(), "node-live", t0)
	if err != nil {
		t.Fatal(err)
	}
	enc := asciicast.NewEncoder(w)
	enc.WriteHeader(asciicast.Header{Version: 2, Width: 80, Height: 24, Timestamp: t0.Unix(), Command: "bash", SSHUser: "root"})
	enc.WriteEvent(out(0.5, "$ echo first\r\nfirst output\r\n"))
	// Half a line: never shown until the rest arrives.
	w.Write([]byte(`[0.7, "o", "half a li`))
	key := w.Key()
	indexRecording(t, u.st, u.idx, key)
	notify := func() {
		info, _ := u.st.Stat(t.Context(), key)
		u.srv.Changed(key, info.Size, info.Status)
	}

	tb := webtest.NewTab(t)
	tb.Login(u.base, "alice", "alice-pw")
	tb.WaitText("#recordings tr.rec.live .badge", "a live row", func(s string) bool { return s == "live" })
	tb.Do(chromedp.Navigate(u.base + recURL(key)))
	if f := tb.Eval(`document.getElementById("player").dataset.format`); f != formatLive {
		t.Fatalf("format %q, want %q", f, formatLive)
	}
	tb.WaitScreen("the output so far", func(s string) bool { return strings.Contains(s, "first output") })

	w.Write([]byte("ne\"]\n"))
	enc.WriteEvent(out(1.5, "\r\n$ echo second\r\nsecond output\r\n"))
	notify()
	screen := tb.WaitScreen("output that arrived while watching", func(s string) bool { return strings.Contains(s, "second output") })
	if !strings.Contains(screen, "half a line") {
		t.Errorf("the line completed later is missing:\n%s", screen)
	}

	// A late joiner sees everything on the screen at once.
	late := webtest.NewTab(t)
	late.Login(u.base, "alice", "alice-pw")
	late.Do(chromedp.Navigate(u.base + recURL(key)))
	late.WaitScreen("the current screen", func(s string) bool {
		return strings.Contains(s, "first output") && strings.Contains(s, "second output")
	})

	enc.WriteEvent(out(2.5, "third output\r\n"))
	notify()
	for _, v := range []*webtest.Tab{tb, late} {
		v.WaitScreen("output for both viewers", func(s string) bool { return strings.Contains(s, "third output") })
	}
	if !u.audit.has("alice", "live", key) {
		t.Errorf("live view not audited")
	}

	// The end: the list stops marking it live, without a reload.
	late.Do(chromedp.Navigate(u.base + "/"))
	late.WaitText("#recordings tr.rec .badge", "a live row", func(s string) bool { return s == "live" })
	w.Close(store.StatusComplete, "")
	rec := indexRecording(t, u.st, u.idx, key)
	notify()
	late.WaitText("#recordings tr.rec .badge", "the row complete", func(s string) bool { return s == "complete" })
	if rec.Status != "complete" {
		t.Fatalf("status %s", rec.Status)
	}
	tb.Clean()
	late.Clean()
}
