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
	"time"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/web"
)

type uiFlags struct {
	enabled         bool
	listen          string
	tlsCert, tlsKey string
}

func addUIFlags(fs *flag.FlagSet, env *cmdEnv) *uiFlags {
	f := &uiFlags{}
	fs.BoolVar(&f.enabled, "ui", envBool(env, "TSRECORDER_UI"), "serve the web UI: list, search and play recordings, watch live ones (env TSRECORDER_UI); see docs/ui.md")
	fs.StringVar(&f.listen, "ui-listen", envOr(env, "127.0.0.1:8443", "REEL_UI_LISTEN"), "address of the web UI in plain mode; plain HTTP only on loopback, anything else needs --ui-tls-cert (env REEL_UI_LISTEN)")
	fs.StringVar(&f.tlsCert, "ui-tls-cert", "", "serve the web UI over TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "ui-tls-key", "", "private key for --ui-tls-cert (PEM)")
	return f
}

// check refuses what would expose the UI unprotected: plain HTTP beyond
// this machine.
func (f *uiFlags) check(tailnetMode bool) error {
	if !f.enabled {
		return nil
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

// uiBackend is what the UI needs beyond the store: the index, viewer
// identity and access, the audit log.
type uiBackend struct {
	Index  index.Index
	Auth   web.Authenticator
	Access web.Access
	Audit  web.Auditor
	// Notify is told of the recorder's changes (the indexer); nil if none.
	Notify func(key string, c recorder.Change)
	// FirstLogin, when not "", tells a new user how to log in the first
	// time (a one-time password made for the first admin); printed once.
	FirstLogin string
	Close      func() error
}

// uiBackendConfig is what newUIBackend gets.
type uiBackendConfig struct {
	Store    store.Store
	StateDir string
	Tailnet  *tailnet.Server // nil in plain mode
	Log      *slog.Logger
}

// newUIBackend makes the UI's index, authenticator, viewers policy and
// audit log. The index (internal/index and its indexer) and viewer
// accounts (internal/auth, internal/audit) are built on their own
// branches; until they are wired in here, --ui says so and does not
// start.
var newUIBackend = func(ctx context.Context, cfg uiBackendConfig) (*uiBackend, error) {
	return nil, errUINotBuilt
}

var errUINotBuilt = errors.New("this build of reel has no recording index or viewer accounts yet, which the web UI needs")

// uiServer is the running UI.
type uiServer struct {
	web     *web.Server
	backend *uiBackend
	hs      *http.Server
	done    chan error
	url     string
}

// startUI starts the UI on its listener. In tailnet mode it listens on the
// node's :443 with the tailnet's HTTPS certificate.
func startUI(ctx context.Context, f *uiFlags, st store.Store, stateDir string, tn *tailnet.Server, log *slog.Logger) (*uiServer, error) {
	be, err := newUIBackend(ctx, uiBackendConfig{Store: st, StateDir: stateDir, Tailnet: tn, Log: log})
	if err != nil {
		return nil, fmt.Errorf("--ui: %w", err)
	}
	var ln net.Listener
	scheme := "https"
	switch {
	case tn != nil:
		ln, err = tn.ListenTLS("tcp", ":443")
	case f.tlsCert != "":
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
			err = fmt.Errorf("--ui-tls-cert/--ui-tls-key: %w", err)
			break
		}
		if ln, err = net.Listen("tcp", f.listen); err == nil {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
		}
	default:
		scheme = "http"
		ln, err = net.Listen("tcp", f.listen)
	}
	if err != nil {
		if be.Close != nil {
			be.Close()
		}
		return nil, fmt.Errorf("--ui-listen %s: %w", f.listen, err)
	}
	cache := ""
	if stateDir != "" {
		cache = filepath.Join(stateDir, "ui-segments")
	}
	ws := &web.Server{
		Store: st, Index: be.Index, Auth: be.Auth, Access: be.Access, Audit: be.Audit, Log: log.With("part", "ui"),
		CacheDir: cache, Secure: scheme == "https",
	}
	u := &uiServer{web: ws, backend: be, done: make(chan error, 1)}
	u.hs = &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() { u.done <- u.hs.Serve(ln) }()
	addr := ln.Addr().String()
	if tn != nil {
		for _, a := range tn.Addrs() {
			addr = net.JoinHostPort(a.String(), "443")
			break
		}
	}
	u.url = scheme + "://" + addr + "/"
	log.Info("web UI on "+u.url, "url", u.url)
	return u, nil
}

// notify passes the recorder's changes to the live view and the indexer.
func (u *uiServer) notify(key string, c recorder.Change) {
	if u.backend.Notify != nil {
		u.backend.Notify(key, c)
	}
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
	if u.backend.Close != nil {
		u.backend.Close()
	}
}
