package main

// reel serve --ui: the web UI beside the recorder (internal/web).

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/web"
)

type uiFlags struct {
	enabled         bool
	listen          string
	tlsCert, tlsKey string
	// tailnetHTTP, when not "", serves the UI in tailnet mode over plain
	// HTTP at this ":PORT" on the tailnet instead of HTTPS on :443.
	tailnetHTTP string
}

func addUIFlags(fs *flag.FlagSet, env *cmdEnv) *uiFlags {
	f := &uiFlags{}
	fs.BoolVar(&f.enabled, "ui", envBool(env, "TSRECORDER_UI"), "serve the web UI: list, search and play recordings, watch live ones; it reads the index (not with --index off); the first start prints a one-time password for the account admin (env TSRECORDER_UI); see docs/ui.md")
	fs.StringVar(&f.listen, "ui-listen", envOr(env, "127.0.0.1:8443", "REEL_UI_LISTEN"), "address of the web UI in plain mode; plain HTTP only on loopback, anything else needs --ui-tls-cert (env REEL_UI_LISTEN)")
	fs.StringVar(&f.tlsCert, "ui-tls-cert", "", "serve the web UI over TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "ui-tls-key", "", "private key for --ui-tls-cert (PEM)")
	fs.StringVar(&f.tailnetHTTP, "ui-tailnet-http", envOr(env, "", "REEL_UI_TAILNET_HTTP"), "tailnet mode: serve the web UI over plain HTTP at this :PORT on the tailnet (e.g. :8443) instead of HTTPS on :443, when the tailnet gives no certificate or TLS ends elsewhere; WireGuard still encrypts it between nodes (env REEL_UI_TAILNET_HTTP)")
	return f
}

// check refuses what would expose the UI unprotected (plain HTTP beyond
// this machine) and a UI without the index it reads (indexLoc is where
// the index is, "" for none).
func (f *uiFlags) check(tailnetMode bool, indexLoc string) error {
	if err := f.checkTailnetHTTP(tailnetMode); err != nil {
		return err
	}
	if !f.enabled {
		return nil
	}
	if indexLoc == "" {
		return usagef("--ui needs the search index, which lists and searches the recordings: drop --index off (the default is a SQLite file in the state directory), or, for an s3 --dst, give --statedir or --index")
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usagef("--ui-tls-cert and --ui-tls-key go together")
	}
	if tailnetMode {
		return nil // on the tailnet's :443 with its certificate
	}
	if f.tlsCert == "" && !isLoopbackListen(f.listen) {
		return usagef("--ui-listen %s is reachable from other machines, and without TLS passwords and recordings would cross the network in the clear: give --ui-tls-cert and --ui-tls-key, or listen on 127.0.0.1 (and put a TLS proxy in front)", f.listen)
	}
	return nil
}

// checkTailnetHTTP checks --ui-tailnet-http: tailnet mode and --ui only,
// a port of its own (the recording API has the node's :80).
func (f *uiFlags) checkTailnetHTTP(tailnetMode bool) error {
	if f.tailnetHTTP == "" {
		return nil
	}
	if !tailnetMode || !f.enabled {
		return usagef("--ui-tailnet-http is for the web UI in tailnet mode (--tailnet --ui); in plain mode the UI listens on --ui-listen")
	}
	host, port, err := net.SplitHostPort(f.tailnetHTTP)
	n, perr := strconv.Atoi(port)
	if err != nil || host != "" || perr != nil || n < 1 || n > 65535 {
		return usagef("--ui-tailnet-http %q: want :PORT, e.g. :8443 (the node's tailnet addresses)", f.tailnetHTTP)
	}
	if n == 80 {
		return usagef("--ui-tailnet-http :80 is the recording API's port on the tailnet: pick another, e.g. :8443")
	}
	return nil
}

// uiServer is the running UI.
type uiServer struct {
	web        *web.Server
	access     *accessBackend
	hs         *http.Server
	done       chan error
	url        string
	firstLogin string // how to log in the first time; "" after the first start
	stopTags   func()
	tagsDone   chan struct{}
}

// uiDeps is what the UI is made of besides its flags: the recorder's
// store, the index the recorder feeds, the viewers policy.
type uiDeps struct {
	store    store.Store
	stateDir string
	tailnet  *tailnet.Server // nil in plain mode
	// index is the recorder's index (startIndexer's); nil when it is off
	// or did not open.
	index index.Index
	// tags is the TagMap the indexer tells each recording's tags
	// (tagLearner): viewers rules by tag narrow lists with it.
	tags   *auth.TagMap
	holder *policy.Holder // --policy; nil without one
	access *accessFlags
	// busy says the recorder is taking a burst of data (internal/busy).
	busy func() bool
}

// startUI starts the UI on its listener. In tailnet mode it listens on the
// node's :443 with the tailnet's HTTPS certificate, or with
// --ui-tailnet-http over plain HTTP on that port.
func startUI(ctx context.Context, f *uiFlags, d uiDeps, log *slog.Logger) (u *uiServer, err error) {
	if d.index == nil {
		return nil, errors.New("--ui: the web UI reads the search index, which did not open (the log above says why; reel index rebuild recreates it)")
	}
	// Listen first: the first admin's one-time password is made (and
	// printed) only by a start that goes on to serve the UI.
	var ln net.Listener
	scheme := "https"
	uiPort := "443"
	switch {
	case d.tailnet != nil && f.tailnetHTTP != "":
		scheme = "http"
		_, uiPort, _ = net.SplitHostPort(f.tailnetHTTP) // checked
		ln, err = d.tailnet.Listen("tcp", f.tailnetHTTP)
	case d.tailnet != nil:
		ln, err = d.tailnet.ListenTLS("tcp", ":443")
	case f.tlsCert != "":
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
			return nil, fmt.Errorf("--ui-tls-cert/--ui-tls-key: %w", err)
		}
		if ln, err = net.Listen("tcp", f.listen); err == nil {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
		}
	default:
		scheme = "http"
		ln, err = net.Listen("tcp", f.listen)
	}
	if err != nil {
		if d.tailnet != nil {
			return nil, fmt.Errorf("--ui on the tailnet's :%s: %w", uiPort, err)
		}
		return nil, fmt.Errorf("--ui-listen %s: %w", f.listen, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	var node tailnet.Node
	if d.tailnet != nil {
		node = d.tailnet
	}
	secure := d.tailnet != nil || f.tlsCert != ""
	acc, err := d.access.openAccess(ctx, d.holder, d.stateDir, node, secure, log)
	if err != nil {
		return nil, fmt.Errorf("--ui: %w", err)
	}
	defer func() {
		if err != nil {
			acc.Close()
		}
	}()
	// The indexer tells d.tags the tags of the rows it writes; the rows
	// written before this start are read once, in the background.
	if d.tags != nil {
		acc.Tags = d.tags
		acc.Access.Tags = d.tags
	}
	cache := ""
	if d.stateDir != "" {
		cache = filepath.Join(d.stateDir, "ui-segments")
	}
	ws := &web.Server{
		Store: d.store, Index: d.index, Auth: webAuth{acc.Auth}, Access: webAccess{acc.Access}, Audit: webAudit{acc.Audit},
		Log: log.With("part", "ui"), CacheDir: cache, Secure: scheme == "https", Busy: d.busy,
	}
	tagCtx, stopTags := context.WithCancel(context.WithoutCancel(ctx))
	u = &uiServer{web: ws, access: acc, done: make(chan error, 1), stopTags: stopTags, tagsDone: make(chan struct{})}
	go func() {
		defer close(u.tagsDone)
		if d.tags == nil {
			return
		}
		if err := learnTags(tagCtx, d.index, d.tags); err != nil && tagCtx.Err() == nil {
			log.Warn("web UI: reading the nodes' tags from the index; viewers rules by tag may leave some nodes out of lists until their next recording", "err", err)
		}
	}()
	u.hs = &http.Server{Handler: uiHandler(acc.Auth, ws.Handler()), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() { u.done <- u.hs.Serve(ln) }()
	addr := ln.Addr().String()
	if d.tailnet != nil {
		for _, a := range d.tailnet.Addrs() {
			addr = net.JoinHostPort(a.String(), uiPort)
			break
		}
	}
	u.url = scheme + "://" + addr + "/"
	u.firstLogin = acc.FirstLogin
	log.Info("web UI on "+u.url, "url", u.url, "viewers", acc.Auth.Mode())
	return u, nil
}

// uiHandler is the UI's handler: the login API and the password page of
// internal/auth under /auth/, and the UI; a viewer who logged in with a
// one-time password is sent to set a password of their own before
// anything else.
func uiHandler(a *auth.Authenticator, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", a.Handler()))
	if a.Tailnet != nil {
		// No passwords and no login page: a peer WhoIs cannot name as a
		// user (a tagged device, an unknown address) is refused, and told why.
		mux.Handle("/", tailnetOnly(a, ui))
		return mux
	}
	if a.Accounts == nil {
		// No passwords (proxy): nothing to change.
		mux.Handle("/", ui)
		return mux
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/login", p == "/logout", strings.HasPrefix(p, "/assets/"):
		default:
			if v, err := a.Viewer(r); err == nil && v.MustChangePassword {
				if r.Method == http.MethodGet && !strings.HasPrefix(p, "/api/") && !isUIData(p) {
					http.Redirect(w, r, "/auth/password", http.StatusSeeOther)
					return
				}
				http.Error(w, "change your one-time password first: /auth/password", http.StatusForbidden)
				return
			}
		}
		ui.ServeHTTP(w, r)
	}))
	return mux
}

// tailnetOnly refuses (403, with the reason) what a's tailnet identity
// refuses, rather than sending it to a login page it cannot use.
func tailnetOnly(a *auth.Authenticator, ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.Viewer(r); err != nil && !strings.HasPrefix(r.URL.Path, "/assets/") {
			var re *auth.RefusedError
			if !errors.As(err, &re) {
				re = &auth.RefusedError{Msg: "who you are on the tailnet is not known"}
			}
			http.Error(w, re.Msg, http.StatusForbidden)
			return
		}
		ui.ServeHTTP(w, r)
	})
}

// isUIData reports whether path is a recording's data rather than a page.
func isUIData(p string) bool {
	return strings.HasPrefix(p, "/r/") && strings.Count(p, "/") > 3
}

// webAuth is internal/auth's Authenticator as the UI's.
type webAuth struct{ a *auth.Authenticator }

func (w webAuth) Viewer(r *http.Request) (web.Viewer, bool) {
	v, err := w.a.Viewer(r)
	if err != nil {
		return web.Viewer{}, false
	}
	return webViewer(v), true
}

func webViewer(v auth.Viewer) web.Viewer {
	return web.Viewer{Name: v.Name, Admin: v.Admin, Via: v.Via, Addr: v.Addr, Detail: v}
}

func (w webAuth) Login(rw http.ResponseWriter, r *http.Request, name, password string) (web.Viewer, error) {
	v, err := w.a.Login(r.Context(), rw, r, name, password)
	var le *auth.LoginError
	switch {
	case err == nil:
		return webViewer(v), nil
	case errors.As(err, &le) && le.Status == http.StatusUnauthorized:
		return web.Viewer{}, web.ErrBadLogin
	case errors.As(err, &le) && le.Status == http.StatusNotFound:
		return web.Viewer{}, web.ErrNoPasswords
	}
	return web.Viewer{}, err
}

func (w webAuth) Logout(rw http.ResponseWriter, r *http.Request) { w.a.Logout(rw, r) }

// webAccess is internal/auth's Access (the policy's viewers rules and
// admins) as the UI's.
type webAccess struct{ a *auth.Access }

// viewer is the auth.Viewer behind a UI viewer (with its role, tailnet
// grants and password state).
func (webAccess) viewer(v web.Viewer) auth.Viewer {
	if av, ok := v.Detail.(auth.Viewer); ok {
		return av
	}
	return auth.Viewer{Name: v.Name, Via: v.Via, Admin: v.Admin}
}

func (w webAccess) Nodes(v web.Viewer) []string {
	nodes, err := w.a.IndexNodes(context.Background(), w.viewer(v), policy.ActionView)
	if err != nil {
		return []string{} // nothing, rather than everything
	}
	return nodes
}

func (w webAccess) CanView(v web.Viewer, r index.Recording) bool {
	ok, _ := w.a.Can(w.viewer(v), r.Node, r.Tags, policy.ActionView)
	return ok
}

func (w webAccess) CanDownload(v web.Viewer, r index.Recording) bool {
	ok, _ := w.a.Can(w.viewer(v), r.Node, r.Tags, policy.ActionDownload)
	return ok
}

// CanViewEvent: an event is seen by those who may view its node's
// recordings (events carry no tags).
func (w webAccess) CanViewEvent(v web.Viewer, e index.Event) bool {
	ok, _ := w.a.Can(w.viewer(v), e.Node, nil, policy.ActionView)
	return ok
}

// webAudit writes the UI's entries to the audit log. Logins and logouts
// are left out: internal/auth writes them, with their result.
type webAudit struct{ l *audit.Log }

func (w webAudit) Record(_ context.Context, e web.AuditEntry) error {
	ae := audit.Entry{User: e.Viewer, Auth: e.Via, From: hostOf(e.Remote), Action: e.Action, Target: e.Target, Result: audit.ResultOK}
	switch e.Action {
	case "login", "logout":
		return nil
	case "refused":
		ae.Action, ae.Result, ae.Reason = audit.ActionView, audit.ResultDenied, e.Detail
		if what, why, ok := strings.Cut(e.Detail, ": "); ok && what == "download" {
			ae.Action, ae.Reason = audit.ActionDownload, why
		}
	case "search":
		// Detail is "q=TEXT FILTERS": the text is the target.
		q := strings.TrimPrefix(e.Detail, "q=")
		filters := ""
		if i := strings.LastIndexByte(q, ' '); i >= 0 {
			q, filters = q[:i], q[i+1:]
		}
		ae.Target = q
		if filters != "" {
			ae.Args = map[string]string{"filter": filters}
		}
	default:
		if e.Detail != "" {
			key := "filter"
			if e.Target != "" {
				key = "query" // a recording opened from a search
			}
			ae.Args = map[string]string{key: e.Detail}
		}
	}
	return w.l.Append(ae)
}

// hostOf is the address of "host:port", or s as it is.
func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// notify passes the recorder's changes to the live views.
func (u *uiServer) notify(key string, c recorder.Change) {
	switch c.What {
	case recorder.Created, recorder.Grew:
		u.web.Changed(key, c.Size, store.StatusLive)
	case recorder.Closed:
		u.web.Changed(key, c.Size, c.Status)
	}
}

// close stops the UI: open pages and live views end.
func (u *uiServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u.hs.Shutdown(ctx)
	u.hs.Close()
	u.web.Close()
	u.stopTags()
	<-u.tagsDone
	u.access.Close()
}
