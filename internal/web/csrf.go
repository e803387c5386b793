package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
)

// CSRF protection for the UI's state-changing requests (log in, log out):
// a random token in a SameSite=Strict, HttpOnly cookie that each form
// repeats in a hidden field (double submit), and the Origin and
// Sec-Fetch-Site headers a browser sends must name this site.

const csrfCookie = "reel_csrf"

// csrfToken returns r's token, setting a new cookie on w when r has none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	var b [32]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode})
	return tok
}

// checkCSRF answers 403 and returns false unless r is a same-site form
// post that carries the token of its cookie.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	refuse := func(why string) bool {
		s.Log.Warn("ui: refused a cross-site request", "remote", r.RemoteAddr, "path", r.URL.Path, "why", why)
		http.Error(w, "refused: "+why+" (reload the page and try again)", http.StatusForbidden)
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return refuse("cross-site request")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return refuse("request from another origin")
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return refuse("no CSRF cookie")
	}
	if tok := r.PostFormValue("csrf"); tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(c.Value)) != 1 {
		return refuse("CSRF token mismatch")
	}
	return true
}
