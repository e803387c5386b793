// Package auth says who is using reel's web UI and what they may see.
//
// Identity comes from one of three places:
//
//   - local accounts (plain mode): names and argon2id password hashes in
//     a file in the state directory (Accounts, managed with "reel user"),
//     and a login that opens a server-side session named by an opaque
//     random id in a cookie (HttpOnly, SameSite=Strict, Secure over TLS).
//     On the first start an admin account with a one-time password is
//     made (Accounts.Bootstrap); that password must be changed at the
//     first login. Failed logins are limited per account and per address.
//   - a trusted reverse proxy (plain mode) that authenticates viewers
//     itself and names them in a header, believed only on connections
//     from the proxy's addresses (Proxy);
//   - the tailnet (tailnet mode): the viewer is the tailnet user WhoIs
//     names, with no password at all (WhoIs), and the tailnet policy may
//     grant access with an app capability (ViewerCapability).
//
// Every state-changing request must pass a cross-origin check and carry
// a CSRF token bound to the viewer (Authenticator.CheckCSRF).
//
// What a viewer may see is Access's business: admins see everything; the
// policy file's viewers rules (and tailnet grants) decide for everyone
// else; without a policy only admins see recordings.
//
// The Authenticator records logins, failed logins, logouts and password
// changes in the audit log; the UI records what viewers look at through
// Authenticator.Record.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/audit"
)

// Auditor receives audit entries (*audit.Log).
type Auditor interface {
	Append(audit.Entry) error
}

// Authenticator identifies the viewer behind each request and runs
// logins. Set the fields before first use; the zero value knows no
// viewers. Methods are safe for concurrent use.
type Authenticator struct {
	// Accounts are the local accounts (plain mode).
	Accounts *Accounts
	// Proxy, if set, is a trusted reverse proxy: its requests are
	// identified by its header. Requests from elsewhere use Accounts if
	// set, and are refused if not.
	Proxy *Proxy
	// Tailnet, if set, identifies every request by WhoIs (tailnet mode);
	// Accounts and Proxy are not used.
	Tailnet WhoIs
	// Access decides who is an admin.
	Access *Access
	// Audit receives logins, failed logins, logouts and password
	// changes; nil records nothing.
	Audit Auditor
	// Log receives refused logins and identities, at Warn.
	Log *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time

	// SessionTTL is how long a session lasts at most (12 h if zero);
	// IdleTimeout ends one unused for that long (1 h if zero).
	SessionTTL, IdleTimeout time.Duration
	// MaxFailures is how many failed logins an account may have in
	// FailureWindow before it is refused until the window ends (5 if
	// zero); MaxFailuresPerAddr the same for one client address (20).
	// FailureWindow is 15 min if zero.
	MaxFailures, MaxFailuresPerAddr int
	FailureWindow                   time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP connections
	// (TLS ended by something in front). Over TLS they always are.
	SecureCookies bool

	once     sync.Once
	sessions *sessionStore
	acctLim  *limiter
	addrLim  *limiter
	key      []byte // per-process key for CSRF tokens that have no session
	cop      *http.CrossOriginProtection
}

func (a *Authenticator) setup() {
	a.once.Do(func() {
		ttl, idle := a.SessionTTL, a.IdleTimeout
		if ttl <= 0 {
			ttl = 12 * time.Hour
		}
		if idle <= 0 {
			idle = time.Hour
		}
		win := a.FailureWindow
		if win <= 0 {
			win = 15 * time.Minute
		}
		acct, addr := a.MaxFailures, a.MaxFailuresPerAddr
		if acct <= 0 {
			acct = 5
		}
		if addr <= 0 {
			addr = 20
		}
		a.sessions = newSessionStore(ttl, idle)
		a.acctLim = newLimiter(acct, win)
		a.addrLim = newLimiter(addr, win)
		a.key = make([]byte, 32)
		rand.Read(a.key)
		a.cop = http.NewCrossOriginProtection()
	})
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authenticator) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Errors Viewer returns.
var (
	// ErrUnauthenticated: no viewer: not logged in, or the session ended.
	ErrUnauthenticated = errors.New("not logged in")
)

// A RefusedError is a request refused outright (HTTP 403): an identity
// header from an address that is not a trusted proxy, a tailnet device
// with no user.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Mode names how viewers are identified: "tailnet", "proxy", "accounts",
// "proxy+accounts", or "none".
func (a *Authenticator) Mode() string {
	switch {
	case a.Tailnet != nil:
		return "tailnet"
	case a.Proxy != nil && a.Accounts != nil:
		return "proxy+accounts"
	case a.Proxy != nil:
		return "proxy"
	case a.Accounts != nil:
		return "accounts"
	}
	return "none"
}

// Viewer returns the viewer behind r: ErrUnauthenticated when there is
// none (log in), a *RefusedError when r must be refused.
func (a *Authenticator) Viewer(r *http.Request) (Viewer, error) {
	a.setup()
	v, err := a.identify(r)
	if err != nil {
		return Viewer{}, err
	}
	if ok, _ := a.Access.IsAdmin(v); ok {
		v.Admin = true
	}
	return v, nil
}

func (a *Authenticator) identify(r *http.Request) (Viewer, error) {
	if a.Tailnet != nil {
		return a.tailnetViewer(r)
	}
	addr, fromProxy := clientAddr(r, a.Proxy)
	if a.Proxy != nil {
		h := a.Proxy.header()
		values := r.Header.Values(h)
		if fromProxy {
			name, err := parseProxyHeader(values)
			if err != nil {
				a.log().Warn("auth: request from the trusted proxy refused", "header", h, "remote", r.RemoteAddr, "err", err)
				return Viewer{}, fmt.Errorf("%w: the proxy sent %s: %v", ErrUnauthenticated, h, err)
			}
			return Viewer{Name: name, Via: ViaProxy, Addr: addr.String()}, nil
		}
		if len(values) > 0 {
			a.log().Warn("auth: identity header from an address that is not a trusted proxy: refused", "header", h, "remote", r.RemoteAddr)
			return Viewer{}, &RefusedError{fmt.Sprintf("%s is accepted only from the trusted proxy (--ui-trusted-proxy)", h)}
		}
		if a.Accounts == nil {
			return Viewer{}, &RefusedError{"this UI is reached through its reverse proxy only"}
		}
	}
	if a.Accounts == nil {
		return Viewer{}, ErrUnauthenticated
	}
	_, sess, err := a.session(r)
	if err != nil {
		return Viewer{}, err
	}
	return Viewer{Name: sess.name, Via: ViaAccount, Addr: addr.String(), Role: sess.role, MustChangePassword: sess.mustChange}, nil
}

func (a *Authenticator) tailnetViewer(r *http.Request) (Viewer, error) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	peer, err := a.Tailnet.WhoIs(ctx, r.RemoteAddr)
	if err != nil {
		a.log().Warn("auth: WhoIs failed: request refused", "remote", r.RemoteAddr, "err", err)
		return Viewer{}, &RefusedError{"who you are on the tailnet is not known"}
	}
	if peer.User == "" {
		return Viewer{}, &RefusedError{fmt.Sprintf("%s is a tagged device: only tailnet users may view recordings", peer.Node)}
	}
	v := Viewer{Name: peer.User, Via: ViaTailnet}
	if ap, err := netipAddr(r.RemoteAddr); err == nil {
		v.Addr = ap
	}
	if vals := peer.Caps[ViewerCapability]; len(vals) > 0 {
		grants, err := ParseGrants(vals)
		if err != nil {
			a.log().Warn("auth: the tailnet policy's grant of "+ViewerCapability+" is malformed: ignored", "user", peer.User, "err", err)
		} else {
			v.Grants = grants
		}
	}
	return v, nil
}

func netipAddr(remote string) (string, error) {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 {
		return "", errors.New("no port")
	}
	return strings.Trim(remote[:i], "[]"), nil
}

// session returns the live session r's cookie names, after checking that
// its account still exists with the same password and role.
func (a *Authenticator) session(r *http.Request) (string, session, error) {
	c, err := r.Cookie(a.cookieName(r))
	if err != nil {
		return "", session{}, ErrUnauthenticated
	}
	id, ok := parseSessionID(c.Value)
	if !ok {
		return "", session{}, ErrUnauthenticated
	}
	sess, ok := a.sessions.get(id, a.now())
	if !ok {
		return "", session{}, ErrUnauthenticated
	}
	acct, err := a.Accounts.Lookup(sess.name)
	if err != nil || subtle.ConstantTimeCompare([]byte(acct.Hash), []byte(sess.hash)) != 1 || acct.Role != sess.role {
		// Removed, password reset, role changed (by "reel user"), or the
		// accounts file is unreadable: the session is over.
		a.sessions.remove(id)
		return "", session{}, ErrUnauthenticated
	}
	return id, sess, nil
}

// Cookie names. Over TLS the __Host- prefix makes the browser refuse the
// cookie unless it is Secure, for this host only, on path "/".
const (
	cookieSession       = "reel-session"
	cookieSessionSecure = "__Host-reel-session"
	cookieLogin         = "reel-login"
	cookieLoginSecure   = "__Host-reel-login"
)

func (a *Authenticator) secure(r *http.Request) bool { return r.TLS != nil || a.SecureCookies }

func (a *Authenticator) cookieName(r *http.Request) string {
	if a.secure(r) {
		return cookieSessionSecure
	}
	return cookieSession
}

func (a *Authenticator) loginCookieName(r *http.Request) string {
	if a.secure(r) {
		return cookieLoginSecure
	}
	return cookieLogin
}

func (a *Authenticator) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   a.secure(r),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// CSRF tokens travel in this header, or in this form field.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

// CSRFToken returns the token v's state-changing requests must carry:
// the session's own for an account, else one derived from the identity
// with a key of this process.
func (a *Authenticator) CSRFToken(r *http.Request, v Viewer) string {
	a.setup()
	if v.Via == ViaAccount {
		if _, sess, err := a.session(r); err == nil {
			return sess.csrf
		}
		return ""
	}
	return a.mac("csrf", v.Via, v.Name)
}

func (a *Authenticator) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ErrCSRF is CheckCSRF's error.
var ErrCSRF = errors.New("refused: cross-site request, or the page is out of date (reload it)")

// CheckCSRF checks a state-changing request of v: it must not be
// cross-origin (Sec-Fetch-Site, Origin) and must carry v's token in the
// X-CSRF-Token header or the csrf form field. Safe methods (GET, HEAD,
// OPTIONS) pass.
func (a *Authenticator) CheckCSRF(r *http.Request, v Viewer) error {
	a.setup()
	if safeMethod(r.Method) {
		return nil
	}
	if err := a.cop.Check(r); err != nil {
		return ErrCSRF
	}
	want := a.CSRFToken(r, v)
	if want == "" || !tokenEqual(requestToken(r), want) {
		return ErrCSRF
	}
	return nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func requestToken(r *http.Request) string {
	if t := r.Header.Get(CSRFHeader); t != "" {
		return t
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return r.PostFormValue(CSRFField)
	}
	return ""
}

func tokenEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// loginToken sets (if need be) the pre-login cookie and returns the
// token a login form must carry with it.
func (a *Authenticator) loginToken(w http.ResponseWriter, r *http.Request) string {
	a.setup()
	v := ""
	if c, err := r.Cookie(a.loginCookieName(r)); err == nil {
		if id, ok := parseSessionID(c.Value); ok {
			v = id
		}
	}
	if v == "" {
		v = newSessionID()
		a.setCookie(w, r, a.loginCookieName(r), v, 0)
	}
	return a.mac("login", v)
}

func (a *Authenticator) checkLoginToken(r *http.Request, token string) bool {
	c, err := r.Cookie(a.loginCookieName(r))
	if err != nil {
		return false
	}
	id, ok := parseSessionID(c.Value)
	return ok && tokenEqual(token, a.mac("login", id))
}

// A LoginError is a refused login, with the message for the user and the
// HTTP status to answer with.
type LoginError struct {
	Status     int
	Msg        string
	RetryAfter time.Duration // with 429
}

func (e *LoginError) Error() string { return e.Msg }

// Login checks name's password and, if right, starts a session and sets
// its cookie on w. Failed logins are limited per account and per client
// address: past the limit every attempt is refused (429, whatever the
// password) until the window ends. Each attempt is audited.
func (a *Authenticator) Login(ctx context.Context, w http.ResponseWriter, r *http.Request, name, password string) (Viewer, error) {
	a.setup()
	if a.Accounts == nil || a.Tailnet != nil {
		return Viewer{}, &LoginError{Status: http.StatusNotFound, Msg: "this UI has no local accounts"}
	}
	addr, _ := clientAddr(r, a.Proxy)
	from := addr.String()
	now := a.now()
	acctKey := strings.ToLower(name)
	left, blocked := a.acctLim.blocked(acctKey, now)
	why := "too many failed logins for this account"
	if !blocked {
		left, blocked = a.addrLim.blocked(from, now)
		why = "too many failed logins from your address"
	}
	if blocked {
		wait := left.Round(time.Second)
		a.log().Warn("auth: login refused by the rate limit", "user", clipForLog(name), "from", from, "why", why, "retry_after", wait)
		a.record(audit.Entry{User: name, Auth: ViaAccount, From: from, Action: audit.ActionLogin, Result: audit.ResultDenied, Reason: why})
		return Viewer{}, &LoginError{Status: http.StatusTooManyRequests, Msg: fmt.Sprintf("%s: try again in %s", why, wait), RetryAfter: left}
	}
	acct, err := a.Accounts.Verify(ctx, name, password)
	if err != nil {
		if !errors.Is(err, ErrBadLogin) {
			a.log().Error("auth: login failed", "user", clipForLog(name), "from", from, "err", err)
			a.record(audit.Entry{User: name, Auth: ViaAccount, From: from, Action: audit.ActionLogin, Result: audit.ResultFailed, Reason: err.Error()})
			return Viewer{}, &LoginError{Status: http.StatusInternalServerError, Msg: "login is not possible now; the server's log says why"}
		}
		a.acctLim.fail(acctKey, now)
		a.addrLim.fail(from, now)
		a.log().Info("auth: failed login", "user", clipForLog(name), "from", from)
		a.record(audit.Entry{User: name, Auth: ViaAccount, From: from, Action: audit.ActionLogin, Result: audit.ResultFailed, Reason: ErrBadLogin.Error()})
		return Viewer{}, &LoginError{Status: http.StatusUnauthorized, Msg: ErrBadLogin.Error()}
	}
	a.acctLim.reset(acctKey)
	id, sess := a.sessions.create(acct, now)
	a.setCookie(w, r, a.cookieName(r), id, 0)
	args := map[string]string(nil)
	if acct.MustChange {
		args = map[string]string{"one_time_password": "true"}
	}
	a.record(audit.Entry{User: acct.Name, Auth: ViaAccount, From: from, Action: audit.ActionLogin, Args: args, Result: audit.ResultOK})
	v := Viewer{Name: sess.name, Via: ViaAccount, Addr: from, Role: sess.role, MustChangePassword: sess.mustChange}
	if ok, _ := a.Access.IsAdmin(v); ok {
		v.Admin = true
	}
	return v, nil
}

// Logout ends r's session, if any, and clears its cookie.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) {
	a.setup()
	if a.Accounts == nil {
		return
	}
	if id, sess, err := a.session(r); err == nil {
		a.sessions.remove(id)
		addr, _ := clientAddr(r, a.Proxy)
		a.record(audit.Entry{User: sess.name, Auth: ViaAccount, From: addr.String(), Action: audit.ActionLogout, Result: audit.ResultOK})
	}
	a.setCookie(w, r, a.cookieName(r), "", -1)
}

// ChangePassword sets the password of r's account, after checking the
// old one (failures count towards the login limit). Every other session
// of the account ends; this one is replaced by a new one, whose cookie is
// set on w.
func (a *Authenticator) ChangePassword(ctx context.Context, w http.ResponseWriter, r *http.Request, old, new string) (Viewer, error) {
	a.setup()
	if a.Accounts == nil {
		return Viewer{}, &LoginError{Status: http.StatusNotFound, Msg: "this UI has no local accounts"}
	}
	_, sess, err := a.session(r)
	if err != nil {
		return Viewer{}, &LoginError{Status: http.StatusUnauthorized, Msg: "log in first"}
	}
	addr, _ := clientAddr(r, a.Proxy)
	from := addr.String()
	now := a.now()
	if left, blocked := a.acctLim.blocked(strings.ToLower(sess.name), now); blocked {
		return Viewer{}, &LoginError{Status: http.StatusTooManyRequests, Msg: fmt.Sprintf("too many failed logins for this account: try again in %s", left.Round(time.Second)), RetryAfter: left}
	}
	if _, err := a.Accounts.Verify(ctx, sess.name, old); err != nil {
		if errors.Is(err, ErrBadLogin) {
			a.acctLim.fail(strings.ToLower(sess.name), now)
			a.addrLim.fail(from, now)
			a.record(audit.Entry{User: sess.name, Auth: ViaAccount, From: from, Action: audit.ActionPassword, Result: audit.ResultFailed, Reason: "wrong current password"})
			return Viewer{}, &LoginError{Status: http.StatusForbidden, Msg: "the current password is wrong"}
		}
		return Viewer{}, err
	}
	if old == new {
		return Viewer{}, &LoginError{Status: http.StatusBadRequest, Msg: "the new password must differ from the current one"}
	}
	if err := CheckNewPassword(sess.name, new); err != nil {
		return Viewer{}, &LoginError{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	if err := a.Accounts.SetPassword(ctx, sess.name, new, false); err != nil {
		return Viewer{}, err
	}
	a.sessions.removeUser(sess.name)
	acct, err := a.Accounts.Lookup(sess.name)
	if err != nil {
		return Viewer{}, err
	}
	nid, nsess := a.sessions.create(acct, now)
	a.setCookie(w, r, a.cookieName(r), nid, 0)
	a.record(audit.Entry{User: sess.name, Auth: ViaAccount, From: from, Action: audit.ActionPassword, Result: audit.ResultOK})
	v := Viewer{Name: nsess.name, Via: ViaAccount, Addr: from, Role: nsess.role}
	if ok, _ := a.Access.IsAdmin(v); ok {
		v.Admin = true
	}
	return v, nil
}

// EndSessions ends every session of the account name (the UI removed or
// changed it). Changes made with "reel user" end them by themselves.
func (a *Authenticator) EndSessions(name string) {
	a.setup()
	a.sessions.removeUser(name)
}

// Record appends what v did to the audit log: action (an audit.Action
// constant), its target (a recording's key, the search text) and args
// (filters). err nil means it was done; a *RefusedError or ErrDenied
// that it was refused; anything else that it failed. The UI should not
// answer a request whose Record failed.
func (a *Authenticator) Record(r *http.Request, v Viewer, action, target string, args map[string]string, err error) error {
	e := audit.Entry{User: v.Name, Auth: v.Via, From: v.Addr, Action: action, Target: target, Args: args, Result: audit.ResultOK}
	if e.From == "" {
		addr, _ := clientAddr(r, a.Proxy)
		e.From = addr.String()
	}
	var re *RefusedError
	switch {
	case err == nil:
	case errors.Is(err, ErrDenied) || errors.As(err, &re):
		e.Result, e.Reason = audit.ResultDenied, err.Error()
	default:
		e.Result, e.Reason = audit.ResultFailed, err.Error()
	}
	if a.Audit == nil {
		return nil
	}
	if err := a.Audit.Append(e); err != nil {
		a.log().Error("auth: audit log", "err", err)
		return err
	}
	return nil
}

// ErrDenied is the error for a viewer who may not do what they asked.
var ErrDenied = errors.New("not allowed by the viewers rules")

// record appends e to the audit log, logging a failure.
func (a *Authenticator) record(e audit.Entry) {
	if a.Audit == nil {
		return
	}
	if err := a.Audit.Append(e); err != nil {
		a.log().Error("auth: audit log", "err", err, "action", e.Action, "user", e.User)
	}
}

type ctxKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, v)
}

// ViewerFrom returns the viewer Require put in ctx.
func ViewerFrom(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(ctxKey{}).(Viewer)
	return v, ok
}
