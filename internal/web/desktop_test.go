package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/reel-rec/reel/internal/web/webtest"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// writeDesktop stores a desktop recording of sec seconds on node: a
// 320×240 screen whose regions change every 250 ms (pixels that include
// the escaped bytes 0x0A and 0x1B), copies, a half-transparent cursor
// that moves, and a resize to 400×300 at 40 % of the way. It is indexed
// as reel vnc's recordings are, and its bytes are returned.
func writeDesktop(t testing.TB, u *ui, node string, start time.Time, sec int, status store.Status) (string, []byte) {
	t.Helper()
	w, err := u.st.(store.KindCreator).CreateKind(context.Background(), node, start, store.KindDesktop)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc, err := desktop.NewEncoder(io.MultiWriter(w, &buf), desktop.Header{Width: 320, Height: 240, Start: start, User: "frank@example.com", Host: "lab", Protocol: "rfb"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc.KeyframeInterval = 5 * time.Second
	rng := rand.New(rand.NewPCG(7, 8))
	img := desktop.NewImage(320, 240)
	fill := func(r desktop.Rect) {
		base := rng.Uint32() & 0xFFFFFF
		for y := r.Y; y < r.Y+r.H; y++ {
			for x := r.X; x < r.X+r.W; x++ {
				v := base + uint32(x*3+y)
				if rng.IntN(9) == 0 {
					v = 0x0A1B0A
				}
				img.Pix[y*img.W+x] = v & 0xFFFFFF
			}
		}
	}
	fill(desktop.Rect{W: img.W, H: img.H})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(enc.Keyframe(0, img))
	cur := &desktop.Cursor{W: 8, H: 8, HotX: 2, HotY: 3, Pix: make([]uint32, 64)}
	for i := range cur.Pix {
		cur.Pix[i] = uint32([]int{0, 0x80, 0xFF, 0x33}[i%4])<<24 | 0xE02040
	}
	must(enc.Cursor(0, cur))
	resized := false
	for i := 1; i <= sec*4; i++ {
		at := time.Duration(i) * 250 * time.Millisecond
		if !resized && at >= time.Duration(sec)*time.Second*4/10 {
			resized = true
			img = desktop.NewImage(400, 300)
			must(enc.Resize(at, 400, 300))
			fill(desktop.Rect{W: 400, H: 300})
			must(enc.Keyframe(at, img))
			continue
		}
		switch {
		case i%5 == 0:
			r := desktop.Rect{X: 10, Y: 12 + i%7, W: 100, H: 80}
			desktop.CopyRect(img, 20, 30, r)
			must(enc.Copy(at, 20, 30, r))
		default:
			r := desktop.Rect{X: rng.IntN(img.W - 60), Y: rng.IntN(img.H - 40), W: 1 + rng.IntN(60), H: 1 + rng.IntN(40)}
			fill(r)
			if enc.NeedKeyframe(at) {
				must(enc.Keyframe(at, img))
			} else {
				must(enc.Region(at, img, r))
			}
		}
		must(enc.Pointer(at, (i*7)%img.W, (i*5)%img.H, 0))
	}
	if status != store.StatusLive {
		must(w.Close(status, ""))
	}
	key := w.Key()
	node, _, _ = store.ParseKey(key)
	rec := index.Recording{Key: key, Node: node, Sender: node, Start: start, End: start.Add(time.Duration(sec) * time.Second),
		Size: int64(buf.Len()), Status: string(status), Kind: index.KindDesktop, User: "frank@example.com", Width: 320, Height: 240}
	if err := u.idx.PutRecording(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return key, buf.Bytes()
}

// frameAt is the screen reel export --frame renders at sec: the same
// desktop.FrameAt and Composite.
func frameAt(t testing.TB, data []byte, sec float64) *desktop.Image {
	t.Helper()
	ix, err := desktop.Scan(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := desktop.FrameAt(bytes.NewReader(data), ix, time.Duration(sec*float64(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	return p.Composite()
}

// get fetches path as viewer (the test authenticator's cookie).
func (u *ui) get(t testing.TB, viewer, path string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u.base+path, nil)
	if viewer != "" {
		req.AddCookie(&http.Cookie{Name: "test_session", Value: viewer})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestDesktopSegments: the keyframe table names every keyframe; segment i
// is exactly the stored bytes from keyframe i to keyframe i+1 and starts
// with that keyframe, so the segments together are the recording after
// its header; a viewer without rights, and a request for the table of a
// terminal recording, get 404; playing is audited; the terminal player's
// segment cutter never touches it.
func TestDesktopSegments(t *testing.T) {
	u := newUI(t, nil, func(s *Server) { s.SegmentThreshold = 1024 })
	key, data := writeDesktop(t, u, "node-d", t0, 30, store.StatusComplete)
	terminal, _ := seed(t, u)
	ix, err := desktop.Scan(bytes.NewReader(data))
	if err != nil || len(ix.Keyframes) < 4 {
		t.Fatalf("scan: %v, %d keyframes", err, len(ix.Keyframes))
	}

	code, _, body := u.get(t, "alice", recURL(key)+"/desk/index.json")
	var doc deskIndexDoc
	if code != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("index.json: %d %s", code, body)
	}
	if doc.Width != 320 || doc.Height != 240 || doc.Duration != ix.Duration.Seconds() || len(doc.Keyframes) != len(ix.Keyframes) || doc.Live || doc.Problem != "" {
		t.Fatalf("index.json %+v; want 320×240, %v, %d keyframes", doc, ix.Duration, len(ix.Keyframes))
	}
	var all []byte
	for i, k := range ix.Keyframes {
		code, h, seg := u.get(t, "alice", recURL(key)+"/desk/seg/"+strconv.Itoa(i))
		if code != 200 || h.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("segment %d: %d %s", i, code, h.Get("Content-Type"))
		}
		if doc.Keyframes[i][0] != k.T.Seconds() || int(doc.Keyframes[i][1]) != len(seg) {
			t.Errorf("segment %d: table says %v, served %d bytes at %v", i, doc.Keyframes[i], len(seg), k.T)
		}
		if !bytes.HasPrefix(data[k.Off:], seg) || len(seg) == 0 || seg[0] != desktop.TypeKeyframe {
			t.Errorf("segment %d is not the bytes at keyframe %d (offset %d)", i, i, k.Off)
		}
		all = append(all, seg...)
	}
	if first := ix.Keyframes[0].Off; !bytes.Equal(all, data[first:]) {
		t.Errorf("segments together: %d bytes, want the %d after the header", len(all), len(data)-int(first))
	}
	// A range of a segment, as a browser may ask.
	req, _ := http.NewRequest("GET", u.base+recURL(key)+"/desk/seg/1", nil)
	req.AddCookie(&http.Cookie{Name: "test_session", Value: "alice"})
	req.Header.Set("Range", "bytes=0-9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[ix.Keyframes[1].Off:ix.Keyframes[1].Off+10]) {
		t.Errorf("range of segment 1: %d %q", resp.StatusCode, part)
	}

	for _, tc := range []struct{ viewer, path string }{
		{"alice", recURL(key) + "/desk/seg/" + strconv.Itoa(len(ix.Keyframes))},
		{"alice", recURL(key) + "/desk/seg/-1"},
		{"alice", recURL(key) + "/desk/seg/x"},
		{"alice", recURL(terminal) + "/desk/index.json"},
		{"alice", recURL(terminal) + "/desk/seg/0"},
		{"bob", recURL(key) + "/desk/index.json"},
		{"bob", recURL(key) + "/desk/seg/0"},
	} {
		if code, _, body := u.get(t, tc.viewer, tc.path); code != 404 {
			t.Errorf("%s as %s: %d %q, want 404", tc.path, tc.viewer, code, body)
		}
	}
	if code, _, _ := u.get(t, "", recURL(key)+"/desk/seg/0"); code != http.StatusUnauthorized {
		t.Errorf("a segment without a viewer: %d, want 401", code)
	}
	if !u.audit.has("alice", "play", key) || !u.audit.has("bob", "refused", key) || u.audit.has("bob", "play", key) {
		t.Errorf("audit log: %+v", u.audit.entries)
	}

	// The list and the page say it is a desktop session.
	_, _, list := u.get(t, "alice", "/")
	if !strings.Contains(string(list), `class="kind kind-desktop"`) || !strings.Contains(string(list), "icon-desktop") {
		t.Errorf("the list shows no desktop kind or icon")
	}
	_, h, page := u.get(t, "alice", recURL(key))
	if !strings.Contains(string(page), `<canvas id="desktop"`) || strings.Contains(string(page), "asciinema-player") {
		t.Errorf("the page of a desktop recording has no canvas, or loads the terminal player")
	}
	checkHeaders(t, recURL(key), h)
	// Larger than the segment threshold: still never cut as a terminal
	// recording, neither for its page nor when it ends.
	u.srv.Changed(key, int64(len(data)), store.StatusComplete)
	u.srv.segs.mu.Lock()
	cuts := len(u.srv.segs.cuts)
	u.srv.segs.mu.Unlock()
	if cuts != 0 {
		t.Errorf("%d terminal cuts started for a desktop recording", cuts)
	}
}

// TestDesktopGrows: a live desktop recording's table grows with it (the
// index is extended, not rebuilt), and the part of a record still being
// written is never served.
func TestDesktopGrows(t *testing.T) {
	u := newUI(t, nil, nil)
	w, err := u.st.(store.KindCreator).CreateKind(context.Background(), "node-live", t0, store.KindDesktop)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(store.StatusComplete, "")
	var buf bytes.Buffer
	enc, _ := desktop.NewEncoder(&buf, desktop.Header{Width: 64, Height: 48, Start: t0}, 0)
	img := desktop.NewImage(64, 48)
	enc.Keyframe(0, img)
	w.Write(buf.Bytes())
	u.idx.PutRecording(context.Background(), index.Recording{Key: w.Key(), Node: "node-live", Start: t0, Status: "live", Kind: index.KindDesktop})
	table := func() deskIndexDoc {
		t.Helper()
		code, _, body := u.get(t, "alice", recURL(w.Key())+"/desk/index.json")
		var doc deskIndexDoc
		if code != 200 || json.Unmarshal(body, &doc) != nil {
			t.Fatalf("index.json: %d %s", code, body)
		}
		return doc
	}
	if d := table(); len(d.Keyframes) != 1 || !d.Live || d.Duration != 0 {
		t.Fatalf("at the start: %+v", d)
	}
	buf.Reset()
	img.Pix[5] = 0xFFFFFF
	enc.Region(2*time.Second, img, desktop.Rect{X: 5, W: 1, H: 1})
	enc.Keyframe(3*time.Second, img)
	line := bytes.Clone(buf.Bytes())
	w.Write(line[:len(line)-3]) // the keyframe's last bytes not yet
	if d := table(); len(d.Keyframes) != 1 || d.Duration != 2 {
		t.Fatalf("with a partial keyframe: %+v; want 1 keyframe, 2 s", d)
	}
	w.Write(line[len(line)-3:])
	if d := table(); len(d.Keyframes) != 2 || d.Duration != 3 || d.Keyframes[1][0] != 3 {
		t.Fatalf("after the keyframe: %+v; want 2 keyframes, 3 s", d)
	}
}

// canvasImage reads the player's canvas.
func (tb *tab) canvasImage() *desktop.Image {
	tb.t.Helper()
	s := tb.Eval(`(() => {
		const c = document.getElementById("desktop");
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let bin = "";
		for (let i = 0; i < d.length; i += 4) bin += String.fromCharCode(d[i], d[i+1], d[i+2]);
		return c.width + " " + c.height + " " + btoa(bin);
	})()`)
	var w, h int
	var b64 string
	if _, err := fmt.Sscan(s, &w, &h, &b64); err != nil {
		tb.t.Fatalf("canvas: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 3*w*h {
		tb.t.Fatalf("canvas pixels: %d bytes, %v", len(raw), err)
	}
	img := desktop.NewImage(w, h)
	for i := range img.Pix {
		img.Pix[i] = uint32(raw[3*i])<<16 | uint32(raw[3*i+1])<<8 | uint32(raw[3*i+2])
	}
	return img
}

// differ counts the pixels where a and b differ (all of them when the
// sizes differ).
func differ(a, b *desktop.Image) int {
	if a.W != b.W || a.H != b.H {
		return max(a.W*a.H, b.W*b.H)
	}
	n := 0
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			n++
		}
	}
	return n
}

// TestBrowserDesktop plays a desktop recording in Chromium: the list
// shows it as a desktop session; the page opens at its start; a click at
// 90 % of the progress bar shows exactly the frame reel export --frame
// renders for that moment, having fetched only the segment of the
// keyframe before it (the next is fetched ahead only while playing); a
// seek back to that keyframe, in the same segment, shows its frame;
// rewind goes back 10 s; play
// runs at the chosen speed to the end; Replay restarts from the start;
// pause stops the clock.
func TestBrowserDesktop(t *testing.T) {
	u := newUI(t, nil, nil)
	key, data := writeDesktop(t, u, "node-d", t0, 60, store.StatusComplete)
	ix, _ := desktop.Scan(bytes.NewReader(data))
	tb := newTab(t)
	tb.Login(u.base, "alice", "alice-pw")
	rows := tb.WaitText("#recordings tbody tr.rec td.kind", "the desktop row", func(s string) bool { return strings.Contains(s, "desktop") })
	if !strings.Contains(rows, "🖥") {
		t.Errorf("the desktop row has no icon: %q", rows)
	}
	tb.Do(chromedp.Navigate(u.base + recURL(key)))
	tb.waitAttr("#desktop", "ready", "1")
	if got, want := tb.canvasImage(), frameAt(t, data, 0); differ(got, want) != 0 {
		t.Errorf("at the start: %d pixels differ from reel export's frame", differ(got, want))
	}

	// Click at 90 % of the progress bar.
	before := u.sent.segments.Load()
	seeks := tb.seekCount()
	var box struct{ X, Y, W, H float64 }
	json.Unmarshal([]byte(tb.Eval(`JSON.stringify((() => { const r = document.getElementById("desk-seek").getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })())`)), &box)
	// A range input's thumb travels the width less its own (16 px in
	// Chromium): aim so the value is 90 %.
	const thumb = 16
	tb.Do(chromedp.MouseClickXY(box.X+thumb/2+0.9*(box.W-thumb), box.Y+box.H/2))
	tb.waitSeek("the seek to end", seeks)
	at, _ := strconv.ParseFloat(tb.Eval(`document.getElementById("desktop").dataset.t`), 64)
	if d := ix.Duration.Seconds(); at < 0.88*d || at > 0.92*d {
		t.Fatalf("after a click at 90 %%: at %.3f s of %.3f", at, d)
	}
	if got, want := tb.canvasImage(), frameAt(t, data, at); differ(got, want) != 0 {
		t.Errorf("at %.3f s: %d pixels differ from reel export's frame", at, differ(got, want))
	}
	k := 0
	for i, kf := range ix.Keyframes {
		if kf.T.Seconds() <= at {
			k = i
		}
	}
	segSize := func(i int) int64 {
		if i >= len(ix.Keyframes) {
			return 0
		}
		if i+1 < len(ix.Keyframes) {
			return ix.Keyframes[i+1].Off - ix.Keyframes[i].Off
		}
		return ix.Size - ix.Keyframes[i].Off
	}
	tb.waitFor("the segment", func() bool { return u.sent.segments.Load()-before >= segSize(k) })
	if sent := u.sent.segments.Load() - before; sent != segSize(k) {
		t.Errorf("the seek fetched %d bytes; want %d (segment %d, of the keyframe before, alone)", sent, segSize(k), k)
	}

	// Back to that segment's keyframe: the screen the player keeps is
	// cleared and drawn again from the keyframe (nothing of the later
	// moment stays), as reel export draws it.
	if kt := ix.Keyframes[k].T.Seconds(); kt < at {
		seeks = tb.seekCount()
		tb.Eval(fmt.Sprintf(`reelDesktop.seek(%f), ""`, kt))
		tb.waitSeek("the seek back to the keyframe", seeks)
		if got, want := tb.canvasImage(), frameAt(t, data, kt); differ(got, want) != 0 {
			t.Errorf("back at the keyframe, %.3f s: %d pixels differ from reel export's frame", kt, differ(got, want))
		}
		if got, want := tb.canvasImage(), frameAt(t, data, at); differ(got, want) == 0 {
			t.Errorf("the frames at %.3f s and %.3f s are the same: the seek back shows nothing", kt, at)
		}
		// And forward again, for the rewind below.
		seeks = tb.seekCount()
		tb.Eval(fmt.Sprintf(`reelDesktop.seek(%f), ""`, at))
		tb.waitSeek("the seek forward again", seeks)
		if got, want := tb.canvasImage(), frameAt(t, data, at); differ(got, want) != 0 {
			t.Errorf("forward again at %.3f s: %d pixels differ from reel export's frame", at, differ(got, want))
		}
	} else {
		t.Errorf("the click landed on keyframe %d's own moment (%.3f s); the test wants a moment after it", k, at)
	}

	// Rewind.
	tb.Do(chromedp.Click(chromedp.ID("desk-back")))
	tb.waitFor("10 s back", func() bool {
		now, _ := strconv.ParseFloat(tb.Eval(`document.getElementById("desktop").dataset.t`), 64)
		return now > at-10.001 && now < at-9.999
	})
	back := at - 10
	if got, want := tb.canvasImage(), frameAt(t, data, back); differ(got, want) != 0 {
		t.Errorf("10 s back, at %.3f s: %d pixels differ from reel export's frame", back, differ(got, want))
	}

	// Play at 16× to the end: the last frame is the recording's last.
	tb.Do(chromedp.SetValue(chromedp.ID("desk-speed"), "16"))
	tb.Eval(`document.getElementById("desk-speed").dispatchEvent(new Event("change")), ""`)
	tb.Do(chromedp.Click(chromedp.ID("desk-play")))
	tb.waitAttr("#desktop", "ended", "1")
	if got, want := tb.canvasImage(), frameAt(t, data, ix.Duration.Seconds()); differ(got, want) != 0 {
		t.Errorf("at the end: %d pixels differ from reel export's last frame", differ(got, want))
	}
	if txt := tb.Eval(`document.getElementById("desk-play").textContent`); txt != "Replay" {
		t.Errorf("at the end the play button says %q", txt)
	}

	// Replay: from the start again; then pause.
	tb.Do(chromedp.Click(chromedp.ID("desk-play")))
	tb.waitFor("playing again from the start", func() bool {
		st := tb.Eval(`JSON.stringify(reelDesktop.state())`)
		var s struct {
			T       float64
			Playing bool
		}
		json.Unmarshal([]byte(st), &s)
		return s.Playing && s.T > 0 && s.T < 0.5*ix.Duration.Seconds()
	})
	tb.Do(chromedp.Click(chromedp.ID("desk-play")))
	paused := tb.Eval(`document.getElementById("desktop").dataset.t`)
	if tb.Eval(`document.getElementById("desktop").dataset.playing`) != "" {
		t.Errorf("still playing after pause")
	}
	// Let a few frames pass: the time on screen stays.
	tb.EvalAsync(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(() => r("")))))`)
	if now := tb.Eval(`document.getElementById("desktop").dataset.t`); now != paused {
		t.Errorf("paused at %s, then at %s", paused, now)
	}
	tb.Clean()
}

// TestBrowserDesktopHover: with the pointer over the progress bar the
// player fetches the segment under it, before any click; a click there
// then shows that moment exactly as reel export draws it without
// fetching anything more.
func TestBrowserDesktopHover(t *testing.T) {
	u := newUI(t, nil, nil)
	key, data := writeDesktop(t, u, "node-h", t0, 60, store.StatusComplete)
	ix, _ := desktop.Scan(bytes.NewReader(data))
	tb := newTab(t)
	tb.Login(u.base, "alice", "alice-pw")
	tb.Do(chromedp.Navigate(u.base + recURL(key)))
	tb.waitAttr("#desktop", "ready", "1")
	before := u.sent.segments.Load()
	var box struct{ X, Y, W, H float64 }
	json.Unmarshal([]byte(tb.Eval(`JSON.stringify((() => { const r = document.getElementById("desk-seek").getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })())`)), &box)
	const thumb, place = 16, 0.5
	x, y := box.X+thumb/2+place*(box.W-thumb), box.Y+box.H/2
	// Where the click will land: the segment of the keyframe before it.
	want := place * ix.Duration.Seconds()
	k := 0
	for i, kf := range ix.Keyframes {
		if kf.T.Seconds() <= want {
			k = i
		}
	}
	if k == 0 {
		t.Fatalf("at %.3f s: the first segment, which the page has already", want)
	}
	size := ix.Size - ix.Keyframes[k].Off
	if k+1 < len(ix.Keyframes) {
		size = ix.Keyframes[k+1].Off - ix.Keyframes[k].Off
	}
	tb.Do(chromedp.MouseEvent(chromedp.MouseMoved, x, y))
	tb.waitFor("the segment under the pointer", func() bool { return u.sent.segments.Load()-before >= size })
	if sent := u.sent.segments.Load() - before; sent != size {
		t.Errorf("hovering fetched %d bytes; want %d (segment %d alone)", sent, size, k)
	}
	seeks := tb.seekCount()
	tb.Do(chromedp.MouseClickXY(x, y))
	tb.waitSeek("the seek to end", seeks)
	at, _ := strconv.ParseFloat(tb.Eval(`document.getElementById("desktop").dataset.t`), 64)
	if kt := ix.Keyframes[k].T.Seconds(); at < kt || (k+1 < len(ix.Keyframes) && at >= ix.Keyframes[k+1].T.Seconds()) {
		t.Fatalf("the click went to %.3f s, outside segment %d (from %.3f s)", at, k, kt)
	}
	if got, want := tb.canvasImage(), frameAt(t, data, at); differ(got, want) != 0 {
		t.Errorf("at %.3f s: %d pixels differ from reel export's frame", at, differ(got, want))
	}
	if sent := u.sent.segments.Load() - before; sent != size {
		t.Errorf("hover and click fetched %d bytes; want %d (segment %d, once)", sent, size, k)
	}
	tb.Clean()
}

// waitAttr waits until the element sel has data-name="want".
func (tb *tab) waitAttr(sel, name, want string) {
	tb.t.Helper()
	expr := fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset[%q] || ""`, sel, name)
	var last string
	tb.waitFor(sel+" data-"+name+"="+want, func() bool {
		last = tb.Eval(expr)
		return last == want
	})
	_ = last
}

// waitFor polls ok until it holds, failing with the page's reports.
// seekCount is the desktop player's count of the seeks it finished.
func (tb *tab) seekCount() string {
	return tb.Eval(`document.getElementById("desktop").dataset.seeks`)
}

// waitSeek waits for a seek begun when the count was before to end.
func (tb *tab) waitSeek(what, before string) {
	tb.waitFor(what, func() bool {
		return tb.seekCount() != before && tb.Eval(`document.getElementById("desktop").dataset.seeking`) == ""
	})
}

func (tb *tab) waitFor(what string, ok func() bool) {
	tb.t.Helper()
	if err := testutil.Poll(testutil.DefaultWait, ok); err != nil {
		d, p := tb.Reports()
		status := tb.Eval(`(document.getElementById("desk-status") || {}).textContent || ""`)
		tb.t.Fatalf("waiting for %s: not seen (status %q, dialogs %q, problems %q)", what, status, d, p)
	}
}

// tab is a webtest tab with the desktop player's helpers.
type tab struct {
	*webtest.Tab
	t testing.TB
}

func newTab(t testing.TB) *tab { return &tab{webtest.NewTab(t), t} }
