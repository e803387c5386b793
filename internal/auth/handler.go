package auth

import (
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Require serves next only to a viewer, whom it puts in the request's
// context (ViewerFrom). It answers 401 to a request without one, 403 to a
// refused one, to a viewer who must first change a one-time password,
// and to a state-changing request that fails CheckCSRF.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := a.Viewer(r)
		if err != nil {
			writeError(w, err)
			return
		}
		if v.MustChangePassword {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "change your one-time password first", MustChangePassword: true})
			return
		}
		if err := a.CheckCSRF(r, v); err != nil {
			writeJSON(w, http.StatusForbidden, errorBody{Error: err.Error()})
			return
		}
		next.ServeHTTP(w, r.WithContext(WithViewer(r.Context(), v)))
	})
}

// RequireAdmin is Require for admins only.
func (a *Authenticator) RequireAdmin(next http.Handler) http.Handler {
	return a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, _ := ViewerFrom(r.Context()); !v.Admin {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "for admins only"})
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// SessionInfo is what GET /session answers: who the viewer is, and the
// token their state-changing requests must carry (X-CSRF-Token).
type SessionInfo struct {
	User               string `json:"user,omitempty"`
	Via                string `json:"via,omitempty"`
	Role               Role   `json:"role,omitempty"`
	Admin              bool   `json:"admin,omitempty"`
	MustChangePassword bool   `json:"mustChangePassword,omitempty"`
	CSRF               string `json:"csrf"`
	// Login is true when the viewer may log in with a password (no
	// viewer yet, local accounts).
	Login bool   `json:"login,omitempty"`
	Error string `json:"error,omitempty"`
}

type errorBody struct {
	Error              string `json:"error"`
	MustChangePassword bool   `json:"mustChangePassword,omitempty"`
}

// Handler serves the login API, meant to be mounted under a prefix
// (http.StripPrefix("/auth", a.Handler())):
//
//	GET  /session   200 SessionInfo for a viewer; 401 with a login token
//	                (SessionInfo.CSRF, and a cookie) when there is none
//	POST /login     {"user", "password", "csrf"}: 200 SessionInfo and the
//	                session cookie; 401 wrong name or password; 429 rate
//	                limited (Retry-After); 403 cross-site
//	POST /logout    ends the session (X-CSRF-Token): 204
//	POST /password  {"old", "new"} (X-CSRF-Token): 200 SessionInfo and a
//	                new session cookie; also for a one-time password
//	GET  /password  an HTML page with a form to set a new password (the
//	                form posts here; success redirects to "/")
//
// Bodies are JSON, or a URL-encoded form with the same field names.
// Answers are JSON, but for the password page and its form.
func (a *Authenticator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /session", a.serveSession)
	mux.HandleFunc("POST /login", a.serveLogin)
	mux.HandleFunc("POST /logout", a.serveLogout)
	mux.HandleFunc("POST /password", a.servePassword)
	mux.HandleFunc("GET /password", a.servePasswordPage)
	return mux
}

func (a *Authenticator) info(r *http.Request, v Viewer) SessionInfo {
	return SessionInfo{User: v.Name, Via: v.Via, Role: v.Role, Admin: v.Admin, MustChangePassword: v.MustChangePassword, CSRF: a.CSRFToken(r, v)}
}

func (a *Authenticator) serveSession(w http.ResponseWriter, r *http.Request) {
	v, err := a.Viewer(r)
	if err == nil {
		writeJSON(w, http.StatusOK, a.info(r, v))
		return
	}
	if !errors.Is(err, ErrUnauthenticated) || a.Accounts == nil || a.Tailnet != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusUnauthorized, SessionInfo{Login: true, CSRF: a.loginToken(w, r), Error: "log in"})
}

func (a *Authenticator) serveLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
		CSRF     string `json:"csrf"`
	}
	if !readBody(w, r, &req, map[string]*string{"user": &req.User, "password": &req.Password, CSRFField: &req.CSRF}) {
		return
	}
	if req.CSRF == "" {
		req.CSRF = r.Header.Get(CSRFHeader)
	}
	a.setup()
	if a.cop.Check(r) != nil || !a.checkLoginToken(r, req.CSRF) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: ErrCSRF.Error()})
		return
	}
	v, err := a.Login(r.Context(), w, r, req.User, req.Password)
	if err != nil {
		writeError(w, err)
		return
	}
	a.setCookie(w, r, a.loginCookieName(r), "", -1)
	info := a.info(r, v)
	info.CSRF = a.sessionCSRFFromHeader(w)
	writeJSON(w, http.StatusOK, info)
}

// sessionCSRFFromHeader finds the CSRF token of the session whose cookie
// was just set on w (the request does not carry it yet).
func (a *Authenticator) sessionCSRFFromHeader(w http.ResponseWriter) string {
	for _, line := range w.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil || (c.Name != cookieSession && c.Name != cookieSessionSecure) || c.MaxAge < 0 {
			continue
		}
		if id, ok := parseSessionID(c.Value); ok {
			if sess, ok := a.sessions.get(id, a.now()); ok {
				return sess.csrf
			}
		}
	}
	return ""
}

func (a *Authenticator) serveLogout(w http.ResponseWriter, r *http.Request) {
	v, err := a.Viewer(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.CheckCSRF(r, v); err != nil {
		writeJSON(w, http.StatusForbidden, errorBody{Error: err.Error()})
		return
	}
	a.Logout(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (a *Authenticator) servePassword(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		a.servePasswordForm(w, r)
		return
	}
	var req struct {
		Old  string `json:"old"`
		New  string `json:"new"`
		CSRF string `json:"csrf"`
	}
	if !readBody(w, r, &req, map[string]*string{"old": &req.Old, "new": &req.New, CSRFField: &req.CSRF}) {
		return
	}
	v, ok := a.accountViewer(w, r)
	if !ok {
		return
	}
	if req.CSRF != "" && r.Header.Get(CSRFHeader) == "" {
		r.Header.Set(CSRFHeader, req.CSRF)
	}
	if err := a.CheckCSRF(r, v); err != nil {
		writeJSON(w, http.StatusForbidden, errorBody{Error: err.Error()})
		return
	}
	nv, err := a.ChangePassword(r.Context(), w, r, req.Old, req.New)
	if err != nil {
		writeError(w, err)
		return
	}
	info := a.info(r, nv)
	info.CSRF = a.sessionCSRFFromHeader(w)
	writeJSON(w, http.StatusOK, info)
}

// passwordPage is the form to set a new password. It has no script and
// no style, so that any Content-Security-Policy lets it work.
var passwordPage = template.Must(template.New("password").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Set your password · reel</title></head>
<body>
<main>
<h1>Set your password</h1>
{{if .Must}}<p>You logged in with a one-time password. Choose your own password to go on.</p>{{end}}
{{with .Error}}<p role="alert"><strong>{{.}}</strong></p>{{end}}
<form method="post">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><label>User<br><input name="user" value="{{.User}}" readonly autocomplete="username"></label></p>
<p><label>Current password<br><input type="password" name="old" autocomplete="current-password" required></label></p>
<p><label>New password, at least {{.Min}} characters<br><input type="password" name="new" autocomplete="new-password" minlength="{{.Min}}" required></label></p>
<p><label>New password again<br><input type="password" name="again" autocomplete="new-password" minlength="{{.Min}}" required></label></p>
<p><button type="submit">Set password</button></p>
</form>
</main>
</body>
</html>
`))

type passwordData struct {
	User, CSRF, Error string
	Must              bool
	Min               int
}

func (a *Authenticator) renderPassword(w http.ResponseWriter, status int, d passwordData) {
	d.Min = MinPasswordLen
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	}
	w.WriteHeader(status)
	passwordPage.Execute(w, d)
}

// servePasswordPage shows the form to set a new password, to a viewer
// logged in with a password (also one who must change a one-time one).
func (a *Authenticator) servePasswordPage(w http.ResponseWriter, r *http.Request) {
	v, ok := a.accountViewer(w, r)
	if !ok {
		return
	}
	a.renderPassword(w, http.StatusOK, passwordData{User: v.Name, CSRF: a.CSRFToken(r, v), Must: v.MustChangePassword})
}

// servePasswordForm takes the password page's form: success redirects to
// "/", anything else shows the form again with what was wrong.
func (a *Authenticator) servePasswordForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	v, ok := a.accountViewer(w, r)
	if !ok {
		return
	}
	if err := a.CheckCSRF(r, v); err != nil {
		writeJSON(w, http.StatusForbidden, errorBody{Error: err.Error()})
		return
	}
	d := passwordData{User: v.Name, CSRF: a.CSRFToken(r, v), Must: v.MustChangePassword}
	old, new := r.PostFormValue("old"), r.PostFormValue("new")
	if new != r.PostFormValue("again") {
		d.Error = "the new password and its repetition differ"
		a.renderPassword(w, http.StatusBadRequest, d)
		return
	}
	if _, err := a.ChangePassword(r.Context(), w, r, old, new); err != nil {
		var le *LoginError
		if !errors.As(err, &le) {
			writeError(w, err)
			return
		}
		if le.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(le.RetryAfter.Seconds()+0.999)))
		}
		d.Error = le.Msg
		a.renderPassword(w, le.Status, d)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// accountViewer returns r's viewer, who must have logged in with a
// password; else it answers and returns false.
func (a *Authenticator) accountViewer(w http.ResponseWriter, r *http.Request) (Viewer, bool) {
	v, err := a.Viewer(r)
	if err != nil {
		writeError(w, err)
		return Viewer{}, false
	}
	if v.Via != ViaAccount {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "you have no password here"})
		return Viewer{}, false
	}
	return v, true
}

// maxBody bounds a login API request body.
const maxBody = 16 << 10

// readBody reads a JSON body into v, or a form into the fields of form.
func readBody(w http.ResponseWriter, r *http.Request, v any, form map[string]*string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		d := json.NewDecoder(r.Body)
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad JSON body: " + err.Error()})
			return false
		}
		if _, err := d.Token(); err != io.EOF {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad JSON body: more than one value"})
			return false
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad form: " + err.Error()})
			return false
		}
		for k, p := range form {
			*p = r.PostForm.Get(k)
		}
	default:
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Error: "send JSON or a form"})
		return false
	}
	return true
}

// writeError answers err with its status.
func writeError(w http.ResponseWriter, err error) {
	var le *LoginError
	var re *RefusedError
	switch {
	case errors.As(err, &le):
		if le.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(le.RetryAfter.Seconds()+0.999)))
		}
		writeJSON(w, le.Status, errorBody{Error: le.Msg})
	case errors.As(err, &re):
		writeJSON(w, http.StatusForbidden, errorBody{Error: re.Msg})
	case errors.Is(err, ErrUnauthenticated):
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		} else {
			msg = "log in first"
		}
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: msg})
	default:
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error; the server's log says why"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
