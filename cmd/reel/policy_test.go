package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runInProcess runs reel with args in process and returns its exit code
// and output.
func runInProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = dispatch(context.Background(), env, args)
	return code, out.String(), errb.String()
}

const cliPolicy = `// test policy
{
	"groups": {"group:sre": ["alice"]},
	"recorders": {"tag:rec": ["100.64.0.9:80"]},
	"ssh": [
		{"action": "reject", "src": ["192.168.77.0/24"], "dst": ["*"]},
		{"action": "accept", "src": ["group:sre"], "dst": ["tag:prod"], "users": ["root"], "recorder": ["tag:rec"], "enforceRecorder": true},
		{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*"]},
	],
	"kubernetes": [{"src": ["group:sre"], "namespaces": ["prod"], "recorder": ["tag:rec"], "enableEvents": true}],
	"viewers": [{"src": ["group:sre"], "nodes": ["*"], "actions": ["view"]}],
	"admins": ["boss"],
}
`

func writePolicy(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyCLI(t *testing.T) {
	good := writePolicy(t, "good.hujson", cliPolicy)
	bad := writePolicy(t, "bad.hujson", `{
	"ssh": [
		// typo in a field name, and an undefined group
		{"action": "accept", "src": ["group:ops"], "dst": ["*"], "users": ["*"], "enforceRecoder": true},
	],
}`)
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string // exact, unless stderrHas is set
		stderrHas  string
		stdoutHas  string
		skipStdout bool
	}{
		{
			name:   "check good file",
			args:   []string{"policy", "check", good},
			stdout: good + ": ok (3 ssh rules, 1 kubernetes rule, 1 viewers rule, 1 group, 1 recorder tag)\n",
		},
		{
			name: "check bad file: every error with its position",
			args: []string{"policy", "check", bad},
			code: 1,
			stderr: bad + `:4:32: ssh rule #1: src: unknown group "group:ops" (define it in "groups")` + "\n" +
				bad + `:4:76: ssh rule #1: unknown field "enforceRecoder" (did you mean "enforceRecorder"?)` + "\n",
		},
		{
			name:       "check several files: one bad fails the command",
			args:       []string{"policy", "check", good, bad},
			code:       1,
			stdoutHas:  good + ": ok",
			stderrHas:  bad + ":4:32:",
			skipStdout: true,
		},
		{
			name:      "check missing file",
			args:      []string{"policy", "check", filepath.Join(t.TempDir(), "nope.hujson")},
			code:      1,
			stderrHas: "no such file or directory",
		},
		{
			name:      "check without a file",
			args:      []string{"policy", "check"},
			code:      2,
			stderrHas: "reel policy: check: missing FILE",
		},
		{
			name: "explain ssh accept, flags after the file",
			args: []string{"policy", "explain", good, "--user", "alice", "--from", "10.0.0.5", "--local-user", "root", "--host", "db1", "--tag", "tag:prod"},
			stdout: `decision: accept
local user: root
recorders: 100.64.0.9:80 (enforceRecorder: refused if none is reachable)
input recording: off
why:
  ssh rule #1 (line 6): no match: src ["192.168.77.0/24"] does not include alice from 10.0.0.5
  ssh rule #2 (line 7): accept: src "group:sre" (alice is a member), dst "tag:prod", users "root"
  accept: by ssh rule #2 (line 7), as local user "root"
  recorded: ssh rule #2 (line 7) names recorder ["tag:rec"] -> 100.64.0.9:80; enforceRecorder: the session is refused if no recorder is reachable
  input not recorded
`,
		},
		{
			name: "explain ssh reject, flags before the file, local user defaults to the user's name",
			args: []string{"policy", "explain", "--user", "bob@example.com", "--from", "192.168.77.2", good},
			stdout: `decision: reject
why:
  ssh rule #1 (line 6): reject: src "192.168.77.0/24" (192.168.77.2), dst "*", users (any)
  reject: by ssh rule #1 (line 6)
`,
		},
		{
			name:      "explain ssh accepted without recording",
			args:      []string{"policy", "explain", good, "--user", "bob@example.com"},
			stdoutHas: "decision: accept\nlocal user: bob\nrecorders: none (not recorded)\n",
		},
		{
			name: "explain kubernetes",
			args: []string{"policy", "explain", good, "--kube", "--user", "alice", "--namespace", "prod"},
			stdout: `decision: record
recorders: 100.64.0.9:80 (fail open: runs unrecorded if none is reachable)
events: on
why:
  kubernetes rule #1 (line 10): accept: src "group:sre" (alice is a member), namespace "prod"
  accept: by kubernetes rule #1 (line 10)
  recorded: kubernetes rule #1 (line 10) names recorder ["tag:rec"] -> 100.64.0.9:80; fail open: the session runs unrecorded if no recorder is reachable
  events: every API request is sent to the recorder (enableEvents)
`,
		},
		{
			name:      "explain kubernetes, not recorded",
			args:      []string{"policy", "explain", good, "--kube", "--user", "alice", "--namespace", "dev"},
			stdoutHas: "decision: do not record\n",
		},
		{
			name: "explain view",
			args: []string{"policy", "explain", good, "--view", "web1", "--user", "alice", "--action", "download"},
			stdout: `decision: deny
why:
  viewers rule #1 (line 11): no match: actions ["view"] do not include "download"
  deny: no viewers rule lets alice download recordings of node "web1" (default deny)
`,
		},
		{
			name:      "explain view allowed",
			args:      []string{"policy", "explain", good, "--view", "web1", "--user", "alice"},
			stdoutHas: "decision: allow\n",
		},
		{
			name: "explain what a viewer sees",
			args: []string{"policy", "explain", good, "--view", "alice"},
			stdout: `viewer: alice
admin: no
view: every recording
download: nothing
why:
  not an admin: admins ["boss"] does not include alice
  view: viewers rule #1 (line 11): grants nodes ["*"]: src "group:sre" (alice is a member)
  view: alice may view the recordings of every node
  download: viewers rule #1 (line 11): no match: actions ["view"] do not include "download"
  download: alice may download no recordings (default deny)
`,
		},
		{
			name: "explain what an admin sees",
			args: []string{"policy", "explain", good, "--view", "boss"},
			stdout: `viewer: boss
admin: yes
view: every recording
download: every recording
why:
  admin: admins "boss"
`,
		},
		{
			name:      "explain a viewer and a node",
			args:      []string{"policy", "explain", good, "--view", "alice", "--node", "web1", "--action", "download"},
			stdoutHas: "decision: deny\n",
		},
		{
			name:      "explain an admin and a node",
			args:      []string{"policy", "explain", good, "--view", "boss", "--node", "web1", "--action", "download"},
			stdoutHas: "decision: allow\nwhy:\n  admin: admins \"boss\"\n",
		},
		{
			name:      "explain view, both forms",
			args:      []string{"policy", "explain", good, "--view", "alice", "--node", "web1", "--user", "alice"},
			code:      2,
			stderrHas: "not both",
		},
		{
			name:      "explain view, bad action",
			args:      []string{"policy", "explain", good, "--view", "alice", "--node", "web1", "--action", "delete"},
			code:      2,
			stderrHas: `--action "delete": want view or download`,
		},
		{
			name:      "explain with a bad file",
			args:      []string{"policy", "explain", bad, "--user", "alice"},
			code:      1,
			stderrHas: bad + ":4:76:",
		},
		{
			name:      "explain with a bad address",
			args:      []string{"policy", "explain", good, "--user", "alice", "--from", "10.0.0.300"},
			code:      2,
			stderrHas: "reel policy: explain: --from:",
		},
		{
			name:      "explain with two files",
			args:      []string{"policy", "explain", good, good, "--user", "alice"},
			code:      2,
			stderrHas: "explain: one FILE, got 2 arguments",
		},
		{
			name:      "unknown subcommand",
			args:      []string{"policy", "lint", good},
			code:      2,
			stderrHas: `unknown subcommand "lint"`,
		},
		{
			name:      "help",
			args:      []string{"policy", "--help"},
			stdoutHas: "reel policy explain FILE --user USER",
		},
		{
			name:      "help through reel help",
			args:      []string{"help", "policy"},
			stdoutHas: "reel policy check FILE...",
		},
		{
			name:      "explain help lists the flags",
			args:      []string{"policy", "explain", "--help"},
			stdoutHas: "-local-user",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runInProcess(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			switch {
			case tt.stdoutHas != "":
				if !strings.Contains(stdout, tt.stdoutHas) {
					t.Errorf("stdout does not contain %q:\n%s", tt.stdoutHas, stdout)
				}
			case !tt.skipStdout:
				if diff := cmp.Diff(tt.stdout, stdout); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			}
			if tt.stderrHas != "" {
				if !strings.Contains(stderr, tt.stderrHas) {
					t.Errorf("stderr does not contain %q:\n%s", tt.stderrHas, stderr)
				}
			} else if diff := cmp.Diff(tt.stderr, stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyCheckExample(t *testing.T) {
	code, stdout, stderr := runInProcess(t, "policy", "check", "../../examples/policy.hujson")
	if code != 0 || !strings.Contains(stdout, ": ok (") {
		t.Errorf("example policy: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
