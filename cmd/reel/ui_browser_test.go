package main

// reel serve --ui in a real headless Chromium (internal/web/webtest).

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/testutil"
	"github.com/reel-rec/reel/internal/web/webtest"
)

// TestServeUIBrowserFind: in Chromium, the first admin logs in with the
// printed one-time password, is sent to choose a password, searches the
// screen text of a recording sent with Tailscale's client, clicks the
// hit, and the player opens at that moment with the line on its screen.
func TestServeUIBrowserFind(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "recordings")
	s := startServeUI(t, dst)
	sendTailscale(t, s.addr, zebraCast()...)

	tb := webtest.NewTab(t)
	pw := "chosen-in-the-browser-7"
	tb.Do(
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible(chromedp.ID("name")), // the login page
		chromedp.SendKeys(chromedp.ID("name"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), s.otp),
		chromedp.Click(chromedp.ID("login")),
		// The one-time password leads to the page to choose one's own.
		chromedp.WaitVisible(chromedp.CSS(`input[name=new]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=old]`), s.otp),
		chromedp.SendKeys(chromedp.CSS(`input[name=new]`), pw),
		chromedp.SendKeys(chromedp.CSS(`input[name=again]`), pw),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("viewer")),
	)
	tb.WaitText("#recordings tbody tr.rec", "the recording in the list", func(s string) bool { return strings.Contains(s, "bash -l") })

	// Search until the indexer has the text, then open the hit.
	var hits string
	testutil.WaitForSeen(t, testutil.DefaultWait, "the search hit", func() bool {
		tb.Do(chromedp.Navigate(s.base + "/search?q=zebra-crossing"))
		hits = tb.Eval(`Array.from(document.querySelectorAll("#hits li.hit")).map(e => e.textContent).join("\n")`)
		return strings.Contains(hits, "zebra-crossing-42")
	}, func() string { return hits })
	if !strings.Contains(hits, "0:03") {
		t.Errorf("the hit does not name its moment 0:03:\n%s", hits)
	}
	tb.Do(chromedp.Click(chromedp.CSS(`#hits li.hit a.moment`)))
	screen := tb.WaitScreen("the line on the player's screen", func(s string) bool { return strings.Contains(s, "zebra-crossing-42 is on the screen") })
	if strings.Contains(screen, "logout") {
		t.Errorf("the player is past the hit's moment (3.5 s); screen:\n%s", screen)
	}
	if url := tb.Eval(`location.href`); !strings.HasSuffix(url, "#t=0:03.6") {
		t.Errorf("the player's address %s, want it at #t=0:03.6", url)
	}
	tb.Clean()
	es := auditEntries(t, dst)
	for _, a := range []string{audit.ActionLogin, audit.ActionPassword, audit.ActionSearch, audit.ActionView, audit.ActionPlay} {
		if !hasEntry(es, "admin", a, audit.ResultOK, "") {
			t.Errorf("no %s of admin in reel audit", a)
		}
	}
}

// TestServeUIBrowserLive: a session recorded through reel ssh, driven by
// the real OpenSSH client (ssh -tt), is live in the list while it runs,
// and its live view in Chromium shows what is typed during the session;
// when it ends the list says so without a reload.
func TestServeUIBrowserLive(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "recordings")
	s := startServeUI(t, dst)
	pw := newUIClient(t, s.base).firstLogin(s.otp)
	e := startReelSSH(t, sshPolicy([]string{s.addr}, ""), currentUser(t))

	c := e.startPTY(80, 24, e.sshArgs("-tt", e.target(), "PS1='$ ' exec sh -i")...)
	c.Expect("$ ")
	// The output differs from the typed line, so the screen shows output.
	c.Send("echo live-$((6*7))-before\r")
	c.Expect("live-42-before")

	tb := webtest.NewTab(t)
	tb.Login(s.base, "admin", pw)
	var rows string
	testutil.WaitForSeen(t, testutil.DefaultWait, "a live row in the list", func() bool {
		tb.Do(chromedp.Navigate(s.base + "/"))
		rows = tb.Eval(`Array.from(document.querySelectorAll("#recordings tr.rec.live .badge")).map(e => e.textContent).join("\n")`)
		return rows == "live"
	}, func() string { return rows })
	href := tb.Eval(`document.querySelector("#recordings tr.rec.live a.open").getAttribute("href")`)
	tb.Do(chromedp.Navigate(s.base + href))
	if f := tb.Eval(`document.getElementById("player").dataset.format`); f != "live" {
		t.Fatalf("the player's format is %q, want live", f)
	}
	tb.WaitScreen("the screen so far", func(s string) bool { return strings.Contains(s, "live-42-before") })

	c.Send("echo typed-$((5+5))-while-watched\r")
	c.Expect("typed-10-while-watched")
	tb.WaitScreen("what was typed while watching", func(s string) bool { return strings.Contains(s, "typed-10-while-watched") })

	// The end of the session: the list marks it complete without a reload.
	tb.Do(chromedp.Navigate(s.base + "/"))
	tb.WaitText("#recordings tr.rec .badge", "the live row", func(s string) bool { return s == "live" })
	c.Send("exit\r")
	if code := c.Wait(); code != 0 {
		t.Fatalf("ssh exit %d:\n%s", code, c.Output())
	}
	tb.WaitText("#recordings tr.rec .badge", "the row complete", func(s string) bool { return s == "complete" })
	tb.Clean()
	if es := auditEntries(t, dst); !hasEntry(es, "admin", audit.ActionLive, audit.ResultOK, strings.TrimPrefix(href, "/r/")) {
		t.Errorf("the live view is not in reel audit: %+v", es)
	}
}
