// Package web is reel's web UI: a list of recordings and Kubernetes API
// events with filters and keyset pagination, screen-text search whose hits
// open the player at their moment, a player (asciinema-player, embedded)
// that serves large recordings as snapshot segments, and a live view of
// recordings in progress.
//
// Everything goes through three small interfaces the UI declares and the
// auth package implements: an Authenticator says who the viewer is (no
// page, recording or event is shown to anyone it does not name), Access
// says what that viewer may see (every list, search, view, live view and
// download is checked) and an Auditor records each of those acts.
//
// Recorded bytes and header fields are data, never markup: pages are made
// with html/template, the player gets output as text, and every response
// carries a strict Content-Security-Policy (scripts only from the binary's
// own assets, no inline script, no eval; WebAssembly compilation is allowed
// for the player's terminal, which is WebAssembly).
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/store"
)

// Viewer is an authenticated person using the UI.
type Viewer struct {
	Name  string // unique: an account name, a tailnet login, a proxy identity
	Admin bool   // may browse the audit log and every recording
	// Via says how the viewer was identified: "password", "tailnet",
	// "proxy". Shown on the page and written to the audit log.
	Via string
	// Addr is the client's address as the Authenticator knows it (behind
	// a trusted proxy, the one the proxy names); "" means the connection's.
	// It goes to the audit log.
	Addr string
	// Detail is the Authenticator's own record of the viewer, handed back
	// to Access; the UI does not read it.
	Detail any
}

// Authenticator identifies viewers. Implementations keep their own
// sessions (cookies), rate limits and accounts.
type Authenticator interface {
	// Viewer returns the viewer r comes from, if it carries a valid
	// identity (a session cookie, a tailnet identity, a trusted proxy's
	// header).
	Viewer(r *http.Request) (Viewer, bool)
	// Login checks a name and password and, when they are right, starts a
	// session: it sets its cookie on w. It returns ErrBadLogin for wrong
	// credentials, ErrNoPasswords when this identity source takes none
	// (tailnet, proxy), or an error of its own (for example a rate limit)
	// whose text is shown to the viewer.
	Login(w http.ResponseWriter, r *http.Request, name, password string) (Viewer, error)
	// Logout ends r's session, if any, and clears its cookie on w.
	Logout(w http.ResponseWriter, r *http.Request)
}

// Errors an Authenticator returns from Login.
var (
	ErrBadLogin    = errors.New("wrong name or password")
	ErrNoPasswords = errors.New("this recorder does not take passwords: it knows its viewers by their tailnet or proxy identity")
)

// Access decides what a viewer may see (the policy's viewers rules).
type Access interface {
	// Nodes lists the sender nodes whose recordings and events v may see;
	// nil means every node. It narrows index queries (index.Filter.Nodes).
	Nodes(v Viewer) []string
	// CanView reports whether v may see the recording (its row, its
	// screen text, its playback, its download).
	CanView(v Viewer, r index.Recording) bool
	// CanViewEvent reports whether v may see the event.
	CanViewEvent(v Viewer, e index.Event) bool
}

// DownloadAccess is implemented by an Access whose policy tells viewing
// from downloading: a viewer may then play a recording it may not
// download. Without it, whoever may view a recording may download it.
type DownloadAccess interface {
	CanDownload(v Viewer, r index.Recording) bool
}

// AuditEntry is one act of a viewer, for the audit log.
type AuditEntry struct {
	At     time.Time
	Viewer string // Viewer.Name; "" for a refused, unauthenticated request
	Via    string
	Remote string // the client address as the server saw it
	Action string // list, search, view, play, live, download, events, login, logout, refused
	Target string // a recording key or event id; "" for lists
	Detail string // the query or filter, or why it was refused
}

// Auditor appends entries to the audit log.
type Auditor interface {
	Record(ctx context.Context, e AuditEntry) error
}

// Server serves the UI. Set the fields, then use Handler. Store, Index and
// Auth are required; a nil Access lets every viewer see everything (only
// for a single-user recorder); a nil Auditor audits nothing.
type Server struct {
	Store store.Store
	Index index.Index
	Auth  Authenticator
	// Access is the viewers policy. Nil: every authenticated viewer sees
	// every recording.
	Access Access
	Audit  Auditor
	Log    *slog.Logger

	// CacheDir holds cut segments of large recordings, so that a second
	// viewer does not wait for the cut; "" keeps them in memory only.
	CacheDir string
	// SegmentThreshold: recordings larger than this are played as
	// snapshot segments; smaller ones are sent whole (which allows the
	// idle-time limit). Zero means DefaultSegmentThreshold.
	SegmentThreshold int64
	// SegmentBytes is the most output one segment carries. Zero means
	// DefaultSegmentBytes.
	SegmentBytes int
	// Secure marks cookies Secure (the UI is served over TLS).
	Secure bool
	// Busy, if set, says the recorder is taking a burst of data
	// (internal/busy): segments cut ahead of a first viewer wait for it to
	// end, so that they do not take the CPU the recordings need.
	Busy func() bool
	// Now returns the time; nil means time.Now.
	Now func() time.Time

	initOnce sync.Once
	mux      *http.ServeMux
	segs     *segmentCache
	live     *liveHub
	pages    *pageSet
	desks    deskIndexes // desktop.go
}

// Defaults.
const (
	DefaultSegmentThreshold = 8 << 20
	DefaultSegmentBytes     = 256 << 10
)

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.SegmentThreshold <= 0 {
			s.SegmentThreshold = DefaultSegmentThreshold
		}
		if s.SegmentBytes <= 0 {
			s.SegmentBytes = DefaultSegmentBytes
		}
		s.pages = mustPages()
		s.segs = newSegmentCache(s.Store, s.CacheDir, s.SegmentBytes, s.Log)
		s.segs.busy = s.Busy
		s.live = newLiveHub(s.Store, s.Log)
		s.mux = s.routes()
	})
}

// Handler returns the UI's handler.
func (s *Server) Handler() http.Handler {
	s.init()
	return securityHeaders(s.mux)
}

// Changed tells the UI that a recording changed (it grew, started or
// ended): live views read the new bytes at once instead of at their next
// poll, and a large recording that ended is cut into segments ahead of its
// first viewer. It never blocks; wire it to the recorder's Notify.
func (s *Server) Changed(key string, size int64, status store.Status) {
	s.init()
	s.live.changed(key, size, status)
	if status != store.StatusLive && size > s.SegmentThreshold && store.KindOf(key) != store.KindDesktop {
		s.segs.prepare(key)
	}
}

// Close stops the live views and background cuts, and waits for them.
func (s *Server) Close() error {
	s.init()
	s.live.close()
	s.segs.close()
	return nil
}

// csp is the Content-Security-Policy of every response. Scripts come only
// from this server's files; 'wasm-unsafe-eval' lets the player compile its
// WebAssembly terminal and allows no JavaScript eval.
const csp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}
