package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestKubernetesAccess covers what reel kube-proxy asks of the policy:
// reject rules, Kubernetes groups and users with ':', pods, and the rule
// that one matching rule with a recorder is enough to record.
func TestKubernetesAccess(t *testing.T) {
	p := mustParse(t, `{
	"groups": {"group:sre": ["alice"]},
	"recorders": {"tag:rec": ["100.64.0.1:80"], "tag:rec2": ["100.64.0.2:80"]},
	"kubernetes": [
		{"action": "reject", "src": ["mallory", "k8s-group:contractors"], "namespaces": ["*"]},
		{"src": ["system:serviceaccount:ci:deployer"], "namespaces": ["*"]},
		{"src": ["k8s-group:system:masters"], "namespaces": ["*"], "recorder": ["tag:rec"], "enforceRecorder": true, "enableEvents": true},
		{"src": ["*"], "namespaces": ["prod"], "pods": ["web-*", "db-0"], "recorder": ["tag:rec2"]},
		{"action": "reject", "src": ["*"], "namespaces": ["vault"]},
	],
}`)
	type want struct {
		Action                        string
		Rule                          int
		Record                        bool
		RecordRule                    int
		Recorders                     []netip.AddrPort
		EnforceRecorder, EnableEvents bool
	}
	tests := []struct {
		name string
		req  KubeRequest
		want want
	}{
		{"rejected user", KubeRequest{User: "mallory", Namespace: "prod", Pod: "web-1"}, want{Action: Reject, Rule: 0, RecordRule: -1}},
		{"rejected by group", KubeRequest{User: "eve", Groups: []string{"contractors"}, Namespace: "dev"}, want{Action: Reject, Rule: 0, RecordRule: -1}},
		{"kubernetes group records", KubeRequest{User: "root-ish", Groups: []string{"system:authenticated", "system:masters"}, Namespace: "kube-system"},
			want{Accept, 2, true, 2, []netip.AddrPort{rec1}, true, true}},
		{"service account accepted unrecorded", KubeRequest{User: "system:serviceaccount:ci:deployer", Namespace: "dev"}, want{Action: Accept, Rule: 1, RecordRule: -1}},
		{"a later rule with a recorder wins", KubeRequest{User: "system:serviceaccount:ci:deployer", Namespace: "prod", Pod: "web-7f9c"},
			want{Accept, 1, true, 3, []netip.AddrPort{rec2}, false, false}},
		{"pod pattern", KubeRequest{User: "bob", Namespace: "prod", Pod: "db-0"}, want{Accept, 3, true, 3, []netip.AddrPort{rec2}, false, false}},
		{"pod not listed", KubeRequest{User: "bob", Namespace: "prod", Pod: "db-1"}, want{Action: Accept, Rule: -1, RecordRule: -1}},
		{"no pod in the request", KubeRequest{User: "bob", Namespace: "prod"}, want{Action: Accept, Rule: -1, RecordRule: -1}},
		{"default deny in one namespace", KubeRequest{User: "bob", Namespace: "vault", Pod: "v-0"}, want{Action: Reject, Rule: 4, RecordRule: -1}},
		{"no rule: accepted, unrecorded", KubeRequest{User: "bob", Namespace: "dev"}, want{Action: Accept, Rule: -1, RecordRule: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Kubernetes(tt.req)
			got := want{d.Action, d.Rule, d.Record, d.RecordRule, d.Recorders, d.EnforceRecorder, d.EnableEvents}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nwhy:\n%s", diff, strings.Join(d.Why, "\n"))
			}
		})
	}
}

func TestKubernetesRuleErrors(t *testing.T) {
	_, err := Parse("p.hujson", []byte(`{
	"recorders": {"tag:rec": ["100.64.0.9:80"]},
	"kubernetes": [
		{"action": "deny", "src": ["k8s-group:"], "namespaces": ["*"], "pods": ["Web", "*"]},
		{"action": "reject", "src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"], "enableEvents": true},
		{"src": ["*"], "namespaces": ["*"], "enforceRecorder": true, "pods": []},
	],
	"ssh": [{"action": "accept", "src": ["k8s-group:x"], "dst": ["*"], "users": ["*"]}],
}`))
	want := []string{
		`p.hujson:4:14: kubernetes rule #1: unknown action "deny"; want one of "accept", "reject"`,
		`p.hujson:4:30: kubernetes rule #1: src: bad Kubernetes group "k8s-group:"`,
		`p.hujson:4:75: kubernetes rule #1: bad pod "Web": want a pod name (lowercase letters, digits, '-', '.'), in which '*' matches anything`,
		`p.hujson:5:71: kubernetes rule #2: a reject rule records nothing: remove "recorder"`,
		`p.hujson:5:100: kubernetes rule #2: a reject rule records nothing: remove "enableEvents"`,
		`p.hujson:6:58: kubernetes rule #3: enforceRecorder needs a "recorder"`,
		`p.hujson:6:72: kubernetes rule #3: pods is empty (use ["*"] for all)`,
		`p.hujson:8:39: ssh rule #1: src: "k8s-group:x": Kubernetes groups can only be a source in kubernetes rules`,
	}
	if diff := cmp.Diff(want, errorLines(err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"web-*", "web-1", true}, {"web-*", "web-", true}, {"web-*", "db-1", false},
		{"*", "x", true}, {"*-0", "db-0", true}, {"*-0", "db-1", false},
		{"a*b*c", "abc", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "acb", false},
		{"a*a", "a", false}, {"db-0", "db-0", true}, {"db-0", "db-00", false},
	} {
		if got := globMatch(tt.pat, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}
