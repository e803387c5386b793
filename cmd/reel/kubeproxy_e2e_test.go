package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestKubeProxyRecordsToReelServe runs the real commands: "reel serve" as
// the recorder, "reel kube-proxy" (its kubeconfig printed by
// --print-kubeconfig) in front of the test API server, the real kubectl.
// A session and its API requests end up in reel serve's store.
func TestKubeProxyRecordsToReelServe(t *testing.T) {
	kubectl := testutil.NeedTool(t, "kubectl")
	kube := &kubetest.Server{
		Users:         map[string]kubetest.User{"sa": {Name: "system:serviceaccount:reel:kube-proxy"}, "alice-token": {Name: "alice"}},
		Impersonators: []string{"system:serviceaccount:reel:kube-proxy"},
		Dir:           t.TempDir(),
	}
	// kubectl and client-go send tokens over TLS only: reel reaches the
	// API server over TLS; the server's own WebSocket-to-SPDY leg uses
	// plain HTTP.
	leg := httptest.NewServer(kube.Handler())
	defer leg.Close()
	kube.URL = leg.URL
	hs := httptest.NewTLSServer(kube.Handler())
	defer hs.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	dir := t.TempDir()
	upstream := filepath.Join(dir, "upstream.kubeconfig")
	writeFile(t, upstream, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: up, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: reel, user: {token: sa}}]
contexts: [{name: up, context: {cluster: up, user: reel}}]
current-context: up
`, hs.URL, base64.StdEncoding.EncodeToString(caPEM)))

	dst := filepath.Join(dir, "recordings")
	serve := startServe(t, dst)
	policyFile := filepath.Join(dir, "policy.hujson")
	writeFile(t, policyFile, fmt.Sprintf(`{
	"recorders": {"tag:rec": [%q]},
	"kubernetes": [{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"], "enforceRecorder": true, "enableEvents": true}],
}`, serve.addr))

	addr := freeAddr(t)
	state := filepath.Join(dir, "state")
	kp := startReel(t, "kube-proxy", "--listen", addr, "--policy", policyFile, "--kubeconfig", upstream,
		"--state-dir", state, "--mode", "impersonate", "--log-level", "debug")
	waitListening(t, kp, addr)
	out, err := exec.Command(reelExe(t), "kube-proxy", "--print-kubeconfig", "--state-dir", state,
		"--server", "https://"+addr, "--user", "alice", "--token", "alice-token").Output()
	if err != nil {
		t.Fatalf("--print-kubeconfig: %v", err)
	}
	kc := filepath.Join(dir, "alice.kubeconfig")
	writeFile(t, kc, string(out))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, err := kubetest.Kubectl(ctx, kubectl, kc, kubetest.Options{WebSocket: true, Stdin: "never-stored\n"},
		"exec", "-i", "test", "--", "sh", "-c", "read x; echo e2e-$((40+2)); exit 2")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(got, "e2e-42") {
		t.Fatalf("kubectl exec: %v\n%s", err, got)
	}
	if ex := kube.Execs(); len(ex) != 1 || ex[0].User != "alice" {
		t.Errorf("the API server saw %+v", ex)
	}
	casts := waitCasts(t, dst, 1)
	c := casts[0]
	if c.data("o") != "e2e-42\n" || c.data("x") != "2" || strings.Contains(c.raw, "never-stored") {
		t.Errorf("recording:\n%s", c.raw)
	}
	if c.header.Kubernetes == nil || c.header.Kubernetes.PodName != "test" || c.header.SrcNodeUser != "alice" {
		t.Errorf("header %+v", c.header)
	}
	// The exec request went to /v2/event too.
	var events []string
	testutil.WaitForSeen(t, testutil.DefaultWait, "the exec request's event", func() bool {
		files, _ := filepath.Glob(filepath.Join(dst, "*", "events", "*.jsonl"))
		events = nil
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var stored struct {
					Event struct {
						Kubernetes struct{ Subresource string }
						Response   struct{ Code int }
						User       struct{ Username string }
					}
				}
				ev := &stored.Event
				if json.Unmarshal([]byte(l), &stored) == nil && ev.Kubernetes.Subresource == "exec" && ev.Response.Code == 101 && ev.User.Username == "alice" {
					return true
				}
				events = append(events, l)
			}
		}
		return false
	}, func() string { return strings.Join(events, "\n") })
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
