package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pires/go-proxyproto"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/rest"
	apiproxy "tailscale.com/k8s-operator/api-proxy"
	"tailscale.com/kube/kubetypes"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"

	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
	"github.com/reel-rec/reel/internal/testutil"
)

// startAPIProxy runs Tailscale's Kubernetes API server proxy (the code of
// the operator's k8s-proxy) as a tsnet node on c, in front of upstream. The
// proxy itself listens on localhost:80 and wants a PROXY protocol header
// naming the tailnet peer; in a cluster Tailscale's serve config supplies
// it, here a tailnet listener on :443 does. That listener hands the proxy
// an SPDY session one frame at a time (see paceSPDY for why). It returns
// the node and its tailnet address.
func startAPIProxy(t *testing.T, ctx context.Context, c *tailnettest.Control, hostname, upstream string) (*tsnet.Server, netip.AddrPort) {
	t.Helper()
	ts := &tsnet.Server{
		Dir:           t.TempDir(),
		Hostname:      hostname,
		ControlURL:    c.URL,
		AuthKey:       authKey,
		AdvertiseTags: []string{"tag:k8s"},
		Logf:          func(string, ...any) {},
		UserLogf:      func(string, ...any) {},
	}
	if os.Getenv("REEL_E2E_VERBOSE") != "" {
		ts.Logf = t.Logf
	}
	t.Cleanup(func() { ts.Close() })
	st, err := ts.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop().Sugar()
	if os.Getenv("REEL_E2E_VERBOSE") != "" {
		log = zaptest.NewLogger(t).Sugar()
	}
	ap, err := apiproxy.NewAPIServerProxy(log, &rest.Config{Host: upstream}, ts, kubetypes.APIServerProxyModeNoAuth, false)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- ap.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("API server proxy: %v", err)
		}
	})
	testutil.WaitFor(t, "the API server proxy on localhost:80", func() bool {
		c, err := net.Dial("tcp", "localhost:80")
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	ln, err := ts.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", "localhost:80")
				if err != nil {
					return
				}
				defer up.Close()
				if _, err := proxyproto.HeaderProxyFromAddrs(2, c.RemoteAddr(), c.LocalAddr()).WriteTo(up); err != nil {
					return
				}
				done := make(chan struct{}, 2)
				go func() { paceSPDY(runCtx, up, c); closeWrite(up); done <- struct{}{} }()
				go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	var ip netip.Addr
	for _, a := range st.TailscaleIPs {
		if a.Is4() {
			ip = a
		}
	}
	return ts, netip.AddrPortFrom(ip, 443)
}

// kubeHeader is the part of a Kubernetes recording's header the test checks.
type kubeHeader struct {
	Version     int    `json:"version"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Command     string `json:"command"`
	SrcNode     string `json:"srcNode"`
	SrcNodeID   string `json:"srcNodeID"`
	SrcNodeUser string `json:"srcNodeUser"`
	Kubernetes  struct {
		PodName     string
		Namespace   string
		Container   string
		SessionType string
	} `json:"kubernetes"`
}

// TestKubeAPIProxy: kubectl exec -it through Tailscale's real Kubernetes
// API server proxy, whose tailnet grant names reel as recorder with
// events on, is recorded by reel under the proxy's stable node ID, over
// WebSocket and SPDY, and every API request arrives at /v2/event.
func TestKubeAPIProxy(t *testing.T) {
	isolated(t)
	kubectl := testutil.NeedTool(t, "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startControl(t)
	dst := t.TempDir()
	reel := startReel(t, c, dst, t.TempDir(), "--hostname", "recorder", "--advertise-tags", "tag:recorder")

	rule, _ := json.Marshal(kubetypes.KubernetesCapRule{
		RecorderAddrs:   []netip.AddrPort{reel.addr},
		EnforceRecorder: true,
		EnableEvents:    true,
	})
	c.Server.SetGlobalAppCaps(tailcfg.PeerCapMap{tailcfg.PeerCapabilityKubernetes: {tailcfg.RawMessage(rule)}})

	kube := &kubetest.Server{}
	hs := httptest.NewUnstartedServer(kube.Handler())
	// One request per connection, so that the pacing link below sees an
	// SPDY upgrade's response at the start of its connection.
	hs.Config.SetKeepAlivesEnabled(false)
	hs.Start()
	defer hs.Close()
	kube.URL = hs.URL

	_, proxyAddr := startAPIProxy(t, ctx, c, "k8s-proxy", "http://"+pacedLink(t, hs.Listener.Addr().String()))
	proxyNode := c.NodeByName("k8s-proxy")
	proxyID := string(proxyNode.StableID)
	laptop := joinNode(t, ctx, c, "laptop")
	laptopNode := c.NodeByName("laptop")
	kubeconfig := kubetest.WriteKubeconfig(t, "http://"+forward(t, laptop, proxyAddr))

	for _, tt := range []struct {
		name     string
		method   string // of the exec request
		protocol string // as kubetest names it
	}{
		{"websocket", "GET", "websocket"},
		{"spdy", "POST", "spdy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := recordings(t, dst)
			word := "reel-k8s-" + tt.name
			// A hang fails in DefaultWait with what was seen, not at the
			// package timeout.
			execCtx, cancel := context.WithTimeout(ctx, testutil.DefaultWait)
			defer cancel()
			out, err := kubetest.Kubectl(execCtx, kubectl, kubeconfig, kubetest.Options{WebSocket: tt.protocol == "websocket", TTY: true}, "exec", "-it", "test", "--", "echo", word)
			if err != nil || !strings.Contains(out, word) {
				t.Fatalf("kubectl exec through the proxy: %v; want output with %q\n%s", err, word, kubeDiagnosis(t, out, dst, before))
			}
			execs := kube.Execs()
			if len(execs) == 0 || execs[len(execs)-1].Protocol != tt.protocol {
				t.Fatalf("API server saw %+v, want a last exec over %s", execs, tt.protocol)
			}

			var key string
			testutil.WaitForSeen(t, testutil.DefaultWait, "the recording to complete", func() bool {
				for k, info := range recordings(t, dst) {
					if _, old := before[k]; !old && info.Status == store.StatusComplete {
						key = k
						return true
					}
				}
				return false
			}, func() string { return kubeDiagnosis(t, out, dst, before) })
			if !strings.HasPrefix(key, proxyID+"/") {
				t.Errorf("recording %s not filed under the proxy's stable node ID %s", key, proxyID)
			}
			b, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(key)))
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			var h kubeHeader
			if err := json.Unmarshal([]byte(first), &h); err != nil {
				t.Fatalf("header %q: %v", first, err)
			}
			want := kubeHeader{
				Version: 2, Width: h.Width, Height: h.Height,
				Command:     "echo " + word,
				SrcNode:     strings.TrimSuffix(laptopNode.Name, "."),
				SrcNodeID:   string(laptopNode.StableID),
				SrcNodeUser: h.SrcNodeUser,
			}
			want.Kubernetes.PodName, want.Kubernetes.Namespace, want.Kubernetes.Container, want.Kubernetes.SessionType = "test", "default", "main", "exec"
			if diff := cmp.Diff(want, h); diff != "" {
				t.Errorf("recording header (-want +got):\n%s", diff)
			}
			if h.Width == 0 || h.Height == 0 || h.SrcNodeUser == "" {
				t.Errorf("header lacks terminal size or user: %s", first)
			}
			_, output := readCast(t, filepath.Join(dst, filepath.FromSlash(key)))
			if !strings.Contains(output, word) {
				t.Errorf("recorded output %q lacks %q", output, word)
			}

			// The requests of this exec (the pod lookup, the exec itself)
			// were sent to reel as events, under the proxy's node.
			got := kubeEvents(t, dst, proxyID, string(laptopNode.StableID))
			for _, want := range []string{
				"GET /api/v1/namespaces/default/pods/test",
				tt.method + " /api/v1/namespaces/default/pods/test/exec",
			} {
				if !slices.Contains(got, want) {
					t.Errorf("no event for %s; events: %s", want, strings.Join(got, ", "))
				}
			}
		})
	}
}

// kubeEvents returns the Kubernetes API request events stored under node
// as "METHOD path", checking that each came from source.
func kubeEvents(t *testing.T, dst, node, source string) []string {
	t.Helper()
	type event struct {
		Type    string `json:"type"`
		Request struct {
			Method string `json:"method"`
			Path   string `json:"path"`
		} `json:"request"`
		Source struct {
			NodeID string `json:"nodeID"`
		} `json:"source"`
	}
	var got []string
	for _, raw := range events(t, dst, node) {
		var ev event
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		if ev.Type != "kubernetes-api-request" || ev.Source.NodeID != source {
			t.Errorf("event %s: wrong type or source", raw)
		}
		path, _, _ := strings.Cut(ev.Request.Path, "?")
		got = append(got, ev.Request.Method+" "+path)
	}
	return got
}

// kubeDiagnosis describes a kubectl exec that failed or hung: what kubectl
// showed, the recordings it started (with their size and status), and
// where the proxy's session recording goroutines are (the proxy runs in
// this process).
func kubeDiagnosis(t *testing.T, out, dst string, before map[string]store.Info) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kubectl showed:\n%s\n", out)
	for k, info := range recordings(t, dst) {
		if _, old := before[k]; !old {
			fmt.Fprintf(&b, "recording %s: %s, %d bytes\n", k, info.Status, info.Size)
		}
	}
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sessionrecording") {
			fmt.Fprintf(&b, "proxy goroutine:\n%s\n", g)
		}
	}
	return b.String()
}

// pacedLink listens on loopback and forwards each connection to backend,
// handing SPDY sessions back one frame at a time (see paceSPDY). It stops
// at the end of the test.
func pacedLink(t *testing.T, backend string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				stop := context.AfterFunc(ctx, func() { c.Close(); b.Close() })
				defer stop()
				done := make(chan struct{}, 2)
				go func() { io.Copy(b, c); closeWrite(b); done <- struct{}{} }()
				go func() { paceSPDY(ctx, c, b); closeWrite(c); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
