package policy

import (
	"encoding/json"
	"net/netip"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse checks that Parse never panics, that every error carries a
// position inside the input, and that a policy that parses survives a
// round trip through its JSON encoding unchanged and can be evaluated.
func FuzzParse(f *testing.F) {
	if src, err := os.ReadFile("../../examples/policy.hujson"); err == nil {
		f.Add(src)
	}
	for _, s := range []string{
		sshPolicy,
		`{}`,
		`{"groups": {"group:a": ["group:b"], "group:b": ["group:a"]}}`,
		`{"recorders": {"tag:r": ["[::1]:80", "1.2.3.4:5"]}, "kubernetes": [{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:r"], "enableEvents": true}]}`,
		`{"viewers": [{"src": ["*"], "nodes": ["tag:x", "n"], "actions": ["view"]}], "recording": "off"}`,
		`{"groups": {"group:a": ["al"]}, "admins": ["group:a", "bo"], "viewers": [{"src": ["group:a"], "nodes": ["tag:x"]}, {"src": ["bo"], "nodes": ["*"], "actions": ["download"]}]}`,
		"// c\n{\"ssh\": [{\"action\": \"reject\", \"src\": [\"10.0.0.0/8\",], \"dst\": [\"h\"],},],}",
		`{"ssh": [{"action": "accept", "src": ["::ffff:1.2.3.4"], "dst": ["*"], "users": ["*"]}]}`,
		`{"groups": {"group:a": ["x"]}, "retention": [{"statuses": ["malformed"], "keep": "7y"}, {"nodes": ["tag:p", "n"], "users": ["group:a"], "kinds": ["desktop"], "keep": "400d"}, {"keep": "forever"}]}`,
		`[`, `{"ssh": [}`, "{\"a\": \"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("f", src)
		if err != nil {
			for _, e := range errorLines(err) {
				if e == "" {
					t.Fatal("empty error message")
				}
			}
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		q, err := Parse("g", b)
		if err != nil {
			t.Fatalf("re-encoded policy does not parse: %v\n%s", err, b)
		}
		opts := cmp.Options{
			cmpopts.IgnoreFields(Policy{}, "Name"),
			cmpopts.IgnoreFields(SSHRule{}, "Line"),
			cmpopts.IgnoreFields(KubeRule{}, "Line"),
			cmpopts.IgnoreFields(ViewerRule{}, "Line"),
			cmpopts.IgnoreFields(RetentionRule{}, "Line"),
			cmp.AllowUnexported(Policy{}, SSHRule{}, KubeRule{}, ViewerRule{}, RetentionRule{}, principal{}),
			cmpopts.EquateComparable(netip.AddrPort{}, netip.Prefix{}),
			cmpopts.EquateEmpty(),
		}
		if diff := cmp.Diff(p, q, opts); diff != "" {
			t.Fatalf("round trip changed the policy (-first +second):\n%s\n%s", diff, b)
		}
		// Evaluate with names the policy mentions.
		for _, r := range p.SSHRules {
			for _, s := range r.Src {
				for _, u := range append(r.Users, "root", "x") {
					p.SSH(SSHRequest{User: s, Src: netip.MustParseAddr("10.0.0.1"), LocalUser: u, Host: "h", HostTags: r.Dst})
				}
			}
		}
		for _, r := range p.KubeRules {
			for _, s := range r.Src {
				for _, ns := range append(r.Namespaces, "") {
					p.Kubernetes(KubeRequest{User: s, Namespace: ns})
				}
			}
		}
		// ViewerScope must say for every node exactly what CanView says.
		var viewers, nodes []string
		for _, r := range p.ViewerRules {
			viewers = append(viewers, r.Src...)
			nodes = append(nodes, r.Nodes...)
		}
		for _, members := range p.Groups {
			viewers = append(viewers, members...)
		}
		viewers = append(viewers, p.Admins...)
		nodes = append(nodes, "other")
		for _, v := range append(viewers, "nobody") {
			p.IsAdmin(v)
			for _, action := range []string{ActionView, ActionDownload} {
				scope := p.ViewerScope(v, action)
				for _, n := range nodes {
					for _, tags := range [][]string{nil, {n}, nodes} {
						can, why := p.CanView(v, n, tags, action)
						if got := scope.Allows(n, tags); got != can {
							t.Fatalf("viewer %q, %s node %q tags %q: scope %+v allows=%v, CanView=%v %q", v, action, n, tags, scope, got, can, why)
						}
					}
				}
			}
		}
	})
}
