// Package kubeproxy is reel kube-proxy: an HTTPS proxy in front of a
// Kubernetes API server that passes every request through and records
// what the policy asks for: "kubectl exec / attach / debug / run -it"
// sessions as asciicast recordings, and API requests as events, sent to
// reel's (or Tailscale's) recorders with internal/sender.
//
// Sessions are followed passively: the proxy forwards the upgraded
// connection byte for byte and parses the WebSocket (ws) or SPDY (spdy)
// frames as they pass, recording stdout, stderr, resizes and the exit
// status, never stdin. See docs/kubernetes.md for why it does not
// terminate and re-issue the streams.
//
// Users are known in one of two modes (Mode): pass-through, where their
// own credentials go upstream and a SelfSubjectReview names them, and
// impersonation, where the proxy authenticates them (client certificate
// or TokenReview) and impersonates them with its own service account.
//
// It is the only package besides internal/kubetest that imports the
// Kubernetes client libraries.
package kubeproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/sender"
)

// Server is the proxy. Set Upstream and Policy; the other fields have
// useful zero values.
type Server struct {
	// Upstream is the API server. Required.
	Upstream *Upstream
	// Mode is how users are presented upstream.
	Mode Mode
	// Audiences, in impersonation mode, are the audiences TokenReview
	// checks bearer tokens against; empty means the API server's.
	Audiences []string
	// Policy returns the policy in force, read at every request. Nil
	// means no policy: nothing is recorded, nothing refused.
	Policy func() *policy.Policy
	// Recording starts session recordings. Nil means a zero sender.Client.
	Recording *sender.Client
	// Dial opens connections to recorders for events. Nil means a
	// net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig, if set, makes Serve speak TLS (HTTP/1.1 only). Set
	// ClientCAs and ClientAuth = tls.VerifyClientCertIfGiven for
	// client-certificate users in impersonation mode.
	TLSConfig *tls.Config
	// Hostname names the proxy in recordings and events.
	Hostname string
	// FinishTimeout bounds the wait, at the end of a session, for the
	// recorder to confirm the recording. Zero means 30 s.
	FinishTimeout time.Duration
	// Log receives the proxy's log. Nil discards.
	Log *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	initOnce sync.Once
	info     *request.RequestInfoFactory
	ids      identityCache
	events   *eventSender
	hs       *http.Server
	sessions sync.WaitGroup
	mu       sync.Mutex
	closing  bool
	gaps     gapCounter
	live     map[*session]struct{}
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.info = &request.RequestInfoFactory{
			APIPrefixes:          sets.NewString("api", "apis"),
			GrouplessAPIPrefixes: sets.NewString("api"),
		}
		if s.Recording == nil {
			s.Recording = &sender.Client{}
		}
		s.events = newEventSender(s)
	})
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) policy() *policy.Policy {
	if s.Policy == nil {
		return nil
	}
	return s.Policy()
}

// Serve accepts connections on ln until Shutdown. It returns
// http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.hs == nil {
		s.hs = &http.Server{
			Handler: s,
			// No read or write timeouts: exec sessions and watches live
			// as long as they live. Only the request header is bounded.
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelDebug),
			TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		}
	}
	hs := s.hs
	s.mu.Unlock()
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, cfg)
	}
	return hs.Serve(ln)
}

// Shutdown stops accepting requests, waits for running requests and
// sessions to end (at most until ctx is done, then cuts them), and sends
// the events still queued.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing = true
	hs := s.hs
	s.mu.Unlock()
	var err error
	if hs != nil {
		err = hs.Shutdown(ctx)
		if err != nil {
			hs.Close()
		}
	}
	done := make(chan struct{})
	go func() { s.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cutSessions()
		<-done
	}
	s.events.close(ctx)
	return err
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	if s.Upstream == nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, errNoUpstream.Error())
		return
	}
	id, err := s.identify(r)
	if err != nil {
		var ae *authError
		var fe *forbiddenError
		switch {
		case errors.As(err, &ae):
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, ae.msg)
		case errors.As(err, &fe):
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, fe.msg)
		default:
			s.log().Error("authenticating a request failed", "err", err)
			writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "reel kube-proxy: cannot authenticate the request: "+err.Error())
		}
		return
	}
	info, err := s.info.NewRequestInfo(r)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "reel kube-proxy: "+err.Error())
		return
	}
	req := &proxyRequest{r: r, id: id, info: info, src: clientAddr(r), start: s.now()}
	if info.IsResourceRequest && info.Resource == "pods" {
		req.pod = info.Name
	}
	if p := s.policy(); p != nil {
		req.decision = p.Kubernetes(policy.KubeRequest{User: id.User, Groups: id.Groups, Src: req.src.Addr(), Namespace: info.Namespace, Pod: req.pod})
	} else {
		req.decision = policy.KubeDecision{Action: policy.Accept, Rule: -1, RecordRule: -1}
	}
	// Discovery and other non-resource requests (/api, /version) reveal
	// nothing a rule guards, and kubectl reports a refusal there only as
	// "unknown": a rejected user is refused at the first resource.
	if req.decision.Action == policy.Reject && info.IsResourceRequest {
		s.log().Warn("request refused by the policy", "user", id.User, "groups", id.Groups, "verb", info.Verb,
			"path", r.URL.Path, "policy_line", req.decision.Line)
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
			"reel kube-proxy: the policy does not allow "+describeUser(id)+" here (kubernetes rule at line "+itoa(req.decision.Line)+")")
		return
	}
	if isSession(r, info) {
		s.serveSession(w, req)
		return
	}
	s.serveRequest(w, req)
}

// proxyRequest is one request with what the proxy learned about it.
type proxyRequest struct {
	r        *http.Request
	id       Identity
	info     *request.RequestInfo
	pod      string
	src      netip.AddrPort
	start    time.Time
	decision policy.KubeDecision
}

// clientAddr is the client's address.
func clientAddr(r *http.Request) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func describeUser(id Identity) string {
	if id.User == "" {
		return "an unidentified user"
	}
	return "user " + quote(id.User)
}
