package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
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
	tb := newTab(t)
	tb.login(u.base, "alice", "alice-pw")

	rows := tb.waitText("#recordings tbody tr.rec", "three recordings", func(s string) bool { return strings.Count(s, "\n") == 2 })
	for _, want := range []string{"bash -l", "top", "exec prod/web-0", "kubernetes", "carol@example.com as root"} {
		if !strings.Contains(rows, want) && !(want == "exec prod/web-0" && strings.Contains(rows, "prod/web-0")) {
			t.Errorf("list lacks %q:\n%s", want, rows)
		}
	}

	// Filter by user, in the page's form.
	tb.do(
		chromedp.SendKeys(chromedp.CSS(`form.filters input[name=user]`), "dave@example.com"),
		chromedp.Click(chromedp.ID("filter")),
	)
	rows = tb.waitText("#recordings tbody tr.rec", "only dave's recording", func(s string) bool {
		return strings.Contains(s, "top") && !strings.Contains(s, "bash -l") && !strings.Contains(s, "web-0")
	})
	if strings.Count(rows, "\n") != 0 {
		t.Fatalf("filtered list has more than one row:\n%s", rows)
	}

	// Search, and open the hit.
	tb.do(
		chromedp.Navigate(u.base+"/search"),
		chromedp.SendKeys(chromedp.ID("q"), "needle appears"),
		chromedp.Click(chromedp.ID("search")),
	)
	hits := tb.waitText("#hits li.hit", "the hit", func(s string) bool { return strings.Contains(s, "the needle appears here") })
	if !strings.Contains(hits, "1:05") {
		t.Errorf("hit does not name its moment 1:05:\n%s", hits)
	}
	tb.do(chromedp.Click(chromedp.CSS(`#hits li.hit a.moment`)))
	screen := tb.waitScreen("the needle on the screen", func(s string) bool { return strings.Contains(s, "the needle appears here") })
	if strings.Contains(screen, "first screen text") || strings.Contains(screen, "after the needle") {
		t.Errorf("the player is not at the hit's moment; screen:\n%s", screen)
	}
	if url := tb.eval(`location.href`); !strings.HasSuffix(url, "#t=1:05.6") || !strings.Contains(url, recURL(needleKey)) {
		t.Errorf("player page URL %s", url)
	}
	// The hit is a marker on the progress bar.
	tb.waitText(".ap-marker-container .ap-tooltip", "the hit's marker", func(s string) bool { return strings.Contains(s, "needle appears") })

	// A link to a moment opens there.
	tb.do(chromedp.Navigate(u.base + recURL(needleKey) + "#t=0:72"))
	tb.waitScreen("the screen at 1:12", func(s string) bool {
		return strings.Contains(s, "after the needle") && !strings.Contains(s, "logout")
	})
	tb.clean()
	for _, a := range []string{"list", "search", "view", "play"} {
		if !u.audit.has("alice", a, "") {
			t.Errorf("no %q in the audit log: %+v", a, u.audit.entries)
		}
	}
}
