package kubeproxy

import (
	"errors"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// transport returns the upstream transport for the mode.
func (s *Server) transport() http.RoundTripper {
	if s.Mode == Impersonate {
		return s.Upstream.Own
	}
	return s.Upstream.Anonymous
}

// rewrite points out at the upstream API server and sets its credentials.
func (s *Server) rewrite(out *http.Request, req *proxyRequest) {
	target := *s.Upstream.URL
	out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
	out.URL.Path = strings.TrimSuffix(target.Path, "/") + req.r.URL.Path
	out.URL.RawPath = ""
	out.Host = ""
	if s.Mode == Impersonate {
		setImpersonation(out.Header, req.id)
	}
	if req.src.IsValid() {
		out.Header.Set("X-Forwarded-For", req.src.Addr().String())
	}
}

// eventError is a failure to record an API request as an event when the
// policy enforces it.
type eventError struct{ err error }

func (e *eventError) Error() string { return e.err.Error() }

// serveRequest forwards an API request (and any upgrade that is not an
// exec or attach session, such as port-forward) and sends it as an event
// when the policy asks.
func (s *Server) serveRequest(w http.ResponseWriter, req *proxyRequest) {
	d := req.decision
	events := d.Record && d.EnableEvents
	if events && d.EnforceRecorder {
		if err := s.events.reachable(req.r.Context(), d.Recorders); err != nil {
			s.log().Warn("request refused: no recorder takes events and the policy enforces recording",
				"user", req.id.User, "path", req.r.URL.Path, "err", err)
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
				"reel kube-proxy: this request must be recorded (enforceRecorder), but no recorder could be reached: "+err.Error())
			return
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { s.rewrite(pr.Out, req) },
		Transport:     s.transport(),
		FlushInterval: -1,
		ErrorLog:      nil,
		ModifyResponse: func(resp *http.Response) error {
			if events {
				return s.recordEvent(req, resp.StatusCode)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ee *eventError
			if errors.As(err, &ee) {
				writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
					"reel kube-proxy: the request could not be recorded and the policy enforces recording: "+ee.Error())
				return
			}
			s.log().Warn("upstream API server unreachable", "path", r.URL.Path, "err", err)
			if events {
				s.recordEvent(req, http.StatusBadGateway)
			}
			writeStatus(w, http.StatusBadGateway, metav1.StatusReasonServiceUnavailable, "reel kube-proxy: upstream API server: "+err.Error())
		},
	}
	rp.ServeHTTP(w, req.r)
}

// recordEvent sends the event for req with the response code: at once
// under enforceRecorder (an error means it was not recorded), else in
// the background.
func (s *Server) recordEvent(req *proxyRequest, code int) error {
	d := req.decision
	ev := s.newEvent(req, code)
	if !d.EnforceRecorder {
		s.events.enqueue(d.Recorders, ev)
		return nil
	}
	if err := s.events.send(req.r.Context(), d.Recorders, ev); err != nil {
		s.log().Error("API REQUEST NOT RECORDED: the response is withheld (enforceRecorder)", "user", req.id.User,
			"verb", req.info.Verb, "path", req.r.URL.Path, "code", code, "err", err)
		return &eventError{err}
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func quote(s string) string { return strconv.Quote(s) }
