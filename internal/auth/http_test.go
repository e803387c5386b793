package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/testutil"
)

// harness serves an Authenticator's login API under /auth/ and a page
// behind Require at /api, which answers with the viewer's name.
type harness struct {
	t        *testing.T
	a        *Authenticator
	accts    *Accounts
	clock    *testutil.Clock
	auditDir string
	logs     *testutil.Buffer
	srv      *httptest.Server
}

func newHarness(t *testing.T, tls bool, configure func(*Authenticator)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, clock: testutil.NewClock(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)), logs: &testutil.Buffer{}}
	h.accts = newAccounts(filepath.Join(dir, "accounts.json"), testParams, h.clock.Now)
	h.auditDir = filepath.Join(dir, "audit")
	al, err := audit.Open(h.auditDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	h.a = &Authenticator{
		Accounts: h.accts,
		Access:   &Access{},
		Audit:    al,
		Log:      slog.New(slog.NewTextHandler(h.logs, nil)),
		Now:      h.clock.Now,
	}
	if configure != nil {
		configure(h.a)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", h.a.Handler()))
	mux.Handle("/api", h.a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := ViewerFrom(r.Context())
		io.WriteString(w, "hello "+v.Name)
	})))
	h.srv = httptest.NewUnstartedServer(mux)
	if tls {
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) addUser(name string, role Role, pw string) {
	h.t.Helper()
	if err := h.accts.Add(ctx, name, role, pw, false); err != nil {
		h.t.Fatal(err)
	}
}

// client is one browser: a cookie jar, and optionally a local address.
type client struct {
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	c := *h.srv.Client() // each browser its own jar
	c.Jar = jar
	return &client{h: h, c: &c}
}

// clientFrom dials from the loopback address from (127.0.0.2, say).
func (h *harness) clientFrom(from string) *client {
	c := h.client()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c.c.Transport = &http.Transport{DialContext: d.DialContext}
	return c
}

type reply struct {
	status int
	body   string
	header http.Header
}

func (c *client) do(method, path string, hdr map[string]string, body any) reply {
	c.h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.h.srv.URL+path, rd)
	if err != nil {
		c.h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func (c *client) session() (int, SessionInfo) {
	c.h.t.Helper()
	r := c.do("GET", "/auth/session", nil, nil)
	var info SessionInfo
	if err := json.Unmarshal([]byte(r.body), &info); err != nil {
		c.h.t.Fatalf("GET /auth/session: %d %q", r.status, r.body)
	}
	return r.status, info
}

// login fetches a login token and logs in; it keeps the session's CSRF
// token.
func (c *client) login(user, pw string) reply {
	c.h.t.Helper()
	_, info := c.session()
	r := c.do("POST", "/auth/login", nil, map[string]string{"user": user, "password": pw, "csrf": info.CSRF})
	if r.status == http.StatusOK {
		var got SessionInfo
		json.Unmarshal([]byte(r.body), &got)
		c.csrf = got.CSRF
	}
	return r
}

func (c *client) mustLogin(user, pw string) {
	c.h.t.Helper()
	if r := c.login(user, pw); r.status != http.StatusOK {
		c.h.t.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
}

func (c *client) api() reply { return c.do("GET", "/api", nil, nil) }

func (c *client) cookie(name string) *http.Cookie {
	for _, ck := range c.c.Jar.Cookies(mustURL(c.h.srv.URL)) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func (h *harness) auditEntries() []audit.Entry {
	h.t.Helper()
	var out []audit.Entry
	for e, err := range audit.Read(context.Background(), h.auditDir, audit.Query{}) {
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func wantStatus(t *testing.T, what string, r reply, status int, bodyHas string) {
	t.Helper()
	if r.status != status || !strings.Contains(r.body, bodyHas) {
		t.Errorf("%s: %d %q, want %d with %q", what, r.status, r.body, status, bodyHas)
	}
}

// TestCookieFlags: the session cookie is HttpOnly, SameSite=Strict, for
// the whole host, an opaque random id; over TLS also Secure with the
// __Host- prefix.
func TestCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[tls]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tls, nil)
			h.addUser("bob", RoleViewer, "bob's long password")
			c := h.client()
			r := c.login("bob", "bob's long password")
			wantStatus(t, "login", r, 200, `"user":"bob"`)
			var sess *http.Cookie
			for _, line := range r.header.Values("Set-Cookie") {
				ck, err := http.ParseSetCookie(line)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(ck.Name, "reel-session") {
					sess = ck
				}
				if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" || ck.Secure != tls {
					t.Errorf("cookie %s: %q", ck.Name, line)
				}
			}
			if sess == nil {
				t.Fatalf("no session cookie in %q", r.header.Values("Set-Cookie"))
			}
			wantName := map[bool]string{false: "reel-session", true: "__Host-reel-session"}[tls]
			if sess.Name != wantName {
				t.Errorf("session cookie %q, want %q", sess.Name, wantName)
			}
			if _, ok := parseSessionID(sess.Value); !ok || strings.Contains(sess.Value, "bob") {
				t.Errorf("session id %q is not an opaque random id", sess.Value)
			}
			wantStatus(t, "api", c.api(), 200, "hello bob")
		})
	}
}

// TestSessionServerSide: a session id is only good while the server
// holds it: a forged one, a logged-out one and garbage are refused.
func TestSessionServerSide(t *testing.T) {
	h := newHarness(t, false, nil)
	h.addUser("bob", RoleViewer, "bob's long password")
	wantStatus(t, "api before login", h.client().api(), 401, "log in first")
	c := h.client()
	c.mustLogin("bob", "bob's long password")
	stolen := c.cookie("reel-session").Value

	for _, v := range []string{newSessionID(), "x", stolen + "A", strings.ToUpper(stolen), ""} {
		f := h.client()
		f.c.Jar.SetCookies(mustURL(h.srv.URL), []*http.Cookie{{Name: "reel-session", Value: v}})
		wantStatus(t, "forged "+v, f.api(), 401, "")
	}
	r := c.do("POST", "/auth/logout", map[string]string{CSRFHeader: c.csrf}, nil)
	wantStatus(t, "logout", r, 204, "")
	wantStatus(t, "api after logout", c.api(), 401, "")
	replay := h.client()
	replay.c.Jar.SetCookies(mustURL(h.srv.URL), []*http.Cookie{{Name: "reel-session", Value: stolen}})
	wantStatus(t, "replayed cookie after logout", replay.api(), 401, "")
	if n := h.a.sessions.count(); n != 0 {
		t.Errorf("%d sessions after logout", n)
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, false, func(a *Authenticator) {
		a.SessionTTL, a.IdleTimeout = 3*time.Hour, time.Hour
	})
	h.addUser("bob", RoleViewer, "bob's long password")

	t.Run("idle", func(t *testing.T) {
		c := h.client()
		c.mustLogin("bob", "bob's long password")
		h.clock.Advance(59 * time.Minute)
		wantStatus(t, "after 59 min idle", c.api(), 200, "hello bob")
		h.clock.Advance(time.Hour)
		wantStatus(t, "after an hour idle", c.api(), 401, "")
	})
	t.Run("absolute", func(t *testing.T) {
		c := h.client()
		c.mustLogin("bob", "bob's long password")
		for range 5 { // used every 35 minutes: never idle
			h.clock.Advance(35 * time.Minute)
			wantStatus(t, "in use", c.api(), 200, "hello bob")
		}
		h.clock.Advance(6 * time.Minute) // 3 h 1 min after login
		wantStatus(t, "after the session's lifetime", c.api(), 401, "")
	})
}

// TestCSRF: every state-changing request needs the viewer's token and
// must not be cross-origin; the login needs its own token.
func TestCSRF(t *testing.T) {
	h := newHarness(t, false, nil)
	h.addUser("bob", RoleViewer, "bob's long password")
	c := h.client()
	c.mustLogin("bob", "bob's long password")
	other := h.client()
	other.mustLogin("bob", "bob's long password")
	if c.csrf == "" || c.csrf == other.csrf {
		t.Fatalf("sessions' tokens %q and %q", c.csrf, other.csrf)
	}

	for _, tt := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"no token", nil, 403},
		{"another session's token", map[string]string{CSRFHeader: other.csrf}, 403},
		{"right token, cross-site", map[string]string{CSRFHeader: c.csrf, "Sec-Fetch-Site": "cross-site"}, 403},
		{"right token, foreign origin", map[string]string{CSRFHeader: c.csrf, "Origin": "http://evil.example"}, 403},
		{"right token", map[string]string{CSRFHeader: c.csrf}, 200},
		{"right token, same origin", map[string]string{CSRFHeader: c.csrf, "Sec-Fetch-Site": "same-origin"}, 200},
	} {
		wantStatus(t, "POST "+tt.name, c.do("POST", "/api", tt.hdr, map[string]string{}), tt.status, "")
	}
	wantStatus(t, "GET without token", c.api(), 200, "hello bob")
	wantStatus(t, "logout without token", c.do("POST", "/auth/logout", nil, nil), 403, "cross-site")
	wantStatus(t, "still logged in", c.api(), 200, "hello bob")

	// Login: a token for this browser's cookie, not another's.
	l := h.client()
	_, info := l.session()
	for _, tt := range []struct {
		name string
		csrf string
		hdr  map[string]string
	}{
		{"no token", "", nil},
		{"token of another browser", func() string { _, i := h.client().session(); return i.CSRF }(), nil},
		{"cross-site", info.CSRF, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		r := l.do("POST", "/auth/login", tt.hdr, map[string]string{"user": "bob", "password": "bob's long password", "csrf": tt.csrf})
		wantStatus(t, "login, "+tt.name, r, 403, "")
	}
	wantStatus(t, "login", l.login("bob", "bob's long password"), 200, `"user":"bob"`)
}

// TestLoginRateLimit: failed logins are limited per account and per
// address; past the limit even the right password is refused, with a
// message, a Retry-After, a log line and an audit entry, until the
// window ends.
func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t, false, func(a *Authenticator) {
		a.MaxFailures, a.MaxFailuresPerAddr, a.FailureWindow = 3, 5, 10*time.Minute
	})
	h.addUser("bob", RoleViewer, "bob's long password")
	c := h.client()
	for range 3 {
		wantStatus(t, "wrong password", c.login("bob", "guess guess guess"), 401, "wrong user name or password")
	}
	r := c.login("bob", "bob's long password")
	wantStatus(t, "right password, account limited", r, 429, "too many failed logins for this account: try again in 10m0s")
	if r.header.Get("Retry-After") != "600" {
		t.Errorf("Retry-After %q, want 600", r.header.Get("Retry-After"))
	}
	if !h.logs.Contains("login refused by the rate limit") {
		t.Errorf("no log line:\n%s", h.logs)
	}
	h.clock.Advance(10 * time.Minute)
	wantStatus(t, "after the window", c.login("bob", "bob's long password"), 200, `"user":"bob"`)

	// Per address: failures for other names count too.
	d := h.client()
	for _, u := range []string{"alice", "carol", "dave", "erin", "frank"} {
		wantStatus(t, "unknown user", d.login(u, "guess guess guess"), 401, "wrong user name or password")
	}
	wantStatus(t, "address limited", d.login("bob", "bob's long password"), 429, "too many failed logins from your address")

	var denied int
	for _, e := range h.auditEntries() {
		if e.Action == audit.ActionLogin && e.Result == audit.ResultDenied {
			denied++
		}
	}
	if denied != 2 {
		t.Errorf("%d denied logins audited, want 2", denied)
	}
}

// TestOneTimePassword: the first admin's one-time password logs in to a
// session that sees nothing until the password is changed; the change
// replaces the session, and the one-time password is then dead.
func TestOneTimePassword(t *testing.T) {
	h := newHarness(t, false, nil)
	otp, err := h.accts.Bootstrap(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	c := h.client()
	r := c.login("admin", otp)
	wantStatus(t, "login with the one-time password", r, 200, `"mustChangePassword":true`)
	wantStatus(t, "api before the change", c.api(), 403, "change your one-time password first")
	before := c.cookie("reel-session").Value

	pw := func(old, new, csrf string) reply {
		return c.do("POST", "/auth/password", map[string]string{CSRFHeader: csrf}, map[string]string{"old": old, "new": new})
	}
	wantStatus(t, "no token", pw(otp, "a brand new password", ""), 403, "")
	wantStatus(t, "wrong old", pw("not it at all", "a brand new password", c.csrf), 403, "current password is wrong")
	wantStatus(t, "weak new", pw(otp, "short", c.csrf), 400, "at least 12 characters")
	wantStatus(t, "same", pw(otp, otp, c.csrf), 400, "must differ")
	r = pw(otp, "a brand new password", c.csrf)
	wantStatus(t, "change", r, 200, `"admin":true`)
	if strings.Contains(r.body, "mustChangePassword") {
		t.Errorf("still must change: %s", r.body)
	}
	if after := c.cookie("reel-session").Value; after == before {
		t.Error("the session id did not change with the password")
	}
	wantStatus(t, "api after the change", c.api(), 200, "hello admin")
	old := h.client()
	old.c.Jar.SetCookies(mustURL(h.srv.URL), []*http.Cookie{{Name: "reel-session", Value: before}})
	wantStatus(t, "the one-time session", old.api(), 401, "")
	wantStatus(t, "the one-time password again", h.client().login("admin", otp), 401, "")
	wantStatus(t, "the new password", h.client().login("admin", "a brand new password"), 200, "")
}

// TestAccountChangeEndsSessions: "reel user passwd/rm" and role changes,
// made by another process, end the account's sessions.
func TestAccountChangeEndsSessions(t *testing.T) {
	h := newHarness(t, false, nil)
	h.addUser("bob", RoleViewer, "bob's long password")
	cli := newTestAccounts(t, h.accts.Path()) // another process
	for _, tt := range []struct {
		name   string
		change func() error
	}{
		{"passwd", func() error { return cli.SetPassword(ctx, "bob", "bob's long password", false) }},
		{"role", func() error { return cli.SetRole("bob", RoleAdmin) }},
		{"rm", func() error { return cli.Remove("bob") }},
	} {
		c := h.client()
		c.mustLogin("bob", "bob's long password")
		if err := tt.change(); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, "after "+tt.name, c.api(), 401, "")
	}
}

// TestTrustedProxy: the identity header is believed only from the
// trusted proxy's address; from anywhere else a request carrying it is
// refused and logged.
func TestTrustedProxy(t *testing.T) {
	h := newHarness(t, false, func(a *Authenticator) {
		a.Accounts = nil
		a.Proxy = &Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Header: "X-Remote-User"}
	})
	proxy := h.clientFrom("127.0.0.2")
	other := h.clientFrom("127.0.0.1")
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	wantStatus(t, "proxy names alice", proxy.do("GET", "/api", hdr("X-Remote-User", "alice@example.com"), nil), 200, "hello alice@example.com")
	wantStatus(t, "header from elsewhere", other.do("GET", "/api", hdr("X-Remote-User", "alice@example.com"), nil), 403, "accepted only from the trusted proxy")
	if !h.logs.Contains("identity header from an address that is not a trusted proxy") {
		t.Errorf("no log line:\n%s", h.logs)
	}
	wantStatus(t, "no header from elsewhere", other.api(), 403, "reverse proxy only")
	wantStatus(t, "proxy sends no identity", proxy.api(), 401, "")
	wantStatus(t, "bad identity", proxy.do("GET", "/api", hdr("X-Remote-User", "alice <script>"), nil), 401, "bad identity")
	wantStatus(t, "another header name", proxy.do("GET", "/api", hdr("X-Forwarded-User", "alice"), nil), 401, "")

	// Twice: refused.
	req, _ := http.NewRequest("GET", h.srv.URL+"/api", nil)
	req.Header.Add("X-Remote-User", "alice")
	req.Header.Add("X-Remote-User", "root")
	resp, err := proxy.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("header twice: %d, want 401", resp.StatusCode)
	}

	// A proxied viewer's CSRF token, and the client address the proxy
	// names goes to the audit log.
	_, info := proxy.sessionWith(hdr("X-Remote-User", "alice"))
	wantStatus(t, "POST with token", proxy.do("POST", "/api", hdr("X-Remote-User", "alice", CSRFHeader, info.CSRF), map[string]string{}), 200, "hello alice")
	wantStatus(t, "POST without token", proxy.do("POST", "/api", hdr("X-Remote-User", "alice"), map[string]string{}), 403, "")
	wantStatus(t, "login refused", proxy.do("POST", "/auth/login", hdr("X-Remote-User", "alice"), map[string]string{"user": "a", "password": "b", "csrf": "c"}), 403, "")

	req, _ = http.NewRequest("GET", h.srv.URL+"/api", nil)
	req.Header.Set("X-Remote-User", "alice")
	req.Header.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.7")
	v, err := h.a.Viewer(withRemote(req, "127.0.0.2:5555"))
	if err != nil || v.Addr != "198.51.100.7" || v.Via != ViaProxy {
		t.Errorf("viewer behind the proxy: %+v, %v", v, err)
	}
	if err := h.a.Record(req, v, audit.ActionView, "n1/x.cast", nil, ErrDenied); err != nil {
		t.Fatal(err)
	}
	es := h.auditEntries()
	last := es[len(es)-1]
	if last.User != "alice" || last.From != "198.51.100.7" || last.Result != audit.ResultDenied || last.Auth != ViaProxy {
		t.Errorf("audit entry %+v", last)
	}
}

func (c *client) sessionWith(hdr map[string]string) (int, SessionInfo) {
	r := c.do("GET", "/auth/session", hdr, nil)
	var info SessionInfo
	json.Unmarshal([]byte(r.body), &info)
	return r.status, info
}

func withRemote(r *http.Request, addr string) *http.Request {
	r.RemoteAddr = addr
	return r
}

// TestAuditLogins: logins, failed logins, password changes and logouts
// are in the audit log with who and from where.
func TestAuditLogins(t *testing.T) {
	h := newHarness(t, false, nil)
	h.addUser("bob", RoleViewer, "bob's long password")
	c := h.client()
	c.login("bob", "wrong wrong wrong")
	c.mustLogin("bob", "bob's long password")
	c.do("POST", "/auth/password", map[string]string{CSRFHeader: c.csrf}, map[string]string{"old": "bob's long password", "new": "bob's newer password"})
	_, info := c.session()
	c.do("POST", "/auth/logout", map[string]string{CSRFHeader: info.CSRF}, nil)
	var got []string
	for _, e := range h.auditEntries() {
		if e.User != "bob" || e.From != "127.0.0.1" || e.Auth != ViaAccount {
			t.Errorf("entry %+v", e)
		}
		got = append(got, e.Action+":"+e.Result)
	}
	want := []string{"login:failed", "login:ok", "password:ok", "logout:ok"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit %q, want %q", got, want)
	}
}

// TestAccess: admins see everything; without a policy nobody else sees
// anything; the viewers rules decide, and IndexNodes never lists a node
// the viewer may not see.
func TestAccess(t *testing.T) {
	p, err := policy.Parse("p", []byte(`{
		"groups": {"group:sre": ["sam"]},
		"admins": ["group:sre"],
		"viewers": [{"src": ["dave"], "nodes": ["web1", "tag:prod"], "actions": ["view"]}],
	}`))
	if err != nil {
		t.Fatal(err)
	}
	tags := &TagMap{}
	tags.Learn("db1", []string{"tag:prod"})
	tags.Learn("dev1", []string{"tag:dev"})
	with := &Access{Policy: func() *policy.Policy { return p }, Tags: tags}
	without := &Access{}
	view := policy.ActionView

	for _, tt := range []struct {
		name   string
		a      *Access
		v      Viewer
		node   string
		tags   []string
		action string
		want   bool
		nodes  []string // IndexNodes; nil: all
	}{
		{"admin account, no policy", without, Viewer{Name: "root", Role: RoleAdmin}, "x", nil, view, true, nil},
		{"viewer, no policy", without, Viewer{Name: "dave"}, "web1", nil, view, false, []string{}},
		{"policy admin", with, Viewer{Name: "sam"}, "x", nil, policy.ActionDownload, true, nil},
		{"rule by node", with, Viewer{Name: "dave"}, "web1", nil, view, true, []string{"db1", "web1"}},
		{"rule by tag", with, Viewer{Name: "dave"}, "db2", []string{"tag:prod"}, view, true, []string{"db1", "web1"}},
		{"action not granted", with, Viewer{Name: "dave"}, "web1", nil, policy.ActionDownload, false, []string{}},
		{"other node", with, Viewer{Name: "dave"}, "dev1", []string{"tag:dev"}, view, false, []string{"db1", "web1"}},
		{"nobody", with, Viewer{Name: "zed"}, "web1", nil, view, false, []string{}},
		{"admin who must change password", without, Viewer{Name: "root", Role: RoleAdmin, MustChangePassword: true}, "x", nil, view, false, []string{}},
		{"tailnet grant", without, Viewer{Name: "t@x", Grants: []Grant{{Nodes: []string{"tag:dev"}, Actions: []string{"view"}}}}, "dev1", []string{"tag:dev"}, view, true, []string{}},
		{"found admin when identified", without, Viewer{Name: "x", Admin: true}, "x", nil, view, true, nil},
		{"tailnet admin grant", without, Viewer{Name: "t@x", Grants: []Grant{{Admin: true}}}, "x", nil, view, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := tt.a.Can(tt.v, tt.node, tt.tags, tt.action)
			if ok != tt.want {
				t.Errorf("Can = %v, want %v:\n%s", ok, tt.want, strings.Join(why, "\n"))
			}
			nodes, err := tt.a.IndexNodes(ctx, tt.v, tt.action)
			if err != nil {
				t.Fatal(err)
			}
			if (nodes == nil) != (tt.nodes == nil) || strings.Join(nodes, ",") != strings.Join(tt.nodes, ",") {
				t.Errorf("IndexNodes = %#v, want %#v", nodes, tt.nodes)
			}
		})
	}
	// A tailnet grant by tag with no TagSource still resolves tags known
	// to the map when one is set.
	grant := Viewer{Name: "t@x", Grants: []Grant{{Nodes: []string{"tag:dev"}}}}
	if nodes, _ := (&Access{Tags: tags}).IndexNodes(ctx, grant, view); strings.Join(nodes, ",") != "dev1" {
		t.Errorf("grant by tag: IndexNodes = %q, want dev1", nodes)
	}
}

func TestParseProxies(t *testing.T) {
	got, err := ParseProxies("10.0.0.1, 192.168.0.0/16,::1")
	if err != nil || len(got) != 3 {
		t.Fatalf("ParseProxies: %v, %v", got, err)
	}
	for _, s := range []string{"", " , ", "10.0.0.5/8", "proxy.example", "10.0.0.0/33"} {
		if _, err := ParseProxies(s); err == nil {
			t.Errorf("ParseProxies(%q) accepted", s)
		}
	}
	for s, want := range map[string]bool{"X-Forwarded-User": true, "Remote-User": true, "X_Email": true, "Cookie": false, "authorization": false, "X Y": false, "": false} {
		if ValidHeaderName(s) != want {
			t.Errorf("ValidHeaderName(%q) = %v", s, !want)
		}
	}
}

func TestLoginNoAccounts(t *testing.T) {
	a := &Authenticator{}
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := a.Viewer(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("no identity source: %v", err)
	}
	_, err := a.Login(ctx, httptest.NewRecorder(), r, "a", "b")
	var le *LoginError
	if !errors.As(err, &le) || le.Status != 404 {
		t.Errorf("Login without accounts: %v", err)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestPasswordPage: the HTML form for a first login with a one-time
// password: it carries the session's CSRF token, checks the repetition,
// and on success replaces the session and redirects.
func TestPasswordPage(t *testing.T) {
	h := newHarness(t, false, nil)
	otp, err := h.accts.Bootstrap(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	c := h.client()
	c.mustLogin("admin", otp)
	page := c.do("GET", "/auth/password", nil, nil)
	wantStatus(t, "page", page, 200, "You logged in with a one-time password")
	if ct := page.header.Get("Content-Type"); ct != "text/html; charset=utf-8" || !strings.Contains(page.body, `name="csrf" value="`+c.csrf+`"`) || strings.Contains(page.body, "<script") {
		t.Errorf("page: %s\n%s", ct, page.body)
	}
	post := func(form url.Values) reply {
		req, _ := http.NewRequest("POST", h.srv.URL+"/auth/password", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		cl := *c.c
		cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return reply{resp.StatusCode, string(b), resp.Header}
	}
	form := url.Values{"old": {otp}, "new": {"my own password!"}, "again": {"my own password!"}}
	wantStatus(t, "no token", post(form), 403, "")
	form.Set("csrf", c.csrf)
	form.Set("again", "my own passwort!")
	wantStatus(t, "repetition differs", post(form), 400, "differ")
	form.Set("again", "my own password!")
	r := post(form)
	if r.status != 303 || r.header.Get("Location") != "/" {
		t.Fatalf("change: %d %q %q", r.status, r.header.Get("Location"), r.body)
	}
	wantStatus(t, "api afterwards", c.api(), 200, "hello admin")
}
