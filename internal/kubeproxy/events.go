package kubeproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// apiEvent is one API request as sent to a recorder's /v2/event: the
// shape of Tailscale's sessionrecording.Event (type
// "kubernetes-api-request", request, kubernetes, source, destination),
// plus what reel knows beyond it: the user, the response code, the exact
// time.
type apiEvent struct {
	Type        string       `json:"type"`
	ID          string       `json:"id"`
	Timestamp   int64        `json:"timestamp"`
	UserAgent   string       `json:"userAgent"`
	Request     eventRequest `json:"request"`
	Kubernetes  eventKube    `json:"kubernetes"`
	Source      eventSource  `json:"source"`
	Destination eventDest    `json:"destination"`

	Time     string        `json:"time"`
	User     Identity      `json:"user"`
	Response eventResponse `json:"response"`
	Sender   string        `json:"sender"`
}

type eventRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Body is always null: request bodies can hold Secrets, and reel
	// does not copy them.
	Body            []byte     `json:"body"`
	QueryParameters url.Values `json:"queryParameters"`
}

// eventKube has the field names of Kubernetes' RequestInfo, as Tailscale
// sends them (no JSON tags).
type eventKube struct {
	IsResourceRequest bool
	Path              string
	Verb              string
	APIPrefix         string
	APIGroup          string
	APIVersion        string
	Namespace         string
	Resource          string
	Subresource       string
	Name              string
	Parts             []string
	FieldSelector     string
	LabelSelector     string
}

type eventSource struct {
	Node     string `json:"node"`
	NodeID   string `json:"nodeID"`
	NodeUser string `json:"nodeUser,omitempty"`
	Address  string `json:"address"`
}

type eventDest struct {
	Node   string `json:"node"`
	NodeID string `json:"nodeID"`
}

type eventResponse struct {
	Code int `json:"code"`
}

// KubernetesAPIEventType is the event type of an API request.
const KubernetesAPIEventType = "kubernetes-api-request"

func (s *Server) newEvent(req *proxyRequest, code int) *apiEvent {
	r, info := req.r, req.info
	return &apiEvent{
		Type:      KubernetesAPIEventType,
		Timestamp: req.start.Unix(),
		UserAgent: r.UserAgent(),
		Request: eventRequest{
			Method:          r.Method,
			Path:            r.URL.RequestURI(),
			QueryParameters: r.URL.Query(),
		},
		Kubernetes: eventKube{
			IsResourceRequest: info.IsResourceRequest, Path: info.Path, Verb: info.Verb,
			APIPrefix: info.APIPrefix, APIGroup: info.APIGroup, APIVersion: info.APIVersion,
			Namespace: info.Namespace, Resource: info.Resource, Subresource: info.Subresource,
			Name: info.Name, Parts: info.Parts, FieldSelector: info.FieldSelector, LabelSelector: info.LabelSelector,
		},
		Source:      eventSource{Node: req.src.Addr().String(), NodeUser: req.id.User, Address: req.src.String()},
		Destination: eventDest{Node: s.Hostname},
		Time:        req.start.UTC().Format(time.RFC3339Nano),
		User:        req.id,
		Response:    eventResponse{Code: code},
		Sender:      senderName,
	}
}

const senderName = "reel kube-proxy"

// eventSender posts events to recorders, with failover.
type eventSender struct {
	s      *Server
	client *http.Client

	mu      sync.Mutex
	good    map[netip.AddrPort]time.Time // last time a recorder answered
	queue   chan queuedEvent
	started bool
	closed  bool
	done    chan struct{}
}

type queuedEvent struct {
	recorders []netip.AddrPort
	ev        *apiEvent
}

// maxQueuedEvents bounds the events waiting to be sent in the background.
const maxQueuedEvents = 4096

// probeFresh is how long a recorder that answered counts as reachable.
const probeFresh = 10 * time.Second

func newEventSender(s *Server) *eventSender {
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 8, IdleConnTimeout: 60 * time.Second}
	return &eventSender{
		s:      s,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		good:   map[netip.AddrPort]time.Time{},
		queue:  make(chan queuedEvent, maxQueuedEvents),
		done:   make(chan struct{}),
	}
}

// send posts ev to the first recorder that stores it.
func (e *eventSender) send(ctx context.Context, recorders []netip.AddrPort, ev *apiEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var errs []error
	for _, ap := range recorders {
		err := e.post(ctx, ap, body)
		if err == nil {
			e.mark(ap)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ap, err))
	}
	if len(errs) == 0 {
		return errors.New("no recorders")
	}
	return errors.Join(errs...)
}

func (e *eventSender) post(ctx context.Context, ap netip.AddrPort, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ap.String()+"/v2/event", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("recorder answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (e *eventSender) mark(ap netip.AddrPort) {
	e.mu.Lock()
	e.good[ap] = e.s.now()
	e.mu.Unlock()
}

// reachable reports whether one of the recorders takes events: it
// answered within probeFresh, or answers HEAD /v2/event now.
func (e *eventSender) reachable(ctx context.Context, recorders []netip.AddrPort) error {
	now := e.s.now()
	e.mu.Lock()
	for _, ap := range recorders {
		if t, ok := e.good[ap]; ok && now.Sub(t) < probeFresh {
			e.mu.Unlock()
			return nil
		}
	}
	e.mu.Unlock()
	var errs []error
	for _, ap := range recorders {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+ap.String()+"/v2/event", nil)
		resp, err := e.client.Do(req)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ap, err))
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			e.mark(ap)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: HEAD /v2/event: %s", ap, resp.Status))
	}
	if len(errs) == 0 {
		return errors.New("no recorders")
	}
	return errors.Join(errs...)
}

// enqueue sends ev in the background (fail open): a full queue or a
// failure is logged, never blocks the request.
func (e *eventSender) enqueue(recorders []netip.AddrPort, ev *apiEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.s.log().Error("API REQUEST NOT RECORDED: shutting down", "path", ev.Request.Path)
		return
	}
	if !e.started {
		e.started = true
		go e.run()
	}
	select {
	case e.queue <- queuedEvent{recorders, ev}:
	default:
		e.s.log().Error("API REQUEST NOT RECORDED: event queue full (fail open)", "user", ev.User.User, "path", ev.Request.Path)
	}
}

func (e *eventSender) run() {
	defer close(e.done)
	for q := range e.queue {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := e.send(ctx, q.recorders, q.ev)
		cancel()
		if err != nil {
			e.s.log().Error("API REQUEST NOT RECORDED: no recorder took the event (fail open)", "user", q.ev.User.User,
				"verb", q.ev.Kubernetes.Verb, "path", q.ev.Request.Path, "code", q.ev.Response.Code, "err", err)
		}
	}
}

// close sends what is queued, waiting at most until ctx is done.
func (e *eventSender) close(ctx context.Context) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	started := e.started
	close(e.queue)
	e.mu.Unlock()
	if started {
		select {
		case <-e.done:
		case <-ctx.Done():
		}
	}
	e.client.CloseIdleConnections()
}
