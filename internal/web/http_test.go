package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// noRedirect is a client that shows redirects instead of following them.
func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestUnauthenticated: nothing of a recording, an event or the lists is
// given to a request without a viewer; every response has the security
// headers.
func TestUnauthenticated(t *testing.T) {
	u := newUI(t, nil, nil)
	key, _ := seed(t, u)
	c := noRedirect(nil)
	for _, path := range []string{"/", "/search?q=needle", "/events", "/api/rows?k=" + url.QueryEscape(key),
		recURL(key), recURL(key) + "/cast", recURL(key) + "/download", recURL(key) + "/seg/index.json", recURL(key) + "/seg/0.json", recURL(key) + "/prepare", recURL(key) + "/live"} {
		resp, err := c.Get(u.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login?next="):
		case resp.StatusCode == http.StatusUnauthorized:
		default:
			t.Errorf("GET %s: %d %q, want a redirect to the login or 401", path, resp.StatusCode, body)
		}
		for _, leak := range []string{"needle", "carol", "node-a", "bash -l", "first screen"} {
			// (A redirect's body names the address asked for.)
			if strings.Contains(string(body), leak) && !strings.Contains(path, leak) {
				t.Errorf("GET %s without a viewer shows %q", path, leak)
			}
		}
		checkHeaders(t, path, resp.Header)
	}
	if len(u.audit.entries) != 0 {
		t.Errorf("audited %d acts of nobody", len(u.audit.entries))
	}
}

func checkHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": csp,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", path, name, got, want)
		}
	}
	if p := h.Get("Content-Security-Policy"); strings.Contains(p, "unsafe-inline") || strings.Contains(p, "'unsafe-eval'") || !strings.Contains(p, "frame-ancestors 'none'") {
		t.Errorf("%s: weak CSP %q", path, p)
	}
}

// TestLoginCSRF: logging in needs the form's token and this site's origin.
func TestLoginCSRF(t *testing.T) {
	u := newUI(t, nil, nil)
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp, err := c.Get(u.base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the login form:\n%s", page)
	}
	token := string(m[1])
	post := func(form url.Values, origin string) int {
		req, _ := http.NewRequest("POST", u.base+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := url.Values{"csrf": {token}, "name": {"alice"}, "password": {"alice-pw"}}
	for name, tc := range map[string]struct {
		form   url.Values
		origin string
	}{
		"no token":     {url.Values{"name": {"alice"}, "password": {"alice-pw"}}, ""},
		"wrong token":  {url.Values{"csrf": {strings.Repeat("A", 43)}, "name": {"alice"}, "password": {"alice-pw"}}, ""},
		"other origin": {good, "http://evil.example"},
		"null origin":  {good, "null"},
	} {
		if code := post(tc.form, tc.origin); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	if code := post(url.Values{"csrf": {token}, "name": {"alice"}, "password": {"wrong"}}, u.base); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code := post(good, u.base); code != http.StatusSeeOther {
		t.Fatalf("good login: %d, want 303", code)
	}
	resp, err = c.Get(u.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after login: %d", resp.StatusCode)
	}
	if !u.audit.has("alice", "login", "") || !u.audit.has("", "login", "") {
		t.Errorf("logins (good and failed) not audited: %+v", u.audit.entries)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/r/a/b":               "/r/a/b",
		"/search?q=x":          "/search?q=x",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"javascript:alert(1)":  "/",
		"":                     "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// httpLogin logs in through the login form and returns a client with the
// session (redirects not followed).
func httpLogin(t *testing.T, base, name, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the login form:\n%s", page)
	}
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d", name, resp.StatusCode)
	}
	return c
}

func getBody(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHitMomentAndStatuses: a hit names the moment its line appeared
// (index.Hit.At), not the start of the chunk it is in, and links there;
// the status filter takes several statuses.
func TestHitMomentAndStatuses(t *testing.T) {
	u := newUI(t, nil, nil)
	needleKey, _ := seed(t, u)
	c := httpLogin(t, u.base, "alice", "alice-pw")
	code, body := getBody(t, c, u.base+"/search?q="+url.QueryEscape("after the needle"))
	if code != http.StatusOK {
		t.Fatalf("search: %d\n%s", code, body)
	}
	// "after the needle" appeared at 70 s, in the chunk that starts with
	// the needle at 65.5 s.
	if !strings.Contains(body, "1:10") || !strings.Contains(body, "#t=1:10.1") || strings.Contains(body, "#t=1:05") {
		t.Errorf("the hit does not link to 1:10:\n%s", body)
	}
	code, body = getBody(t, c, u.base+recURL(needleKey)+"?q="+url.QueryEscape("after the needle"))
	if code != http.StatusOK || !strings.Contains(body, `data-t="70"`) {
		t.Errorf("the recording's page does not list the hit at 1:10: %d\n%s", code, body)
	}
	code, body = getBody(t, c, u.base+"/?status=complete,live")
	if code != http.StatusOK || !strings.Contains(body, "bash -l") {
		t.Errorf("status=complete,live: %d\n%s", code, body)
	}
	code, body = getBody(t, c, u.base+"/?status=interrupted,malformed,failed")
	if code != http.StatusOK || strings.Contains(body, "bash -l") {
		t.Errorf("status=interrupted,malformed,failed lists a complete recording: %d\n%s", code, body)
	}
	if code, _ = getBody(t, c, u.base+"/?status=complete,bogus"); code != http.StatusBadRequest {
		t.Errorf("status=complete,bogus: %d, want 400", code)
	}
}
