package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const desktopPolicy = `{
	"groups": {"group:ops": ["alice"]},
	"recorders": {"tag:rec": ["127.0.0.1:9001", "127.0.0.1:9002"], "tag:other": ["127.0.0.1:9003"]},
	"desktop": [
		{"action": "reject", "src": ["mallory"], "dst": ["*"]},
		{"action": "accept", "src": ["group:ops"], "dst": ["tag:lab"]},
		{"action": "accept", "src": ["*"], "dst": ["win1"], "recorder": ["tag:rec"], "enforceRecorder": true, "keyRecording": true},
		{"action": "accept", "src": ["alice"], "dst": ["*"], "recorder": ["tag:other"], "clipboardRecording": true},
	],
}`

func TestDesktop(t *testing.T) {
	p, err := Parse("p.hujson", []byte(desktopPolicy))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Action                           string
		Record, Enforce, Keys, Clipboard bool
		Recorders                        []netip.AddrPort
	}
	rec := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9001"), netip.MustParseAddrPort("127.0.0.1:9002")}
	other := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9003")}
	for _, tc := range []struct {
		name string
		req  DesktopRequest
		want got
	}{
		{"rejected user", DesktopRequest{User: "mallory", Host: "win1"}, got{Action: Reject}},
		{"default deny", DesktopRequest{User: "bob", Host: "lab1"}, got{Action: Reject}},
		{"recording rule", DesktopRequest{User: "bob", Host: "win1"}, got{Action: Accept, Record: true, Enforce: true, Keys: true, Recorders: rec}},
		// The first matching rule (tag:lab) records nothing; a later
		// matching rule that names a recorder is enough.
		{"later rule records", DesktopRequest{User: "alice", Host: "x", HostTags: []string{"tag:lab"}}, got{Action: Accept, Record: true, Clipboard: true, Recorders: other}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Desktop(tc.req)
			g := got{d.Action, d.Record, d.EnforceRecorder, d.RecordKeys, d.RecordClipboard, d.Recorders}
			if diff := cmp.Diff(tc.want, g, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got)\n%s\nwhy:\n%s", diff, strings.Join(d.Why, "\n"))
			}
		})
	}
	off, err := Parse("p.hujson", []byte(strings.Replace(desktopPolicy, `"groups"`, `"recording": "off", "groups"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if d := off.Desktop(DesktopRequest{User: "bob", Host: "win1"}); d.Action != Accept || d.Record || d.EnforceRecorder {
		t.Errorf("recording off: %+v", d)
	}
}

func TestDesktopParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{"desktop": [{"action": "accept", "src": ["*"], "dst": ["*"], "keyRecording": true}]}`, "keyRecording needs a \"recorder\""},
		{`{"desktop": [{"action": "reject", "src": ["*"], "dst": ["*"], "enforceRecorder": true}]}`, "a reject rule records nothing"},
		{`{"desktop": [{"action": "accept", "src": ["*"], "dst": ["*"], "recorder": ["tag:nope"]}]}`, "unknown recorder tag"},
		{`{"desktop": [{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["root"]}]}`, "unknown field \"users\""},
		{`{"desktop": [{"action": "allow", "src": ["*"], "dst": ["*"]}]}`, "unknown action"},
	} {
		_, err := Parse("p", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.src, err, tc.want)
		}
	}
}
