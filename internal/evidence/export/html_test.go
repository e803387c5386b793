package export

import (
	"bytes"
	"context"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/testutil"
)

// chromeDOM loads a page in headless Chromium, lets its timers run, and
// returns the DOM it ends with and what Chromium logged (console messages,
// Content-Security-Policy violations).
func chromeDOM(t *testing.T, page string) (dom, log string) {
	t.Helper()
	chromium := testutil.NeedTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=10000", "--dump-dom", "file://"+page)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String(), errb.String()
}

// playerDOM loads a page until the player has drawn its rows: on a
// loaded machine Chromium's virtual time may run out before the player's
// first frame. It tries up to three times.
func playerDOM(t *testing.T, page string) (dom, log string) {
	t.Helper()
	for range 3 {
		dom, log = chromeDOM(t, page)
		if len(playerRows(dom)) > 0 {
			break
		}
	}
	return dom, log
}

// writePage writes cast's page into dir.
func writePage(t *testing.T, dir string, cast []byte, info HTMLInfo) string {
	t.Helper()
	p := filepath.Join(dir, "rec.html")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info.PlayerJS, info.PlayerCSS = player(t)
	if err := HTML(f, cast, info); err != nil {
		t.Fatal(err)
	}
	return p
}

// player returns the web UI's copy of asciinema-player, which reel export
// puts in its pages (web.Player).
func player(t *testing.T) (js, css []byte) {
	t.Helper()
	js, err := os.ReadFile("../../web/assets/player/asciinema-player.min.js")
	if err != nil {
		t.Fatal(err)
	}
	css, err = os.ReadFile("../../web/assets/player/asciinema-player.css")
	if err != nil {
		t.Fatal(err)
	}
	return js, css
}

func TestHTMLNeedsThePlayer(t *testing.T) {
	if err := HTML(io.Discard, []byte("{}\n"), HTMLInfo{}); err == nil {
		t.Error("a page without the player was made")
	}
}

var tag = regexp.MustCompile(`<[^>]*>`)

// playerRows returns the text of the rows the player drew: the contents
// of its elements of class ap-line, in order.
func playerRows(dom string) []string {
	parts := strings.Split(dom, `class="ap-line"`)
	var rows []string
	for i, part := range parts[1:] {
		_, part, _ = strings.Cut(part, ">") // the rest of the opening tag
		if i == len(parts)-2 {
			part, _, _ = strings.Cut(part, "</pre>")
		}
		if j := strings.LastIndex(part, "<span"); j >= 0 && i < len(parts)-2 {
			part = part[:j] // the next line's opening tag
		}
		text := html.UnescapeString(tag.ReplaceAllString(part, ""))
		rows = append(rows, strings.TrimRight(strings.ReplaceAll(text, "\u00a0", " "), " "))
	}
	for len(rows) > 0 && rows[len(rows)-1] == "" {
		rows = rows[:len(rows)-1]
	}
	return rows
}

func TestHTMLPlaysInChromium(t *testing.T) {
	cast, want := golden(t, "bash")
	p := writePage(t, t.TempDir(), cast, HTMLInfo{Title: "node-1/x.cast", Poster: -1})
	page, _ := os.ReadFile(p)
	for _, ref := range []string{`src="http`, `href="http`, `src="//`, `url(http`, `@import`} {
		if bytes.Contains(page, []byte(ref)) {
			t.Errorf("the page loads something from elsewhere: %s", ref)
		}
	}
	dom, log := playerDOM(t, p)
	got := playerRows(dom)
	if len(got) == 0 {
		t.Fatalf("no player rows in the DOM:\n%.3000s", dom)
	}
	// The player shows the last screen: the same text tmux showed.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the player's last screen (-tmux +chromium):\n%s", diff)
	}
	for _, bad := range []string{"Content Security Policy", "Uncaught", "Refused to"} {
		if strings.Contains(log, bad) {
			t.Errorf("Chromium logged %q:\n%s", bad, grepLines(log, bad))
		}
	}
}

func TestHTMLRecordedBytesAreData(t *testing.T) {
	cast := []byte(`{"version":2,"width":80,"height":5}
[0.1,"o","</script><script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"]
`)
	p := writePage(t, t.TempDir(), cast, HTMLInfo{Title: "<i>t</i>", Facts: [][2]string{{"sender", "<script>document.title='pwned'</script>"}}, Poster: -1})
	dom, _ := playerDOM(t, p)
	if strings.Contains(dom, "<title>pwned") || strings.Contains(dom, `<img src="x"`) || strings.Contains(dom, "<i>t</i>") {
		t.Errorf("recorded bytes or facts became markup:\n%.3000s", dom)
	}
	if rows := playerRows(dom); len(rows) == 0 || !strings.Contains(rows[0], "<script>document.title='pwned'</script>") {
		t.Errorf("the player does not show the output as text: %q", rows)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
