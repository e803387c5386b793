package main

// reel serve --ui end to end, through the real binary: the first start's
// one-time password, a recording sent with Tailscale's own client, the
// index, search, playback, viewer access and the audit log.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/testutil"
)

// uiServe is a "reel serve --ui" for a test.
type uiServe struct {
	*reelProc
	dst  string
	base string // the UI's address, as reel printed it, without the "/"
	otp  string // the first admin's one-time password
}

var (
	uiURLRE = regexp.MustCompile(`reel: the web UI is at (http://\S+)/\n`)
	otpRE   = regexp.MustCompile(`reel: first start: log in to the web UI as "admin" with the one-time password (\S+)\n`)
)

// startServeUI starts "reel serve --ui" with its defaults (the index and
// accounts in <dst>/.reel) on free ports, and reads what it prints: where
// the UI is and the one-time password.
func startServeUI(t *testing.T, dst string, extra ...string) *uiServe {
	t.Helper()
	uiAddr := freeAddr(t)
	p := startServe(t, dst, append([]string{"--ui", "--ui-listen", uiAddr}, extra...)...)
	s := &uiServe{reelProc: p, dst: dst}
	testutil.WaitForSeen(t, testutil.DefaultWait, "reel serve to print where the UI is", func() bool {
		if p.exited() {
			t.Fatalf("reel serve exited: %v", p.err)
		}
		return uiURLRE.MatchString(p.logs.String())
	}, p.logs.String)
	s.base = uiURLRE.FindStringSubmatch(p.logs.String())[1]
	if s.base != "http://"+uiAddr {
		t.Fatalf("the UI is at %s, want http://%s", s.base, uiAddr)
	}
	if m := otpRE.FindStringSubmatch(p.logs.String()); m != nil {
		s.otp = m[1]
	}
	return s
}

// uiClient is a browser-like HTTP client of the UI: it keeps cookies and
// shows redirects instead of following them.
type uiClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newUIClient(t *testing.T, base string) *uiClient {
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: testutil.DefaultWait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get returns the status, the Location header and the body of GET path.
func (u *uiClient) get(path string) (int, string, string) {
	u.t.Helper()
	resp, err := u.c.Get(u.base + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// postForm posts a form from the page at from (whose CSRF token it
// carries) to path, as a same-origin browser does.
func (u *uiClient) postForm(from, path string, form url.Values) (int, string, string) {
	u.t.Helper()
	code, _, page := u.get(from)
	m := csrfFieldRE.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		u.t.Fatalf("GET %s: %d, no CSRF token in the form:\n%s", from, code, page)
	}
	form.Set("csrf", m[1])
	req, _ := http.NewRequest("POST", u.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.base)
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// login logs in with the login form and returns where it sends the viewer.
func (u *uiClient) login(name, password string) string {
	u.t.Helper()
	code, loc, body := u.postForm("/login", "/login", url.Values{"name": {name}, "password": {password}})
	if code != http.StatusSeeOther {
		u.t.Fatalf("login as %s: %d\n%s", name, code, body)
	}
	return loc
}

// firstLogin logs in as admin with the one-time password, is sent to set
// a password of its own, sets it, and returns it.
func (u *uiClient) firstLogin(otp string) string {
	u.t.Helper()
	if otp == "" {
		u.t.Fatal("reel serve printed no one-time password")
	}
	u.login("admin", otp)
	// With a one-time password every page leads to the password page,
	// and no data is given.
	if code, loc, _ := u.get("/"); code != http.StatusSeeOther || loc != "/auth/password" {
		u.t.Fatalf("GET / with a one-time password: %d to %q, want a redirect to /auth/password", code, loc)
	}
	if code, _, body := u.get("/api/rows?k=x/y.cast"); code != http.StatusForbidden {
		u.t.Fatalf("/api/rows with a one-time password: %d %s", code, body)
	}
	pw := "a-password-of-my-own-42"
	code, loc, body := u.postForm("/auth/password", "/auth/password", url.Values{"old": {otp}, "new": {pw}, "again": {pw}})
	if code != http.StatusSeeOther || loc != "/" {
		u.t.Fatalf("setting the password: %d to %q\n%s", code, loc, body)
	}
	if code, _, body := u.get("/"); code != http.StatusOK || !strings.Contains(body, `id="viewer">admin<`) {
		u.t.Fatalf("GET / after setting the password: %d\n%s", code, body)
	}
	return pw
}

// waitPage polls GET path until its body satisfies ok, and returns it.
func (u *uiClient) waitPage(path, what string, ok func(string) bool) string {
	u.t.Helper()
	var body string
	var code int
	testutil.WaitForSeen(u.t, testutil.DefaultWait, what, func() bool {
		code, _, body = u.get(path)
		return code == http.StatusOK && ok(body)
	}, func() string { return fmt.Sprintf("GET %s: %d\n%s", path, code, body) })
	return body
}

// sendTailscale uploads a recording with Tailscale's own client package,
// as a Tailscale SSH node does, and waits for the recorder to take it all.
func sendTailscale(t *testing.T, recorder string, lines ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	wc, _, errc, err := sessionrecording.ConnectToRecorder(ctx, []netip.AddrPort{netip.MustParseAddrPort(recorder)}, dialTCP)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := io.WriteString(wc, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Recv(t, "the upload's end", errc); err != nil {
		t.Fatalf("upload: %v", err)
	}
}

// zebraCast is a Tailscale SSH session whose screen shows
// "zebra-crossing-42" from 3.5 s on.
func zebraCast(tags ...string) []string {
	tg, _ := json.Marshal(tags)
	return []string{
		fmt.Sprintf(`{"version":2,"width":80,"height":24,"timestamp":%d,"command":"bash -l","srcNode":"laptop.example.ts.net","srcNodeID":"nLAPTOP","srcNodeUser":"carol@example.com","srcNodeTags":%s,"sshUser":"root","localUser":"root","connectionID":"c0ffee"}`, time.Now().Unix(), tg),
		`[0.2,"o","$ ls\r\n"]`,
		`[1.0,"o","file-a  file-b\r\n"]`,
		`[3.5,"o","zebra-crossing-42 is on the screen\r\n"]`,
		`[5.0,"o","logout\r\n"]`,
	}
}

var recLinkRE = regexp.MustCompile(`href="(/r/[^"#?]+)[^"]*"`)

// auditEntries runs "reel audit --json" on dst's state directory.
func auditEntries(t *testing.T, dst string) []audit.Entry {
	t.Helper()
	out, err := exec.Command(reelExe(t), "audit", "--dst", dst, "--json").Output()
	if err != nil {
		t.Fatalf("reel audit: %v\n%s", err, out)
	}
	var es []audit.Entry
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("reel audit --json: %v: %s", err, sc.Text())
		}
		es = append(es, e)
	}
	return es
}

// hasEntry reports whether es has an entry of user, action and result
// whose target contains target.
func hasEntry(es []audit.Entry, user, action, result, target string) bool {
	for _, e := range es {
		if e.User == user && e.Action == action && e.Result == result && strings.Contains(e.Target, target) {
			return true
		}
	}
	return false
}

// TestServeUIFirstStart: reel serve --ui on its defaults prints where the
// UI is and a one-time password; the admin logs in with it, must set a
// password of their own, and then finds a recording sent with Tailscale's
// client in the list, finds it by its screen text at the moment the text
// appeared, and plays it. Each act is in reel audit.
func TestServeUIFirstStart(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "recordings")
	s := startServeUI(t, dst)
	if n := strings.Count(s.logs.String(), "one-time password "); n != 1 || s.otp == "" {
		t.Fatalf("the one-time password is printed %d times:\n%s", n, s.logs.String())
	}
	c := newUIClient(t, s.base)
	if code, _, body := c.postForm("/login", "/login", url.Values{"name": {"admin"}, "password": {"admin"}}); code != http.StatusUnauthorized {
		t.Fatalf("a login with a guessed password: %d\n%s", code, body)
	}
	c.firstLogin(s.otp)

	sendTailscale(t, s.addr, zebraCast()...)
	list := c.waitPage("/", "the recording in the list", func(b string) bool { return strings.Contains(b, "bash -l") && strings.Contains(b, "carol@example.com") })
	m := recLinkRE.FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("no link to the recording in the list:\n%s", list)
	}
	rec := m[1]
	hits := c.waitPage("/search?q=zebra-crossing", "a search hit", func(b string) bool { return strings.Contains(b, "zebra-crossing") && strings.Contains(b, rec) })
	// The line appeared at 3.5 s: the hit names 0:03 and links to the
	// tenth of a second after it.
	link := rec + "?q=zebra-crossing#t=0:03.6"
	if !strings.Contains(hits, `href="`+link+`"`) {
		t.Fatalf("the hit does not link to %s:\n%s", link, hits)
	}
	code, _, page := c.get(rec + "?q=zebra-crossing")
	if code != http.StatusOK || !strings.Contains(page, `data-t="3.5"`) {
		t.Fatalf("the recording's page: %d, without the hit at 3.5 s:\n%s", code, page)
	}
	code, _, cast := c.get(rec + "/cast?q=zebra-crossing")
	if code != http.StatusOK || !strings.Contains(cast, "zebra-crossing-42 is on the screen") || !strings.Contains(cast, "found: zebra-crossing") {
		t.Fatalf("playing it: %d\n%s", code, cast)
	}
	code, _, file := c.get(rec + "/download")
	if code != http.StatusOK || !strings.Contains(file, `"srcNodeUser":"carol@example.com"`) {
		t.Fatalf("downloading it: %d\n%s", code, file)
	}

	key := strings.TrimPrefix(rec, "/r/")
	es := auditEntries(t, dst)
	for _, want := range []struct{ user, action, result, target string }{
		{"admin", audit.ActionUserAdd, audit.ResultOK, "admin"},
		{"admin", audit.ActionLogin, audit.ResultFailed, ""},
		{"admin", audit.ActionLogin, audit.ResultOK, ""},
		{"admin", audit.ActionPassword, audit.ResultOK, ""},
		{"admin", audit.ActionList, audit.ResultOK, ""},
		{"admin", audit.ActionSearch, audit.ResultOK, "zebra-crossing"},
		{"admin", audit.ActionView, audit.ResultOK, key},
		{"admin", audit.ActionPlay, audit.ResultOK, key},
		{"admin", audit.ActionDownload, audit.ResultOK, key},
	} {
		user := want.user
		if want.action == audit.ActionUserAdd {
			user = "" // the OS user who started reel
			for _, e := range es {
				if e.Action == audit.ActionUserAdd {
					user = e.User
				}
			}
		}
		if !hasEntry(es, user, want.action, want.result, want.target) {
			t.Errorf("reel audit has no %+v", want)
		}
	}
	for _, e := range es {
		if e.Action == audit.ActionView && e.From != "127.0.0.1" {
			t.Errorf("a view from %q, want 127.0.0.1", e.From)
		}
	}
	if t.Failed() {
		t.Logf("reel audit --json: %+v", es)
	}
}

// TestServeUIViewers: a viewer account sees no recording until a viewers
// rule of the policy gives it the node's tag (the policy is reloaded as
// it changes); nobody sees anything without logging in; every list,
// search and view, and every refusal, is in reel audit.
func TestServeUIViewers(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "recordings")
	pol := filepath.Join(dir, "policy.hujson")
	if err := os.WriteFile(pol, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServeUI(t, dst, "--policy", pol)
	admin := newUIClient(t, s.base)
	admin.firstLogin(s.otp)
	add := exec.Command(reelExe(t), "user", "add", "bob", "--dst", dst, "--password-stdin")
	add.Stdin = strings.NewReader("bobs-own-password\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("reel user add: %v\n%s", err, out)
	}
	sendTailscale(t, s.addr, zebraCast("tag:prod")...)
	list := admin.waitPage("/search?q=zebra-crossing", "the admin's search hit", func(b string) bool { return strings.Contains(b, "is on the screen") })
	rec := recLinkRE.FindStringSubmatch(list)[1]
	key := strings.TrimPrefix(rec, "/r/")

	// Nobody: a page leads to the login, data is refused, nothing shows.
	anon := newUIClient(t, s.base)
	for _, path := range []string{"/", "/search?q=zebra-crossing", "/events", rec, rec + "/cast", rec + "/download", rec + "/live", "/api/rows?k=" + url.QueryEscape(key)} {
		code, loc, body := anon.get(path)
		switch {
		case code == http.StatusSeeOther && strings.HasPrefix(loc, "/login?next="):
		case code == http.StatusUnauthorized:
		default:
			t.Errorf("GET %s without logging in: %d %q", path, code, loc)
		}
		for _, leak := range []string{"is on the screen", "carol", "bash -l", "127.0.0.1/"} {
			if strings.Contains(body, leak) {
				t.Errorf("GET %s without logging in shows %q", path, leak)
			}
		}
	}

	// bob, with no viewers rule: an empty list, no hit, no recording.
	bob := newUIClient(t, s.base)
	if loc := bob.login("bob", "bobs-own-password"); loc != "/" {
		t.Fatalf("bob's login leads to %q", loc)
	}
	for _, path := range []string{"/", "/search?q=zebra-crossing"} {
		code, _, body := bob.get(path)
		if code != http.StatusOK || strings.Contains(body, "is on the screen") || strings.Contains(body, "carol") || strings.Contains(body, key) {
			t.Errorf("GET %s as bob without a rule: %d\n%s", path, code, body)
		}
	}
	for _, path := range []string{rec, rec + "/cast", rec + "/download"} {
		if code, _, body := bob.get(path); code != http.StatusNotFound || strings.Contains(body, "is on the screen") {
			t.Errorf("GET %s as bob without a rule: %d, want 404\n%s", path, code, body)
		}
	}

	// A rule for the recording's tag, to view but not download: the
	// running recorder reloads the policy.
	if err := os.WriteFile(pol, []byte(`{"viewers": [{"src": ["bob"], "nodes": ["tag:prod"], "actions": ["view"]}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bob.waitPage("/", "bob's list to show the recording of tag:prod", func(b string) bool { return strings.Contains(b, key) })
	bob.waitPage("/search?q=zebra-crossing", "bob's search hit", func(b string) bool { return strings.Contains(b, "is on the screen") })
	if code, _, body := bob.get(rec + "/cast"); code != http.StatusOK || !strings.Contains(body, "zebra-crossing-42") {
		t.Errorf("bob plays it: %d\n%s", code, body)
	}
	if code, _, body := bob.get(rec + "/download"); code != http.StatusForbidden || strings.Contains(body, "is on the screen") {
		t.Errorf("bob downloads it with view only: %d\n%s", code, body)
	}

	es := auditEntries(t, dst)
	for _, want := range []struct{ user, action, result, target string }{
		{"bob", audit.ActionLogin, audit.ResultOK, ""},
		{"bob", audit.ActionList, audit.ResultOK, ""},
		{"bob", audit.ActionSearch, audit.ResultOK, "zebra-crossing"},
		{"bob", audit.ActionView, audit.ResultDenied, key},
		{"bob", audit.ActionPlay, audit.ResultOK, key},
		{"bob", audit.ActionDownload, audit.ResultDenied, key},
	} {
		if !hasEntry(es, want.user, want.action, want.result, want.target) {
			t.Errorf("reel audit has no %+v", want)
		}
	}
	for _, e := range es {
		if e.User == "" && e.Action != audit.ActionLogin {
			t.Errorf("an act of nobody is audited: %+v", e)
		}
	}
	if t.Failed() {
		t.Logf("reel audit --json: %+v", es)
	}
}

// TestServeIndexesAsItRecords: without the UI too, the recorder's Notify
// reaches the indexer, so a recording is searchable moments after it
// ends, not only after a restart or a rebuild.
func TestServeIndexesAsItRecords(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "recordings")
	s := startServe(t, dst)
	sendTailscale(t, s.addr, zebraCast()...)
	var out []byte
	testutil.WaitForSeen(t, testutil.DefaultWait, "reel search to find the recording", func() bool {
		var err error
		out, err = exec.Command(reelExe(t), "search", "--dst", dst, "zebra-crossing").CombinedOutput()
		return err == nil && strings.Contains(string(out), "zebra-crossing-42 is on the screen")
	}, func() string { return string(out) })
	if !strings.Contains(string(out), "0:03") {
		t.Errorf("reel search does not give the moment 0:03:\n%s", out)
	}
}

// TestServeUIProxy: behind a trusted reverse proxy the UI believes the
// proxy's identity header, makes no accounts and prints no password; the
// policy's admins see every recording, and the audit log names the client
// the proxy names.
func TestServeUIProxy(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "recordings")
	pol := filepath.Join(dir, "policy.hujson")
	if err := os.WriteFile(pol, []byte(`{"admins": ["alice"]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServeUI(t, dst, "--policy", pol, "--ui-trusted-proxy", "127.0.0.1", "--ui-proxy-header", "X-Forwarded-User")
	if s.otp != "" || strings.Contains(s.logs.String(), "one-time password") {
		t.Fatalf("a one-time password behind a proxy:\n%s", s.logs.String())
	}
	if _, err := os.Stat(filepath.Join(dst, ".reel", "accounts.json")); !os.IsNotExist(err) {
		t.Errorf("accounts made behind a proxy: %v", err)
	}
	sendTailscale(t, s.addr, zebraCast()...)
	get := func(user, path string) (int, string) {
		req, _ := http.NewRequest("GET", s.base+path, nil)
		if user != "" {
			req.Header.Set("X-Forwarded-User", user)
			req.Header.Set("X-Forwarded-For", "192.0.2.7")
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var body string
	testutil.WaitForSeen(t, testutil.DefaultWait, "alice's search hit", func() bool {
		var code int
		code, body = get("alice", "/search?q=zebra-crossing")
		return code == http.StatusOK && strings.Contains(body, "is on the screen")
	}, func() string { return body })
	if code, body := get("mallory", "/search?q=zebra-crossing"); code != http.StatusOK || strings.Contains(body, "is on the screen") {
		t.Errorf("a viewer who is no admin, without a rule: %d\n%s", code, body)
	}
	if code, body := get("", "/"); code != http.StatusSeeOther || strings.Contains(body, "carol") {
		t.Errorf("no identity header: %d\n%s", code, body)
	}
	es := auditEntries(t, dst)
	found := false
	for _, e := range es {
		found = found || e.User == "alice" && e.Auth == "proxy" && e.Action == audit.ActionSearch && e.From == "192.0.2.7"
	}
	if !found {
		t.Errorf("no search of alice through the proxy from 192.0.2.7 in reel audit: %+v", es)
	}
}
