package kubetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// A User is who a bearer token stands for.
type User struct {
	Name   string
	UID    string
	Groups []string
}

// Request is one API request as the server received it.
type Request struct {
	Method, Path, RawQuery string
	User                   string
	Groups                 []string
	Header                 http.Header
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// clusterState is what changes as kubectl works: pods created and
// deleted, ephemeral containers added, and the commands containers run.
type clusterState struct {
	pods     []Pod
	commands map[string][]string // "ns/pod/container" → command
	created  map[string]bool     // "ns/pod" made by a POST
	change   chan struct{}       // closed and replaced at every change
}

func (s *Server) state() *clusterState {
	if s.cluster == nil {
		s.cluster = &clusterState{pods: slices.Clone(s.pods()), commands: map[string][]string{}, created: map[string]bool{}, change: make(chan struct{})}
	}
	return s.cluster
}

// changed wakes the watchers; s.mu is held.
func (st *clusterState) changed() {
	close(st.change)
	st.change = make(chan struct{})
}

// watchPods streams the matching pods as watch events: all of them at
// first, then again at every change, until the client goes.
func (s *Server) watchPods(w http.ResponseWriter, r *http.Request, ns, name string) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	typ := "ADDED"
	for {
		s.mu.Lock()
		st := s.state()
		wake := st.change
		var items []any
		for _, p := range st.pods {
			if p.Namespace == ns && (name == "" || p.Name == name) {
				items = append(items, podJSON(p))
			}
		}
		s.mu.Unlock()
		for _, it := range items {
			enc.Encode(map[string]any{"type": typ, "object": it})
		}
		http.NewResponseController(w).Flush()
		typ = "MODIFIED"
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) livePods() []Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.state().pods)
}

// allContainers returns the pod's containers and ephemeral containers.
func (p Pod) allContainers() []string {
	return append(slices.Clone(p.Containers), p.ephemeral...)
}

func (s *Server) attachCommand(ns, pod, container string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.state().commands[ns+"/"+pod+"/"+container]; len(c) > 0 {
		return c
	}
	if len(s.AttachCommand) > 0 {
		return s.AttachCommand
	}
	return []string{"sh"}
}

// AttachContainer implements the kubelet's remotecommand.Attacher: each
// attach runs the container's command afresh.
func (e *localExecutor) AttachContainer(ctx context.Context, name string, uid types.UID, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	err := e.ExecInContainer(ctx, name, uid, container, e.attach, in, out, errw, tty, resize, 0)
	code := 0
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		code = ce.Code
	} else if err != nil {
		code = 1
	}
	if e.exited != nil {
		e.exited(code)
	}
	return err
}

// exited marks a pod that "kubectl run" made as finished once its command
// ends, and tells watchers.
func (s *Server) exited(ns, name string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state()
	if !st.created[ns+"/"+name] {
		return
	}
	for i := range st.pods {
		if st.pods[i].Namespace == ns && st.pods[i].Name == name {
			st.pods[i].exited = &code
		}
	}
	st.changed()
}

type userKey struct{}

// Query parameters of the WebSocket translator's SPDY leg that carry
// the user it translates for.
const (
	userParam  = "kubetestUser"
	groupParam = "kubetestGroup"
)

func userQuery(u User) string {
	q := url.Values{userParam: {u.Name}, groupParam: u.Groups}
	return "&" + q.Encode()
}

// userOf returns who the request was taken to come from.
func userOf(r *http.Request) User {
	u, _ := r.Context().Value(userKey{}).(User)
	return u
}

// authenticate checks bearer tokens and impersonation (with Users set),
// records the request, and serves TokenReview and SelfSubjectReview.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var who User
		if strings.HasPrefix(r.URL.Path, "/kubetest/") {
			// The translator's SPDY leg carries the user it translates for.
			q := r.URL.Query()
			who = User{Name: q.Get(userParam), Groups: q[groupParam]}
		} else if s.Users != nil {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			u, known := s.Users[tok]
			if !ok || !known {
				writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
				return
			}
			who = u
			if imp := r.Header.Get("Impersonate-User"); imp != "" {
				if !slices.Contains(s.Impersonators, u.Name) {
					writeStatus(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("users %q is forbidden: User %q cannot impersonate resource \"users\" in API group \"\" at the cluster scope", imp, u.Name))
					return
				}
				who = User{Name: imp, UID: r.Header.Get("Impersonate-Uid"), Groups: append(r.Header.Values("Impersonate-Group"), "system:authenticated")}
			}
		}
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, User: who.Name, Groups: who.Groups, Header: r.Header.Clone()})
		s.mu.Unlock()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, who)))
	})
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "reason": reason, "code": code})
}

// clusterRoutes adds pods list, create, delete and watch, ephemeral
// containers, attach, TokenReview and SelfSubjectReview.
func (s *Server) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods", func(w http.ResponseWriter, r *http.Request) {
		ns := r.PathValue("ns")
		name, _ := strings.CutPrefix(r.URL.Query().Get("fieldSelector"), "metadata.name=")
		var items []any
		for _, p := range s.livePods() {
			if p.Namespace == ns && (name == "" || p.Name == name) {
				items = append(items, podJSON(p))
			}
		}
		if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
			s.watchPods(w, r, ns, name)
			return
		}
		if items == nil {
			items = []any{}
		}
		writeJSON(w, map[string]any{"kind": "PodList", "apiVersion": "v1", "metadata": map[string]any{"resourceVersion": "1"}, "items": items})
	})
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/pods", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				Containers []struct {
					Name    string   `json:"name"`
					Command []string `json:"command"`
					Args    []string `json:"args"`
				} `json:"containers"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || body.Metadata.Name == "" {
			writeStatus(w, http.StatusBadRequest, "BadRequest", "bad pod")
			return
		}
		p := Pod{Namespace: r.PathValue("ns"), Name: body.Metadata.Name}
		s.mu.Lock()
		st := s.state()
		for _, c := range body.Spec.Containers {
			p.Containers = append(p.Containers, c.Name)
			if cmd := append(slices.Clone(c.Command), c.Args...); len(cmd) > 0 {
				st.commands[p.Namespace+"/"+p.Name+"/"+c.Name] = cmd
			}
		}
		st.pods = append(st.pods, p)
		st.created[p.Namespace+"/"+p.Name] = true
		st.changed()
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(podJSON(p))
	})
	mux.HandleFunc("DELETE /api/v1/namespaces/{ns}/pods/{pod}", func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("ns"), r.PathValue("pod")
		s.mu.Lock()
		st := s.state()
		i := slices.IndexFunc(st.pods, func(p Pod) bool { return p.Namespace == ns && p.Name == name })
		var p Pod
		if i >= 0 {
			p = st.pods[i]
			st.pods = slices.Delete(st.pods, i, i+1)
			st.changed()
		}
		s.mu.Unlock()
		if i < 0 {
			notFound(w, name)
			return
		}
		writeJSON(w, podJSON(p))
	})
	mux.HandleFunc("PATCH /api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers", func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("ns"), r.PathValue("pod")
		var body struct {
			Spec struct {
				EphemeralContainers []struct {
					Name    string   `json:"name"`
					Command []string `json:"command"`
					Args    []string `json:"args"`
				} `json:"ephemeralContainers"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", "bad patch: "+err.Error())
			return
		}
		s.mu.Lock()
		st := s.state()
		i := slices.IndexFunc(st.pods, func(p Pod) bool { return p.Namespace == ns && p.Name == name })
		if i >= 0 {
			for _, c := range body.Spec.EphemeralContainers {
				if !slices.Contains(st.pods[i].ephemeral, c.Name) {
					st.pods[i].ephemeral = append(st.pods[i].ephemeral, c.Name)
				}
				if cmd := append(slices.Clone(c.Command), c.Args...); len(cmd) > 0 {
					st.commands[ns+"/"+name+"/"+c.Name] = cmd
				}
			}
		}
		var p Pod
		if i >= 0 {
			p = st.pods[i]
			st.changed()
		}
		s.mu.Unlock()
		if i < 0 {
			notFound(w, name)
			return
		}
		writeJSON(w, podJSON(p))
	})
	attach := func(w http.ResponseWriter, r *http.Request) { s.serveExec(w, r, "") }
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{pod}/attach", attach)
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/pods/{pod}/attach", attach)
	mux.HandleFunc("POST /kubetest/spdy/{ns}/{pod}/attach", func(w http.ResponseWriter, r *http.Request) { s.serveExec(w, r, "websocket") })

	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Spec struct{ Token string } `json:"spec"`
		}
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review)
		status := map[string]any{"authenticated": false, "error": "invalid bearer token"}
		if u, ok := s.Users[review.Spec.Token]; ok {
			status = map[string]any{"authenticated": true, "user": map[string]any{"username": u.Name, "uid": u.UID, "groups": append(slices.Clone(u.Groups), "system:authenticated")}}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "status": status})
	})
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/selfsubjectreviews", func(w http.ResponseWriter, r *http.Request) {
		u := userOf(r)
		groups := slices.Clone(u.Groups)
		if !slices.Contains(groups, "system:authenticated") && u.Name != "" {
			groups = append(groups, "system:authenticated")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
			"status": map[string]any{"userInfo": map[string]any{"username": u.Name, "uid": u.UID, "groups": groups}}})
	})
}
