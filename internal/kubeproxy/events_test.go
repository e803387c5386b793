package kubeproxy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/testutil"
)

const eventsPolicy = `{
	"recorders": {"tag:rec": RECORDERS},
	"kubernetes": [{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"], "enableEvents": true}],
}`

// TestEvents: get, list and delete through the proxy each send one
// event, in the shape Tailscale's API proxy sends, with the user, the
// response code and the source address.
func TestEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := startRecorder(t)
	e.setPolicy(eventsPolicy, rec.addr)
	kc := e.kubeconfig(kubeproxy.KubeconfigUser{Name: "alice", Token: aliceToken})
	for _, args := range [][]string{
		{"get", "pod", "test", "-o", "name"},
		{"get", "pods", "-o", "name", "-l", "app=web"},
		{"get", "pod", "nosuch", "-o", "name"},
		{"delete", "pod", "test", "--wait=false"},
	} {
		out, err := e.run(kc, kubetest.Options{}, args...)
		if err != nil && args[2] != "nosuch" {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	type want struct {
		verb, name, method string
		code               int
	}
	wants := []want{
		{"get", "test", "GET", 200},
		{"list", "", "GET", 200},
		{"get", "nosuch", "GET", 404},
		{"delete", "test", "DELETE", 200},
	}
	var evs []map[string]any
	testutil.WaitForSeen(t, testutil.DefaultWait, "pod events", func() bool {
		evs = nil
		for _, ev := range rec.events(t) {
			if k := ev["kubernetes"].(map[string]any); k["Resource"] == "pods" {
				evs = append(evs, ev)
			}
		}
		return len(evs) >= len(wants)
	}, func() string { b, _ := json.Marshal(evs); return string(b) })
	for i, w := range wants {
		ev := evs[i]
		k := ev["kubernetes"].(map[string]any)
		req := ev["request"].(map[string]any)
		user := ev["user"].(map[string]any)
		src := ev["source"].(map[string]any)
		got := want{k["Verb"].(string), k["Name"].(string), req["method"].(string), int(ev["response"].(map[string]any)["code"].(float64))}
		if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
			t.Errorf("event %d (-want +got):\n%s", i, diff)
		}
		if ev["type"] != "kubernetes-api-request" || k["Namespace"] != "default" || user["username"] != "alice" ||
			!strings.HasPrefix(src["address"].(string), "127.0.0.1:") || !strings.Contains(ev["userAgent"].(string), "kubectl") {
			t.Errorf("event %d: %v", i, ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev["time"].(string)); err != nil {
			t.Errorf("event %d time: %v", i, err)
		}
		groups, _ := json.Marshal(user["groups"])
		if string(groups) != `["sre","system:authenticated"]` {
			t.Errorf("event %d groups %s", i, groups)
		}
	}
	if q := evs[1]["request"].(map[string]any)["queryParameters"].(map[string]any); q["labelSelector"] == nil {
		t.Errorf("list event query %v, want the label selector", q)
	}
	// Tailscale's own type reads the event: the shape is theirs.
	b, _ := json.Marshal(evs[0])
	var ts sessionrecording.Event
	if err := json.Unmarshal(b, &ts); err != nil {
		t.Fatal(err)
	}
	if ts.Type != sessionrecording.KubernetesAPIEventType || ts.Kubernetes.Verb != "get" || ts.Kubernetes.Resource != "pods" ||
		ts.Kubernetes.Name != "test" || ts.Request.Method != "GET" || ts.Source.NodeUser != "alice" || ts.Timestamp == 0 {
		t.Errorf("as Tailscale's Event: %+v", ts)
	}
}
