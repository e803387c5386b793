package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// errorLines returns the messages of a Parse error, one per problem.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "syntax error after comments and trailing commas",
			src: `// comment
{
	"groups": {"group:a": ["x",],}, /* block
	comment */
	"ssh": [,
}`,
			want: []string{`p.hujson:5:10: syntax error: invalid character ',' at start of value`},
		},
		{
			name: "not an object",
			src:  `["ssh"]`,
			want: []string{`p.hujson:1:1: policy: want an object, got an array`},
		},
		{
			name: "unknown top-level field with suggestion",
			src: `{
  // typo below
  "recorder": {},
}`,
			want: []string{`p.hujson:3:3: policy: unknown field "recorder" (did you mean "recorders"?)`},
		},
		{
			name: "unknown field without close match lists the known ones",
			src:  `{"acls": []}`,
			want: []string{`p.hujson:1:2: policy: unknown field "acls"; want one of "groups", "recorders", "recording", "ssh", "kubernetes", "viewers", "admins", "desktop", "retention"`},
		},
		{
			name: "typo in a rule field",
			src: `{
	"recorders": {"tag:rec": ["100.64.0.9:80"]},
	"ssh": [
		{
			"action": "accept",
			"src": ["*"],
			"dst": ["*"],
			"users": ["*"],
			"recorder": ["tag:rec"],
			"enforceRecoder": true, // typo: must not be ignored
		},
	],
}`,
			want: []string{`p.hujson:10:4: ssh rule #1: unknown field "enforceRecoder" (did you mean "enforceRecorder"?)`},
		},
		{
			name: "duplicate fields and names",
			src: `{
	"groups": {
		"group:a": ["x"],
		"group:a": ["y"],
	},
	"ssh": [{"action": "accept", "action": "reject", "src": ["*"], "dst": ["*"], "users": ["*"]}],
}`,
			want: []string{
				`p.hujson:4:3: groups: duplicate "group:a" (first at line 3)`,
				`p.hujson:6:31: ssh rule #1: duplicate field "action" (first at line 6)`,
			},
		},
		{
			name: "missing fields and wrong types",
			src: `{
	"ssh": [
		{"action": "accept", "src": "alice", "users": ["*"]},
		{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*"], "enforceRecorder": "yes"},
		"not a rule",
	],
	"recording": false,
}`,
			want: []string{
				`p.hujson:3:3: ssh rule #1: missing field "dst"`,
				`p.hujson:3:31: ssh rule #1: src: want a list of strings, got a string`,
				`p.hujson:4:87: ssh rule #2: enforceRecorder: want true or false, got a string`,
				`p.hujson:5:3: ssh rule #3: want an object, got a string`,
				`p.hujson:7:15: recording: want a string, got a boolean`,
			},
		},
		{
			name: "bad values",
			src: `{
	"recording": "maybe",
	"groups": {"group:a": ["alice", 7]},
	"recorders": {
		"tag:rec": ["rec.example.com:80", "100.64.0.9", "100.64.0.9:0", "100.64.0.9:80"],
		"recorder": ["100.64.0.1:80"],
		"tag:empty": [],
	},
	"ssh": [
		{"action": "check", "src": ["group:b", "10.0.0.5/8", "10.0.0.0/33", "tag:x", "10.0.0.256"], "dst": ["group:a", "bad host"], "users": ["autogroup:nonrot", "group:a"]},
		{"action": "accept", "src": [], "dst": [], "users": [], "recorder": ["tag:nope", "rec"]},
	],
}`,
			want: []string{
				`p.hujson:2:15: recording: want "on" or "off", got "maybe"`,
				`p.hujson:3:34: group "group:a": want a string, got a number`,
				`p.hujson:5:15: recorders: "tag:rec": bad address "rec.example.com:80": want IP:port such as "100.64.0.9:80" or "[fd7a:115c::9]:80" (host names are not resolved)`,
				`p.hujson:5:37: recorders: "tag:rec": bad address "100.64.0.9": want IP:port such as "100.64.0.9:80" or "[fd7a:115c::9]:80" (host names are not resolved)`,
				`p.hujson:5:51: recorders: "tag:rec": address "100.64.0.9:0" has port 0`,
				`p.hujson:6:3: recorders: bad tag "recorder": want "tag:" and a name of letters, digits and '-', starting with a letter`,
				`p.hujson:7:16: recorders: "tag:empty" has no addresses`,
				`p.hujson:10:14: ssh rule #1: unknown action "check"; want one of "accept", "reject"`,
				`p.hujson:10:31: ssh rule #1: src: unknown group "group:b" (did you mean "group:a"?)`,
				`p.hujson:10:42: ssh rule #1: src: CIDR "10.0.0.5/8" has bits set after the prefix length (did you mean "10.0.0.0/8"?)`,
				`p.hujson:10:56: ssh rule #1: src: bad CIDR "10.0.0.0/33"`,
				`p.hujson:10:71: ssh rule #1: src: "tag:x": tags cannot be a source; src takes users, groups, addresses and "*"`,
				`p.hujson:10:80: ssh rule #1: src: bad IP address "10.0.0.256"`,
				`p.hujson:10:103: ssh rule #1: dst: "group:a": dst takes host names, tags and "*"`,
				`p.hujson:10:114: ssh rule #1: dst: bad host name "bad host"`,
				`p.hujson:10:137: ssh rule #1: users: unknown autogroup "autogroup:nonrot" (did you mean "autogroup:nonroot"?)`,
				`p.hujson:10:157: ssh rule #1: users: "group:a": users takes local user names, "autogroup:nonroot" and "*"`,
				`p.hujson:11:31: ssh rule #2: src is empty (use ["*"] for all)`,
				`p.hujson:11:42: ssh rule #2: dst is empty (use ["*"] for all)`,
				`p.hujson:11:55: ssh rule #2: users is empty (use ["*"] for all)`,
				`p.hujson:11:72: ssh rule #2: recorder: unknown recorder tag "tag:nope" (define it in "recorders")`,
				`p.hujson:11:84: ssh rule #2: recorder: "rec": want a recorder tag such as "tag:recorder"`,
			},
		},
		{
			name: "rules that cannot mean what they say",
			src: `{
	"recorders": {"tag:rec": ["100.64.0.9:80"]},
	"ssh": [
		{"action": "accept", "src": ["*"], "dst": ["*"]},
		{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*"], "enforceRecorder": true, "inputRecording": true},
		{"action": "reject", "src": ["*"], "dst": ["*"], "recorder": ["tag:rec"], "enforceRecorder": false},
		{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*"], "recorder": []},
	],
}`,
			want: []string{
				`p.hujson:4:3: ssh rule #1: an accept rule needs "users": the local users it admits`,
				`p.hujson:5:87: ssh rule #2: enforceRecorder needs a "recorder"`,
				`p.hujson:5:111: ssh rule #2: inputRecording needs a "recorder"`,
				`p.hujson:6:64: ssh rule #3: a reject rule records nothing: remove "recorder"`,
				`p.hujson:6:96: ssh rule #3: a reject rule records nothing: remove "enforceRecorder"`,
				`p.hujson:7:80: ssh rule #4: recorder is empty`,
			},
		},
		{
			name: "groups that contain themselves",
			src: `{
	"groups": {
		"group:a": ["group:b"],
		"group:b": ["group:c", "alice"],
		"group:c": ["group:a"],
		"group:self": ["group:self"],
		"group:bad": ["*", "10.0.0.0/8", "tag:x", "group:none", "a b"],
		"oops": [],
	},
}`,
			want: []string{
				`p.hujson:5:15: group "group:c": "group:a" contains itself (group:a -> group:b -> group:c -> group:a)`,
				`p.hujson:6:18: group "group:self": "group:self" contains itself (group:self -> group:self)`,
				`p.hujson:7:17: group "group:bad": "*": a group holds users and groups`,
				`p.hujson:7:22: group "group:bad": "10.0.0.0/8": a group holds users and groups`,
				`p.hujson:7:36: group "group:bad": "tag:x": a group holds users and groups`,
				`p.hujson:7:45: group "group:bad": unknown group "group:none" (define it in "groups")`,
				`p.hujson:7:59: group "group:bad": bad user name "a b"`,
				`p.hujson:8:3: groups: bad group name "oops": want "group:" and a name of letters, digits, '.', '_' or '-'`,
			},
		},
		{
			name: "kubernetes and viewers rules",
			src: `{
	"recorders": {"tag:rec": ["100.64.0.9:80"]},
	"kubernetes": [
		{"src": ["*"], "namespaces": ["Default", "*"]},
		{"src": ["*"], "namespaces": [], "recorder": ["tag:rec"], "enableEvents": 1},
	],
	"viewers": [
		{"src": ["10.0.0.0/8", "alice"], "nodes": ["*", "tag:", "node/1"], "actions": ["view", "delete"]},
		{"src": ["*"], "nodes": ["n1"], "actions": []},
	],
}`,
			want: []string{
				`p.hujson:4:33: kubernetes rule #1: bad namespace "Default": want a Kubernetes namespace name (lowercase letters, digits, '-') or "*"`,
				`p.hujson:5:32: kubernetes rule #2: namespaces is empty (use ["*"] for all)`,
				`p.hujson:5:77: kubernetes rule #2: enableEvents: want true or false, got a number`,
				`p.hujson:8:12: viewers rule #1: src: "10.0.0.0/8": addresses are not identities here; src takes users, groups and "*"`,
				`p.hujson:8:51: viewers rule #1: bad tag "tag:"`,
				`p.hujson:8:59: viewers rule #1: bad node "node/1": want a node id (letters, digits, '.', '_', '-'), a tag, or "*"`,
				`p.hujson:8:90: viewers rule #1: unknown action "delete"; want one of "view", "download"`,
				`p.hujson:9:46: viewers rule #2: actions is empty`,
			},
		},
		{
			name: "admins",
			src: `{
	"groups": {"group:sre": ["alice"]},
	"admins": ["group:sre", "*", "group:nope", "10.0.0.1", "tag:x", ""],
}`,
			want: []string{
				`p.hujson:3:26: admins: "*" would make every viewer an admin; list users and groups`,
				`p.hujson:3:31: admins: src: unknown group "group:nope" (define it in "groups")`,
				`p.hujson:3:45: admins: src: "10.0.0.1": addresses are not identities here; src takes users, groups and "*"`,
				`p.hujson:3:57: admins: src: "tag:x": tags cannot be a source; src takes users, groups, addresses and "*"`,
				`p.hujson:3:66: admins: src: empty string`,
			},
		},
		{
			name: "strings that are not valid UTF-8",
			src:  "{\"groups\": {\"group:a\": [\"\xff\", \"\\ud800\"]}}",
			want: []string{
				`p.hujson:1:25: group "group:a": string is not valid UTF-8`,
				`p.hujson:1:30: group "group:a": bad user name "�"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.hujson", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors; got %+v", p)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with its error")
			}
			if diff := cmp.Diff(tt.want, errorLines(err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Errorf("errors.As(*Error) = false for %v", err)
			}
		})
	}
}

// TestErrorPositions checks that each error points at the offending text:
// the line and column must land on the quoted value the message names.
func TestErrorPositions(t *testing.T) {
	src := `/* header
   comment */
{
	"groups": {
		// eng
		"group:eng": ["alice", "bob",], // trailing comma
	},
	"ssh": [
		{
			"action": "accept",
			"src":    ["group:eng", "group:ops"],
			"dst":    ["*"],
			"users":  ["*"],
		},
	],
}
`
	_, err := Parse("f", []byte(src))
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *Error, got %v", err)
	}
	lines := strings.Split(src, "\n")
	got := lines[pe.Line-1][pe.Col-1:]
	if !strings.HasPrefix(got, `"group:ops"`) {
		t.Errorf("error %v points at %q, want the start of \"group:ops\"", pe, got)
	}
}

func TestParseValid(t *testing.T) {
	src := `{
	// groups may nest
	"groups": {
		"group:eng": ["alice", "group:sre",],
		"group:sre": ["bob@example.com"],
		"group:empty": [],
	},
	"recorders": {"tag:rec": ["100.64.0.9:80", "[fd7a:115c::9]:443"]},
	"recording": "on",
	"ssh": [
		{"action": "reject", "src": ["10.9.0.0/16", "fd00::1"], "dst": ["*"]},
		{
			"action": "accept", "src": ["group:eng"], "dst": ["web1", "tag:prod"],
			"users": ["*", "autogroup:nonroot", "root"],
			"recorder": ["tag:rec"], "enforceRecorder": true, "inputRecording": true,
		},
	],
	"kubernetes": [{"src": ["*"], "namespaces": ["default"], "recorder": ["tag:rec"], "enableEvents": true}],
	"viewers": [{"src": ["group:sre"], "nodes": ["*"]}, {"src": ["alice"], "nodes": ["n1", "tag:prod"], "actions": ["view"]}],
}`
	p, err := Parse("ok.hujson", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Name: "ok.hujson",
		Groups: map[string][]string{
			"group:eng":   {"alice", "group:sre"},
			"group:sre":   {"bob@example.com"},
			"group:empty": {},
		},
		Recorders: map[string][]netip.AddrPort{
			"tag:rec": {netip.MustParseAddrPort("100.64.0.9:80"), netip.MustParseAddrPort("[fd7a:115c::9]:443")},
		},
		Recording: "on",
		SSHRules: []SSHRule{
			{Line: 11, Action: Reject, Src: []string{"10.9.0.0/16", "fd00::1"}, Dst: []string{"*"}},
			{
				Line: 12, Action: Accept, Src: []string{"group:eng"}, Dst: []string{"web1", "tag:prod"},
				Users:    []string{"*", "autogroup:nonroot", "root"},
				Recorder: []string{"tag:rec"}, EnforceRecorder: true, InputRecording: true,
			},
		},
		KubeRules: []KubeRule{
			{Line: 18, Src: []string{"*"}, Namespaces: []string{"default"}, Recorder: []string{"tag:rec"}, EnableEvents: true},
		},
		ViewerRules: []ViewerRule{
			{Line: 19, Src: []string{"group:sre"}, Nodes: []string{"*"}},
			{Line: 19, Src: []string{"alice"}, Nodes: []string{"n1", "tag:prod"}, Actions: []string{"view"}},
		},
	}
	if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(Policy{}, SSHRule{}, KubeRule{}, ViewerRule{}), cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{"alice": true, "bob@example.com": true}, p.members["group:eng"]); diff != "" {
		t.Errorf("group:eng members (-want +got):\n%s", diff)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{`{}`, "// nothing yet\n{\n}\n"} {
		p, err := Parse("e", []byte(src))
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		d := p.SSH(SSHRequest{User: "alice", LocalUser: "alice"})
		if d.Action != Reject {
			t.Errorf("empty policy: %+v, want default reject", d)
		}
	}
}
