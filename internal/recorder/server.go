// Package recorder is reel's recording API server: the wire contract of
// Tailscale's tsrecorder (POST /record over HTTP/1.1, POST /v2/record over
// HTTP/2 with ack frames, POST /v2/event), in front of a store.Store.
//
// An ack counts only bytes that are durable: the server syncs the store on a
// timer, for all live recordings in one round (group commit), and acks after
// the round.
package recorder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/reel-rec/reel/internal/store"
)

// Defaults for the Server's zero fields.
const (
	DefaultAckInterval  = time.Second
	DefaultMaxEventSize = 16 << 20
	DefaultEventMemory  = 64 << 20
	DefaultEventTimeout = 30 * time.Second
	// DefaultIdleTimeout is short on purpose: senders never reuse an idle
	// connection (Tailscale's client opens one per upload or event and
	// sends its requests back to back), so idle ones only cost.
	DefaultIdleTimeout          = 10 * time.Second
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultMaxConns             = 16384
	DefaultMaxConnsPerSender    = 2048
	DefaultMaxSessions          = 10000
	DefaultMaxSessionsPerSender = 1000

	// readHeaderTimeout bounds a request's headers, and a new connection's
	// first bytes.
	readHeaderTimeout = 10 * time.Second
	// livenessAck bounds the gap between ack frames even when a sync round
	// is slow: the client drops an upload after 30 s without one, and the
	// contract promises one at least every 5 s.
	livenessAck = 4 * time.Second
)

// Server serves the recording API. Set the fields, then call Serve; the
// zero value is not usable without Store. Limits are fields whose zero
// value means the default; a negative limit means none.
type Server struct {
	// Store receives recordings and events. Required.
	Store store.Store
	// Log receives one line per recording and every failure. Nil discards.
	Log *slog.Logger
	// Identify returns the sender's identity for a request; the store
	// files its recordings under store.SafeNode of it and keeps it beside
	// them. Nil means DefaultIdentify: the client certificate's identity
	// under mutual TLS, else the remote IP address.
	Identify func(*http.Request) (string, error)
	// DisableV2 makes the server answer like an old recorder that knows
	// only POST /record: /v2/record is 404.
	DisableV2 bool
	// AckInterval is how often live recordings are synced and acked.
	// Zero means DefaultAckInterval. Must be under 5 s.
	AckInterval time.Duration
	// MaxLine bounds one asciicast line before the recording is flagged
	// malformed (it is still stored). Zero means the checker's default.
	MaxLine int

	// MaxEventSize bounds one /v2/event body. Zero means
	// DefaultMaxEventSize.
	MaxEventSize int64
	// EventMemory bounds the bytes that all /v2/event bodies being read at
	// once may hold; an event waits for room. Zero means
	// DefaultEventMemory; it is never less than MaxEventSize.
	EventMemory int64
	// EventTimeout bounds how long one /v2/event body may take to arrive.
	// Zero means DefaultEventTimeout.
	EventTimeout time.Duration

	// IdleTimeout closes a connection with no request in flight: an
	// HTTP/1 keep-alive connection between requests, an HTTP/2 connection
	// with no open stream (also one that sent only its preface). Zero
	// means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxConns bounds the connections open at once; MaxConnsPerSender
	// those from one IP address. A connection over a limit is closed as
	// soon as it is accepted, logged and counted. Zero means
	// DefaultMaxConns and DefaultMaxConnsPerSender.
	MaxConns, MaxConnsPerSender int
	// MaxSessions bounds the recordings received at once;
	// MaxSessionsPerSender those from one sender node. A recording over a
	// limit is refused with 503 (for v2 at the HEAD /v2/record probe, so
	// that the client fails over), logged and counted. Zero means
	// DefaultMaxSessions and DefaultMaxSessionsPerSender.
	MaxSessions, MaxSessionsPerSender int

	// TLSConfig, when set, makes Serve speak TLS (HTTP/2 by ALPN); set
	// ClientAuth and ClientCAs for mutual TLS.
	TLSConfig *tls.Config
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Metrics counts what the server does. Nil makes an unregistered one
	// (NewMetrics(nil)).
	Metrics *Metrics
	// Notify, when set, is told of every recording created, grown (after
	// each sync round that made more of it durable) and closed, and of
	// every event stored. It is called on the recording path: it must not
	// block (queue the work and return).
	Notify func(key string, c Change)

	initOnce sync.Once
	hs       *http.Server
	commit   *committer
	shutting atomic.Bool
	conns    connCounter
	eventMem *semaphore.Weighted
	logLimit logLimiter

	mu       sync.Mutex
	sessions map[*session]struct{}
	perNode  map[string]int // live sessions by sender node
	drained  chan struct{}  // closed when sessions becomes empty while shutting down
	stopped  chan struct{}  // closed once Shutdown is done: stops the committer
	stopOnce sync.Once
}

// orDefault returns v, or def when v is zero.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Identify == nil {
			s.Identify = DefaultIdentify
		}
		if s.AckInterval <= 0 {
			s.AckInterval = DefaultAckInterval
		}
		if s.MaxEventSize <= 0 {
			s.MaxEventSize = DefaultMaxEventSize
		}
		s.EventMemory = max(orDefault(s.EventMemory, DefaultEventMemory), s.MaxEventSize+1)
		s.EventTimeout = orDefault(s.EventTimeout, DefaultEventTimeout)
		s.IdleTimeout = orDefault(s.IdleTimeout, DefaultIdleTimeout)
		s.MaxHeaderBytes = orDefault(s.MaxHeaderBytes, DefaultMaxHeaderBytes)
		s.MaxConns = orDefault(s.MaxConns, DefaultMaxConns)
		s.MaxConnsPerSender = orDefault(s.MaxConnsPerSender, DefaultMaxConnsPerSender)
		s.MaxSessions = orDefault(s.MaxSessions, DefaultMaxSessions)
		s.MaxSessionsPerSender = orDefault(s.MaxSessionsPerSender, DefaultMaxSessionsPerSender)
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Metrics == nil {
			s.Metrics = NewMetrics(nil)
		}
		s.eventMem = semaphore.NewWeighted(s.EventMemory)
		s.sessions = map[*session]struct{}{}
		s.perNode = map[string]int{}
		s.stopped = make(chan struct{})
		s.commit = newCommitter(s.Store, s.AckInterval, s.Metrics, s.Log)
		s.commit.notify = s.notify
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		s.hs = &http.Server{
			Handler:           s.newMux(),
			Protocols:         &p,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       s.IdleTimeout,
			MaxHeaderBytes:    s.MaxHeaderBytes,
			TLSConfig:         s.TLSConfig,
			ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug),
			HTTP2: &http.HTTP2Config{
				MaxReceiveBufferPerStream:     4 << 20,
				MaxReceiveBufferPerConnection: 8 << 20,
			},
		}
		go s.commit.run(s.stopped)
	})
}

// Handler returns the API's handler, for embedding in another server (the
// tailnet listener). Serve uses it.
func (s *Server) Handler() http.Handler {
	s.init()
	return s.hs.Handler
}

func (s *Server) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("HEAD /v2/record", s.headV2)
	mux.HandleFunc("POST /v2/record", s.postV2)
	mux.HandleFunc("POST /record", s.postV1)
	mux.HandleFunc("HEAD /v2/event", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /v2/event", s.postEvent)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "reel recorder: no such endpoint; recordings are sent with POST /record, POST /v2/record or POST /v2/event", http.StatusNotFound)
	})
	return mux
}

// Serve accepts connections on ln until Shutdown: HTTP/1.1 and cleartext
// HTTP/2 (h2c, prior knowledge), or TLS with HTTP/2 when TLSConfig is set.
func (s *Server) Serve(ln net.Listener) error { return s.ServeAllowed(ln, nil) }

// ServeAllowed is Serve for a listener where senders are known by their
// address (no mutual TLS, no tailnet): a connection whose remote address
// allow refuses is closed as soon as it is accepted, before anything is
// read from it, and logged and counted (reason "allow_from"). A nil allow
// allows every address.
func (s *Server) ServeAllowed(ln net.Listener, allow func(netip.Addr) bool) error {
	s.init()
	var err error
	if s.TLSConfig != nil {
		// crypto/tls reads whole records already.
		err = s.hs.ServeTLS(&limitListener{Listener: ln, s: s, allow: allow}, "", "")
	} else {
		err = s.hs.Serve(&limitListener{Listener: bufListener{ln}, s: s, allow: allow})
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting recordings, waits until ctx is done for live
// ones to end by themselves, then ends the rest: each gets its last ack and
// an error frame, and is stored as interrupted, cut at its last complete
// line. It returns once every recording is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.shutting.Store(true)
	hsDone := make(chan error, 1)
	go func() { hsDone <- s.hs.Shutdown(ctx) }()

	s.mu.Lock()
	live := len(s.sessions)
	if live > 0 && s.drained == nil {
		// Made once: a second Shutdown must wait on the same channel.
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	if live > 0 {
		s.Log.Info("shutting down: waiting for live recordings to end", "live", live)
		select {
		case <-drained:
		case <-ctx.Done():
			s.mu.Lock()
			rest := make([]*session, 0, len(s.sessions))
			for ss := range s.sessions {
				rest = append(rest, ss)
			}
			s.mu.Unlock()
			s.Log.Warn("shutting down: ending live recordings", "live", len(rest))
			for _, ss := range rest {
				ss.stop(errShutdown)
			}
			<-drained
		}
	}
	err := <-hsDone
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Every handler has returned; let connections deliver their last
		// frames and close gracefully, briefly, before forcing them.
		c2, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err = s.hs.Shutdown(c2); err != nil {
			err = s.hs.Close()
		}
	}
	s.stopOnce.Do(func() { close(s.stopped) })
	return err
}

var errShutdown = errors.New("the recorder is shutting down")

// track counts ss as live, or refuses it: the recorder is shutting down
// (Shutdown may already have seen zero sessions) or a limit is reached.
func (s *Server) track(ss *session) *refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return refusalShutdown
	}
	if ref := s.overLimitLocked(ss.node); ref != nil {
		return ref
	}
	s.sessions[ss] = struct{}{}
	s.perNode[ss.node]++
	return nil
}

// overLimit says why one more recording from node would be over a limit,
// or nil.
func (s *Server) overLimit(node string) *refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overLimitLocked(node)
}

func (s *Server) overLimitLocked(node string) *refusal {
	switch {
	case s.MaxSessions >= 0 && len(s.sessions) >= s.MaxSessions:
		return &refusal{http.StatusServiceUnavailable, fmt.Sprintf("reel recorder: too many recordings at once (limit %d); try another recorder", s.MaxSessions), "sessions"}
	case s.MaxSessionsPerSender >= 0 && s.perNode[node] >= s.MaxSessionsPerSender:
		return &refusal{http.StatusServiceUnavailable, fmt.Sprintf("reel recorder: too many recordings at once from this sender (limit %d); try another recorder", s.MaxSessionsPerSender), "sessions_per_sender"}
	}
	return nil
}

func (s *Server) untrack(ss *session) {
	s.commit.remove(ss)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, ss)
	if s.perNode[ss.node]--; s.perNode[ss.node] <= 0 {
		delete(s.perNode, ss.node)
	}
	if len(s.sessions) == 0 && s.drained != nil {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}

// DefaultIdentify names the sender of r: under mutual TLS the verified
// client certificate's first URI SAN, DNS SAN or common name; otherwise the
// remote IP address.
func DefaultIdentify(r *http.Request) (string, error) {
	var id string
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		switch {
		case len(c.URIs) > 0:
			id = c.URIs[0].String()
		case len(c.DNSNames) > 0:
			id = c.DNSNames[0]
		default:
			id = c.Subject.CommonName
		}
	} else {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return "", fmt.Errorf("sender address %q: %w", r.RemoteAddr, err)
		}
		id = host
	}
	if id == "" {
		return "", errors.New("the sender's certificate names no identity")
	}
	return id, nil
}
