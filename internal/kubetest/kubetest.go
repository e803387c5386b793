// Package kubetest is a minimal Kubernetes API server for tests: enough
// for the real kubectl to run "kubectl exec" against it, over WebSocket
// (v5.channel.k8s.io) and SPDY, with the commands running on the local
// machine as if in a pod's container.
//
// It serves /version, the /api and /apis discovery documents, GET of its
// pods, and the pods' exec subresource. The streaming protocols are
// Kubernetes' own server code, not a re-implementation: the kubelet's
// remotecommand server (SPDY) and the API server's stream translator
// (WebSocket, translated to SPDY as kube-apiserver does). It is meant for
// tests of proxies that sit between kubectl and an API server: Tailscale's
// Kubernetes API server proxy now, reel kube-proxy later.
//
// It depends on heavy Kubernetes modules; only tests import it.
package kubetest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/klog/v2"
	kubeletrc "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

func init() {
	// The streaming libraries log every closed connection through klog;
	// tests read kubectl's output instead.
	klog.SetLogger(logr.Discard())
}

// Pod is a pod the server knows: exec into it runs commands locally.
type Pod struct {
	Namespace, Name string
	// Containers are the container names; the first is kubectl's default.
	Containers []string

	ephemeral []string // ephemeral containers added by "kubectl debug"
	exited    *int     // a pod made by "kubectl run": its command's exit code, once it ended
}

// Exec is one exec request as the server received it.
type Exec struct {
	Namespace, Pod, Container string
	Command                   []string
	TTY, Stdin                bool
	// Protocol is how kubectl reached the server: "websocket" or "spdy".
	Protocol string
	// Header is the request's header (proxies add impersonation headers).
	Header http.Header
	// User and Groups are who the server took the request to come from
	// (with Users set; see cluster.go).
	User   string
	Groups []string
	// Kind is "exec" or "attach".
	Kind string
}

// Server is the API server. Set Pods, then serve Handler (for example with
// httptest.NewServer) and set URL to where it is served, so that the
// WebSocket translator can reach the SPDY endpoint.
type Server struct {
	// Pods the server has. Nil means one pod, "default/test" with
	// container "main".
	Pods []Pod
	// URL is the server's own base URL (http://127.0.0.1:port): the
	// WebSocket translator dials it for the SPDY leg.
	URL string
	// TLS is the client configuration for that leg when URL is https
	// (for example one that trusts httptest's certificate).
	TLS *tls.Config
	// Dir is where commands run. Empty means the current directory.
	Dir string

	// Users, if set, are the bearer tokens the server accepts, and who
	// each one is; requests without a known token are refused (401).
	// Nil means every request is anonymous and allowed.
	Users map[string]User
	// Impersonators are the users allowed to send Impersonate-* headers.
	Impersonators []string
	// AttachCommand is what a container runs when attached to (a shell
	// by default); "kubectl run" and "kubectl debug" set their own.
	AttachCommand []string

	mu            sync.Mutex
	execs         []Exec
	cluster       *clusterState
	requests      []Request
	secrets       map[string]map[string][]byte
	secretVersion int
}

// Execs returns the exec requests received so far.
func (s *Server) Execs() []Exec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.execs)
}

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{
			"major": "1", "minor": "34", "gitVersion": "v1.34.0-kubetest",
			"gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
			"buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.26", "compiler": "gc", "platform": "linux/amd64",
		})
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []map[string]string{{"clientCIDR": "0.0.0.0/0", "serverAddress": r.Host}},
		})
	})
	mux.HandleFunc("GET /apis", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{}})
	})
	mux.HandleFunc("GET /api/v1", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"kind": "APIResourceList", "groupVersion": "v1",
			"resources": []map[string]any{
				{"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": []string{"create", "delete", "get", "list", "watch"}, "shortNames": []string{"po"}},
				{"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions", "verbs": []string{"create", "get"}},
				{"name": "pods/attach", "singularName": "", "namespaced": true, "kind": "PodAttachOptions", "verbs": []string{"create", "get"}},
				{"name": "pods/ephemeralcontainers", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": []string{"get", "patch", "update"}},
			},
		})
	})
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{pod}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.pod(r.PathValue("ns"), r.PathValue("pod"))
		if !ok {
			notFound(w, r.PathValue("pod"))
			return
		}
		writeJSON(w, podJSON(p))
	})
	exec := func(w http.ResponseWriter, r *http.Request) { s.serveExec(w, r, "") }
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{pod}/exec", exec)
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/pods/{pod}/exec", exec)
	// The SPDY leg of a translated WebSocket exec (see serveExec).
	mux.HandleFunc("POST /kubetest/spdy/{ns}/{pod}/exec", func(w http.ResponseWriter, r *http.Request) { s.serveExec(w, r, "websocket") })
	s.clusterRoutes(mux)
	s.secretRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		notFound(w, r.URL.Path)
	})
	return s.authenticate(mux)
}

func (s *Server) pods() []Pod {
	if s.Pods == nil {
		return []Pod{{Namespace: "default", Name: "test", Containers: []string{"main"}}}
	}
	return s.Pods
}

func (s *Server) pod(ns, name string) (Pod, bool) {
	for _, p := range s.livePods() {
		if p.Namespace == ns && p.Name == name {
			return p, true
		}
	}
	return Pod{}, false
}

func podJSON(p Pod) map[string]any {
	var containers, statuses []map[string]any
	for _, c := range p.Containers {
		containers = append(containers, map[string]any{"name": c, "image": "kubetest"})
		state := map[string]any{"running": map[string]any{}}
		if p.exited != nil {
			state = map[string]any{"terminated": map[string]any{"exitCode": *p.exited}}
		}
		statuses = append(statuses, map[string]any{"name": c, "ready": p.exited == nil, "image": "kubetest", "imageID": "", "restartCount": 0, "state": state})
	}
	var ephemeral, ephemeralStatuses []map[string]any
	for _, c := range p.ephemeral {
		ephemeral = append(ephemeral, map[string]any{"name": c, "image": "kubetest", "stdin": true, "tty": true})
		ephemeralStatuses = append(ephemeralStatuses, map[string]any{"name": c, "ready": false, "image": "kubetest", "imageID": "", "restartCount": 0, "state": map[string]any{"running": map[string]any{"startedAt": "2025-01-01T00:00:00Z"}}})
	}
	spec := map[string]any{"containers": containers}
	status := map[string]any{"phase": "Running", "containerStatuses": statuses,
		"conditions": []map[string]any{{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}}}
	switch {
	case p.exited == nil:
	case *p.exited == 0:
		status["phase"] = "Succeeded"
	default:
		status["phase"] = "Failed"
	}
	if len(ephemeral) > 0 {
		spec["ephemeralContainers"] = ephemeral
		status["ephemeralContainerStatuses"] = ephemeralStatuses
	}
	return map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{"name": p.Name, "namespace": p.Namespace, "uid": "00000000-0000-0000-0000-" + fmt.Sprintf("%012x", len(p.Name)), "resourceVersion": "1", "creationTimestamp": "2025-01-01T00:00:00Z"},
		"spec":     spec,
		"status":   status,
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, what string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": fmt.Sprintf("%q not found", what), "reason": "NotFound", "code": 404,
	})
}

// flag reads a boolean exec parameter: kubectl sends "true", the kubelet
// convention is "1".
func flag(q url.Values, name string) bool {
	v := q.Get(name)
	return v == "true" || v == "1"
}

// serveExec serves an exec: a WebSocket upgrade goes through the API
// server's stream translator to this server's SPDY endpoint; SPDY goes to
// the kubelet's remotecommand server. via is the protocol kubectl used when
// this is the translator's SPDY leg.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request, via string) {
	ns, name := r.PathValue("ns"), r.PathValue("pod")
	p, ok := s.pod(ns, name)
	if !ok {
		notFound(w, name)
		return
	}
	q := r.URL.Query()
	container := q.Get("container")
	if container == "" && len(p.Containers) > 0 {
		container = p.Containers[0]
	}
	if !slices.Contains(p.allContainers(), container) {
		notFound(w, container)
		return
	}
	opts := &kubeletrc.Options{Stdin: flag(q, "stdin"), Stdout: flag(q, "stdout"), Stderr: flag(q, "stderr"), TTY: flag(q, "tty")}
	if opts.TTY {
		opts.Stderr = false // the terminal carries both
	}
	kind := "exec"
	if strings.HasSuffix(r.URL.Path, "/attach") {
		kind = "attach"
	}
	cmd := q["command"]
	if len(cmd) == 0 && kind == "exec" {
		http.Error(w, "no command", http.StatusBadRequest)
		return
	}

	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		if s.URL == "" {
			http.Error(w, "kubetest: Server.URL is not set; WebSocket exec needs it", http.StatusInternalServerError)
			return
		}
		loc, err := url.Parse(s.URL + "/kubetest/spdy/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/" + kind + "?" + r.URL.RawQuery + userQuery(userOf(r)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := proxy.NewStreamTranslatorHandler(loc, &http.Transport{Proxy: nil, TLSClientConfig: s.TLS}, 0, proxy.Options{
			Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY,
		})
		h.ServeHTTP(w, r)
		return
	}
	proto := "spdy"
	if via != "" {
		proto = via
	}
	who := userOf(r)
	s.mu.Lock()
	s.execs = append(s.execs, Exec{Namespace: ns, Pod: name, Container: container, Command: cmd, TTY: opts.TTY, Stdin: opts.Stdin, Protocol: proto, Header: r.Header.Clone(), User: who.Name, Groups: who.Groups, Kind: kind})
	s.mu.Unlock()
	if kind == "attach" {
		ex := &localExecutor{dir: s.Dir, attach: s.attachCommand(ns, name, container), exited: func(code int) { s.exited(ns, name, code) }}
		kubeletrc.ServeAttach(w, r, ex, name, types.UID(name), container, opts,
			time.Minute, 30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
		return
	}
	kubeletrc.ServeExec(w, r, &localExecutor{dir: s.Dir}, name, types.UID(name), container, cmd, opts,
		time.Minute, 30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
}

// localExecutor runs exec commands on this machine.
type localExecutor struct {
	dir    string
	attach []string       // what an attached container runs
	exited func(code int) // called when an attached command ends
}

// ExecInContainer implements the kubelet's remotecommand.Executor.
func (e *localExecutor) ExecInContainer(ctx context.Context, _ string, _ types.UID, _ string, argv []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "TERM=xterm")
	var err error
	if tty {
		err = runPTY(ctx, cmd, in, out, resize)
	} else {
		cmd.Stdin = in
		cmd.Stdout = out
		cmd.Stderr = errw
		err = cmd.Run()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}

func runPTY(ctx context.Context, cmd *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		return err
	}
	defer f.Close()
	// Resizes stop before f closes: Setsize uses the raw descriptor.
	stopResize, resized := make(chan struct{}), make(chan struct{})
	defer func() { close(stopResize); <-resized }()
	go func() {
		defer close(resized)
		for {
			select {
			case sz, ok := <-resize:
				if !ok {
					return
				}
				pty.Setsize(f, &pty.Winsize{Cols: sz.Width, Rows: sz.Height})
			case <-stopResize:
				return
			}
		}
	}()
	if in != nil {
		go io.Copy(f, in)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(out, f) // ends with EIO once the command has exited
		close(copied)
	}()
	err = cmd.Wait()
	// Everything the command wrote reaches kubectl before the exit status
	// does (a loaded machine may take a while to copy it).
	select {
	case <-copied:
	case <-ctx.Done():
	}
	return err
}
