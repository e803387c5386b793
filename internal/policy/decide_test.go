package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("test.hujson", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return p
}

var (
	rec1 = netip.MustParseAddrPort("100.64.0.1:80")
	rec2 = netip.MustParseAddrPort("100.64.0.2:80")
	rec3 = netip.MustParseAddrPort("[fd7a::3]:443")
)

const sshPolicy = `{
	"groups": {
		"group:sre": ["alice", "group:oncall"],
		"group:oncall": ["olga@example.com"],
		"group:dev": ["dave"],
	},
	"recorders": {
		"tag:rec": ["100.64.0.1:80", "100.64.0.2:80"],
		"tag:rec6": ["[fd7a::3]:443", "100.64.0.1:80"],
	},
	"ssh": [
		// rule #1 (line 13): guests are refused everywhere
		{"action": "reject", "src": ["192.168.77.0/24"], "dst": ["*"]},
		// rule #2 (line 15): sre may be root on prod, recorded, fail closed
		{"action": "accept", "src": ["group:sre"], "dst": ["tag:prod"], "users": ["root"], "recorder": ["tag:rec"], "enforceRecorder": true},
		// rule #3 (line 17): anyone may log in as themselves, no recorder
		{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*"]},
		// rule #4 (line 19): nobody may be root on db1
		{"action": "reject", "src": ["*"], "dst": ["DB1"], "users": ["root"]},
		// rule #5 (line 21): the office may use non-root accounts on web1, recorded with input
		{"action": "accept", "src": ["10.0.0.0/8", "fd00::/8"], "dst": ["web1"], "users": ["autogroup:nonroot"], "recorder": ["tag:rec6", "tag:rec"], "inputRecording": true},
		// rule #6 (line 23): everything on prod is recorded, fail open
		{"action": "accept", "src": ["*"], "dst": ["tag:prod"], "users": ["autogroup:nonroot"], "recorder": ["tag:rec6"]},
	],
}`

func TestSSH(t *testing.T) {
	p := mustParse(t, sshPolicy)
	addr := netip.MustParseAddr
	type want struct {
		Action          string
		Rule, Line      int
		Record          bool
		RecordRule      int
		Recorders       []netip.AddrPort
		EnforceRecorder bool
		RecordInput     bool
	}
	deny := want{Action: Reject, Rule: -1, RecordRule: -1}
	tests := []struct {
		name string
		req  SSHRequest
		want want
		why  string // a substring of the last-but-one or last reason
	}{
		{
			name: "no rule matches: default deny",
			req:  SSHRequest{User: "mallory", Src: addr("203.0.113.9"), LocalUser: "root", Host: "web2"},
			want: deny,
			why:  `reject: no rule admits mallory from 203.0.113.9 as local user "root" on host "web2" (default deny)`,
		},
		{
			name: "first matching rule rejects even if a later one accepts",
			req:  SSHRequest{User: "alice", Src: addr("192.168.77.5"), LocalUser: "alice", Host: "web1"},
			want: want{Action: Reject, Rule: 0, Line: 13, RecordRule: -1},
			why:  "reject: by ssh rule #1 (line 13)",
		},
		{
			name: "accept before a matching reject rule wins (first match decides)",
			req:  SSHRequest{User: "root", Src: addr("203.0.113.9"), LocalUser: "root", Host: "db1"},
			want: want{Action: Accept, Rule: 2, Line: 17, RecordRule: -1},
			why:  "not recorded: no rule that admits the session names a recorder",
		},
		{
			name: "reject matches when no earlier rule does; host names ignore case",
			req:  SSHRequest{User: "alice", Src: addr("203.0.113.9"), LocalUser: "root", Host: "db1"},
			want: want{Action: Reject, Rule: 3, Line: 19, RecordRule: -1},
		},
		{
			name: "group member by tag, fail closed",
			req:  SSHRequest{User: "alice", Src: addr("203.0.113.9"), LocalUser: "root", Host: "p1", HostTags: []string{"tag:prod"}},
			want: want{Action: Accept, Rule: 1, Line: 15, Record: true, RecordRule: 1, Recorders: []netip.AddrPort{rec1, rec2}, EnforceRecorder: true},
			why:  "enforceRecorder: the session is refused if no recorder is reachable",
		},
		{
			name: "nested group member",
			req:  SSHRequest{User: "olga@example.com", LocalUser: "root", HostTags: []string{"tag:prod"}},
			want: want{Action: Accept, Rule: 1, Line: 15, Record: true, RecordRule: 1, Recorders: []netip.AddrPort{rec1, rec2}, EnforceRecorder: true},
			why:  `src "group:sre" (olga@example.com is a member)`,
		},
		{
			name: "not a member: wrong tag, falls through to same-name rule",
			req:  SSHRequest{User: "dave", LocalUser: "dave", HostTags: []string{"tag:staging"}},
			want: want{Action: Accept, Rule: 2, Line: 17, RecordRule: -1},
		},
		{
			name: "recorder comes from a later admitting rule when the deciding rule has none",
			req:  SSHRequest{User: "dave", LocalUser: "dave", Host: "p2", HostTags: []string{"tag:prod"}},
			want: want{Action: Accept, Rule: 2, Line: 17, Record: true, RecordRule: 5, Recorders: []netip.AddrPort{rec3, rec1}},
			why:  "fail open",
		},
		{
			name: "first recording rule wins over a later one; tags resolved in order without duplicates",
			req:  SSHRequest{User: "dave", Src: addr("10.1.2.3"), LocalUser: "dave", Host: "web1", HostTags: []string{"tag:prod"}},
			want: want{Action: Accept, Rule: 2, Line: 17, Record: true, RecordRule: 4, Recorders: []netip.AddrPort{rec3, rec1, rec2}, RecordInput: true},
			why:  "input recorded (inputRecording)",
		},
		{
			name: "IPv4-mapped address matches an IPv4 CIDR",
			req:  SSHRequest{User: "x", Src: addr("::ffff:10.9.9.9"), LocalUser: "deploy", Host: "web1"},
			want: want{Action: Accept, Rule: 4, Line: 21, Record: true, RecordRule: 4, Recorders: []netip.AddrPort{rec3, rec1, rec2}, RecordInput: true},
			why:  `src "10.0.0.0/8" (10.9.9.9)`,
		},
		{
			name: "IPv6 CIDR",
			req:  SSHRequest{User: "x", Src: addr("fd00::5"), LocalUser: "deploy", Host: "web1"},
			want: want{Action: Accept, Rule: 4, Line: 21, Record: true, RecordRule: 4, Recorders: []netip.AddrPort{rec3, rec1, rec2}, RecordInput: true},
		},
		{
			name: "autogroup:nonroot does not admit root",
			req:  SSHRequest{User: "x", Src: addr("10.9.9.9"), LocalUser: "root", Host: "web1"},
			want: deny,
		},
		{
			name: "users * admits the local part of an email identity",
			req:  SSHRequest{User: "olga@example.com", LocalUser: "olga", Host: "h"},
			want: want{Action: Accept, Rule: 2, Line: 17, RecordRule: -1},
			why:  `users "*" (same name as olga@example.com)`,
		},
		{
			name: "users * does not admit another name",
			req:  SSHRequest{User: "olga@example.com", LocalUser: "root", Host: "h"},
			want: deny,
		},
		{
			name: "no address: CIDR rules do not match",
			req:  SSHRequest{User: "x", LocalUser: "deploy", Host: "web1"},
			want: deny,
		},
		{
			name: "empty local user is refused",
			req:  SSHRequest{User: "alice", Src: addr("10.1.1.1")},
			want: deny,
			why:  "reject: no local user requested",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.SSH(tt.req)
			got := want{d.Action, d.Rule, d.Line, d.Record, d.RecordRule, d.Recorders, d.EnforceRecorder, d.RecordInput}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nwhy:\n%s", diff, strings.Join(d.Why, "\n"))
			}
			if d.Record && d.RecordLine != p.SSHRules[d.RecordRule].Line {
				t.Errorf("RecordLine = %d, want %d", d.RecordLine, p.SSHRules[d.RecordRule].Line)
			}
			if tt.why != "" && !strings.Contains(strings.Join(d.Why, "\n"), tt.why) {
				t.Errorf("why does not mention %q:\n%s", tt.why, strings.Join(d.Why, "\n"))
			}
		})
	}
}

func TestSSHWhy(t *testing.T) {
	p := mustParse(t, sshPolicy)
	d := p.SSH(SSHRequest{User: "dave", Src: netip.MustParseAddr("10.1.2.3"), LocalUser: "dave", Host: "web1", HostTags: []string{"tag:prod"}})
	want := []string{
		`ssh rule #1 (line 13): no match: src ["192.168.77.0/24"] does not include dave from 10.1.2.3`,
		`ssh rule #2 (line 15): no match: src ["group:sre"] does not include dave from 10.1.2.3`,
		`ssh rule #3 (line 17): accept: src "*", dst "*", users "*" (same name as dave)`,
		`ssh rule #4 (line 19): no match: dst ["DB1"] does not include host "web1" (tags tag:prod)`,
		`ssh rule #5 (line 21): also admits the session and names a recorder: src "10.0.0.0/8" (10.1.2.3), dst "web1", users "autogroup:nonroot" (dave)`,
		`accept: by ssh rule #3 (line 17), as local user "dave"`,
		`recorded: ssh rule #5 (line 21) names recorder ["tag:rec6", "tag:rec"] -> [fd7a::3]:443, 100.64.0.1:80, 100.64.0.2:80; fail open: the session runs unrecorded if no recorder is reachable`,
		`input recorded (inputRecording), except while the terminal's echo is off`,
	}
	if diff := cmp.Diff(want, d.Why); diff != "" {
		t.Errorf("why (-want +got):\n%s", diff)
	}
}

func TestRecordingOff(t *testing.T) {
	const src = `{
	"recording": %q,
	"recorders": {"tag:rec": ["100.64.0.1:80"]},
	"ssh": [{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*"], "recorder": ["tag:rec"], "enforceRecorder": true, "inputRecording": true}],
	"kubernetes": [{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"], "enforceRecorder": true, "enableEvents": true}],
}`
	p := mustParse(t, fmt.Sprintf(src, "off"))
	d := p.SSH(SSHRequest{User: "a", LocalUser: "a"})
	if d.Action != Accept || d.Record || d.EnforceRecorder || d.RecordInput || d.Recorders != nil || d.RecordRule != -1 {
		t.Errorf("ssh with recording off: %+v", d)
	}
	if !strings.Contains(strings.Join(d.Why, "\n"), `recording is "off"`) {
		t.Errorf("why does not say recording is off: %q", d.Why)
	}
	k := p.Kubernetes(KubeRequest{User: "a", Namespace: "x"})
	if k.Record || k.EnforceRecorder || k.EnableEvents || k.Recorders != nil {
		t.Errorf("kubernetes with recording off: %+v", k)
	}

	// The same policy with recording on records, as a control.
	p = mustParse(t, fmt.Sprintf(src, "on"))
	if d := p.SSH(SSHRequest{User: "a", LocalUser: "a"}); !d.Record || !d.EnforceRecorder || !d.RecordInput {
		t.Errorf("ssh with recording on: %+v", d)
	}
	if k := p.Kubernetes(KubeRequest{User: "a", Namespace: "x"}); !k.Record || !k.EnforceRecorder || !k.EnableEvents {
		t.Errorf("kubernetes with recording on: %+v", k)
	}
}

func TestKubernetes(t *testing.T) {
	p := mustParse(t, `{
	"groups": {"group:sre": ["alice"]},
	"recorders": {"tag:rec": ["100.64.0.1:80"], "tag:rec2": ["100.64.0.2:80"]},
	"kubernetes": [
		{"src": ["group:sre"], "namespaces": ["*"], "recorder": ["tag:rec"], "enforceRecorder": true, "enableEvents": true},
		{"src": ["*"], "namespaces": ["prod", "payments"], "recorder": ["tag:rec2"]},
		{"src": ["10.0.0.0/8"], "namespaces": ["staging"], "recorder": ["tag:rec2", "tag:rec"], "enableEvents": true},
	],
}`)
	type want struct {
		Record                        bool
		Rule, Line                    int
		Recorders                     []netip.AddrPort
		EnforceRecorder, EnableEvents bool
	}
	tests := []struct {
		name string
		req  KubeRequest
		want want
	}{
		{"group, any namespace", KubeRequest{User: "alice", Namespace: "kube-system"}, want{true, 0, 5, []netip.AddrPort{rec1}, true, true}},
		{"group, no namespace (cluster-scoped)", KubeRequest{User: "alice"}, want{true, 0, 5, []netip.AddrPort{rec1}, true, true}},
		{"everyone in listed namespace", KubeRequest{User: "bob", Namespace: "payments"}, want{true, 1, 6, []netip.AddrPort{rec2}, false, false}},
		{"unlisted namespace", KubeRequest{User: "bob", Namespace: "default"}, want{Rule: -1}},
		{"no namespace needs *", KubeRequest{User: "bob"}, want{Rule: -1}},
		{"CIDR", KubeRequest{User: "bob", Src: netip.MustParseAddr("10.3.3.3"), Namespace: "staging"}, want{true, 2, 7, []netip.AddrPort{rec2, rec1}, false, true}},
		{"CIDR, other address", KubeRequest{User: "bob", Src: netip.MustParseAddr("11.3.3.3"), Namespace: "staging"}, want{Rule: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Kubernetes(tt.req)
			got := want{d.Record, d.Rule, d.Line, d.Recorders, d.EnforceRecorder, d.EnableEvents}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nwhy:\n%s", diff, strings.Join(d.Why, "\n"))
			}
			if len(d.Why) == 0 {
				t.Error("no reasons given")
			}
		})
	}
}

func TestCanView(t *testing.T) {
	p := mustParse(t, `{
	"groups": {"group:sre": ["alice"], "group:audit": ["group:sre", "erin"]},
	"viewers": [
		{"src": ["group:audit"], "nodes": ["*"]},
		{"src": ["dave"], "nodes": ["tag:staging", "node-7"], "actions": ["view"]},
		{"src": ["*"], "nodes": ["demo"], "actions": ["view", "download"]},
	],
}`)
	tests := []struct {
		name         string
		viewer, node string
		tags         []string
		action       string
		want         bool
		why          string
	}{
		{"nested group, any node", "alice", "n1", nil, ActionDownload, true, `viewers rule #1 (line 4): allow: src "group:audit" (alice is a member), nodes "*", all actions`},
		{"direct group member", "erin", "n1", nil, ActionView, true, "viewers rule #1"},
		{"by tag, allowed action", "dave", "n2", []string{"tag:staging"}, ActionView, true, `nodes "tag:staging"`},
		{"by tag, action not granted", "dave", "n2", []string{"tag:staging"}, ActionDownload, false, `actions ["view"] do not include "download"`},
		{"by node id", "dave", "node-7", nil, ActionView, true, `nodes "node-7"`},
		{"other node", "dave", "node-8", []string{"tag:prod"}, ActionView, false, `deny: no viewers rule lets dave view recordings of node "node-8" (tags tag:prod) (default deny)`},
		{"everyone on demo", "zed", "demo", nil, ActionDownload, true, "viewers rule #3"},
		{"unknown action", "alice", "n1", nil, "delete", false, `deny: unknown action "delete"`},
		{"no viewer", "", "demo", nil, ActionView, false, "deny: no viewer identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := p.CanView(tt.viewer, tt.node, tt.tags, tt.action)
			if ok != tt.want {
				t.Errorf("CanView = %v, want %v; why:\n%s", ok, tt.want, strings.Join(why, "\n"))
			}
			if !strings.Contains(strings.Join(why, "\n"), tt.why) {
				t.Errorf("why does not mention %q:\n%s", tt.why, strings.Join(why, "\n"))
			}
		})
	}
}

func TestCanViewEmptyPolicy(t *testing.T) {
	p := mustParse(t, `{}`)
	if ok, why := p.CanView("alice", "n1", nil, ActionView); ok {
		t.Errorf("empty policy lets alice view: %q", why)
	}
}

const viewerPolicy = `{
	"groups": {"group:sre": ["alice"], "group:audit": ["group:sre", "erin"]},
	"admins": ["group:sre", "root@example.com"],
	"viewers": [
		{"src": ["group:audit"], "nodes": ["*"], "actions": ["view"]},
		{"src": ["dave"], "nodes": ["tag:staging", "node-7", "tag:dev", "node-7"], "actions": ["view"]},
		{"src": ["dave", "frank"], "nodes": ["build1"]},
		{"src": ["*"], "nodes": ["demo"], "actions": ["download"]},
	],
}`

func TestIsAdmin(t *testing.T) {
	p := mustParse(t, viewerPolicy)
	tests := []struct {
		viewer string
		want   bool
		why    string
	}{
		{"alice", true, `admin: admins "group:sre" (alice is a member)`},
		{"root@example.com", true, `admin: admins "root@example.com"`},
		{"erin", false, `not an admin: admins ["group:sre", "root@example.com"] does not include erin`},
		{"", false, "not an admin: no viewer identity"},
	}
	for _, tt := range tests {
		got, why := p.IsAdmin(tt.viewer)
		if got != tt.want || why != tt.why {
			t.Errorf("IsAdmin(%q) = %v, %q; want %v, %q", tt.viewer, got, why, tt.want, tt.why)
		}
	}
	var nilPolicy *Policy
	if ok, why := nilPolicy.IsAdmin("alice"); ok || why != "not an admin: the policy names no admins" {
		t.Errorf("nil policy: IsAdmin = %v, %q", ok, why)
	}
}

func TestViewerScope(t *testing.T) {
	p := mustParse(t, viewerPolicy)
	tests := []struct {
		viewer, action string
		want           ViewerScope
		lastWhy        string
	}{
		{"erin", ActionView, ViewerScope{All: true}, "erin may view the recordings of every node"},
		{"erin", ActionDownload, ViewerScope{Nodes: []string{"demo"}}, `erin may download the recordings of nodes ["demo"]`},
		{"dave", ActionView, ViewerScope{Nodes: []string{"build1", "node-7"}, Tags: []string{"tag:dev", "tag:staging"}}, `dave may view the recordings of nodes ["build1", "node-7"] and of nodes tagged ["tag:dev", "tag:staging"]`},
		{"dave", ActionDownload, ViewerScope{Nodes: []string{"build1", "demo"}}, ""},
		{"zed", ActionView, ViewerScope{}, "zed may view no recordings (default deny)"},
		{"zed", ActionDownload, ViewerScope{Nodes: []string{"demo"}}, ""},
		{"zed", "delete", ViewerScope{}, `nothing: unknown action "delete"`},
		{"", ActionView, ViewerScope{}, "nothing: no viewer identity"},
	}
	for _, tt := range tests {
		t.Run(tt.viewer+"/"+tt.action, func(t *testing.T) {
			got := p.ViewerScope(tt.viewer, tt.action)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(ViewerScope{}, "Why", "Viewer", "Action"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("scope (-want +got):\n%s", diff)
			}
			if tt.lastWhy != "" && got.Why[len(got.Why)-1] != tt.lastWhy {
				t.Errorf("last reason %q, want %q", got.Why[len(got.Why)-1], tt.lastWhy)
			}
		})
	}
	// Allows agrees with CanView for every viewer, node and action.
	for _, v := range []string{"alice", "erin", "dave", "frank", "zed"} {
		for _, action := range []string{ActionView, ActionDownload} {
			s := p.ViewerScope(v, action)
			for _, n := range []string{"demo", "node-7", "build1", "web1", ""} {
				for _, tags := range [][]string{nil, {"tag:staging"}, {"tag:prod", "tag:dev"}} {
					can, why := p.CanView(v, n, tags, action)
					if got := s.Allows(n, tags); got != can {
						t.Errorf("%s %s %q %q: Allows = %v, CanView = %v (%q)", v, action, n, tags, got, can, why)
					}
				}
			}
		}
	}
	var nilPolicy *Policy
	if s := nilPolicy.ViewerScope("alice", ActionView); !s.Empty() || s.Allows("demo", nil) {
		t.Errorf("nil policy grants %+v", s)
	}
}
