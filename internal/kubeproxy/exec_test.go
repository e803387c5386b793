package kubeproxy_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
)

const recordAll = `{
	"recorders": {"tag:rec": RECORDERS},
	"kubernetes": [{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"], "enforceRecorder": true}],
}`

// TestExecRecorded: kubectl exec through the proxy, over WebSocket and
// SPDY, in pass-through mode, is recorded: output, exit status, the
// Kubernetes header; stdin is not.
func TestExecRecorded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ws    bool
		proto string
	}{
		{"websocket", true, "websocket"},
		{"spdy", false, "spdy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			rec := startRecorder(t)
			e.setPolicy(recordAll, rec.addr)
			kc := e.kubeconfig(kubeproxy.KubeconfigUser{Name: "alice", Token: aliceToken})
			out, err := e.run(kc, kubetest.Options{WebSocket: tc.ws, Stdin: "the secret stdin\n"},
				"exec", "-i", "test", "--", "sh", "-c", "echo out; cat >/dev/null; echo err >&2; exit 3")
			if code := exitCode(err); code != 3 {
				t.Fatalf("kubectl exec: %v (exit %d), want exit 3\n%s", err, code, out)
			}
			if !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
				t.Errorf("output %q", out)
			}
			casts := rec.waitCasts(t, 1)
			c := casts[0]
			if strings.Contains(string(c.raw), "secret") {
				t.Errorf("stdin reached the recording:\n%s", c.raw)
			}
			wantK := &asciicast.Kubernetes{PodName: "test", Namespace: "default", Container: "main", SessionType: "exec"}
			if diff := cmp.Diff(wantK, c.header.Kubernetes); diff != "" {
				t.Errorf("kubernetes header (-want +got):\n%s", diff)
			}
			if c.header.SrcNodeUser != "alice" || c.header.Command != "sh -c echo out; cat >/dev/null; echo err >&2; exit 3" {
				t.Errorf("header user %q command %q", c.header.SrcNodeUser, c.header.Command)
			}
			if got := string(c.header.Extra["protocol"]); got != `"`+tc.proto+`"` {
				t.Errorf("protocol %s", got)
			}
			if got := c.output(t); got != "out\nerr\n" {
				t.Errorf("recorded output %q, want %q", got, "out\nerr\n")
			}
			last := c.events[len(c.events)-1]
			if last.Code != "x" || last.Data != "3" {
				t.Errorf("last event %v, want the exit status 3", last)
			}
			if n := len(e.kube.Execs()); n != 1 || e.kube.Execs()[0].User != "alice" {
				t.Errorf("API server saw %+v", e.kube.Execs())
			}
		})
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}
