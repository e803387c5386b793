package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
)

// reviewResult is what one in-process run of reel gave.
type reviewResult struct {
	Stdout, Stderr string
	Code           int
}

// reviewRun runs reel in process with TZ=UTC and the given stdin (may be
// nil) and extra environment.
func reviewRun(t testing.TB, stdin io.Reader, envv map[string]string, args ...string) reviewResult {
	t.Helper()
	return reviewRunCtx(t, context.Background(), stdin, envv, args...)
}

func reviewRunCtx(t testing.TB, ctx context.Context, stdin io.Reader, envv map[string]string, args ...string) reviewResult {
	t.Helper()
	var out, errb strings.Builder
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	env := &cmdEnv{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(k string) string {
		if v, ok := envv[k]; ok {
			return v
		}
		if k == "TZ" {
			return "UTC"
		}
		return ""
	}}
	code := dispatch(ctx, env, args)
	return reviewResult{out.String(), errb.String(), code}
}

// castLines joins a header and events into a recording, one line each.
func castLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// testStore is a store with recordings the ls tests list.
type testStore struct {
	dir  string
	keys map[string]string // by a short name
}

var (
	sshHeader  = `{"version":2,"width":80,"height":24,"timestamp":1793527200,"srcNode":"laptop","srcNodeID":"nLAPTOP","srcNodeUser":"alice@example.com","env":{"TERM":"xterm"},"sshUser":"alice","localUser":"ubuntu","connectionID":"c1","command":"bash -l"}`
	rootHeader = `{"version":2,"width":120,"height":40,"timestamp":1793534400,"srcNode":"laptop","srcNodeID":"nLAPTOP","srcNodeUser":"bob@example.com","env":{},"sshUser":"root","localUser":"root","connectionID":"c2","command":"top"}`
	kubeHeader = `{"version":2,"width":80,"height":24,"timestamp":1793610000,"srcNode":"ws","srcNodeID":"nWS","srcNodeUser":"carol@example.com","env":{},"sshUser":"","localUser":"","connectionID":"","kubernetes":{"PodName":"web-0","Namespace":"prod","Container":"app","SessionType":"exec"}}`
	liveHeader = `{"version":2,"width":80,"height":24,"timestamp":1793613600,"srcNode":"ws","srcNodeID":"nWS","srcNodeUser":"dave@example.com","env":{},"sshUser":"dave","localUser":"dave","connectionID":"c4","command":"sh -c 'printf \u001b]0;owned\u0007'"}`
)

// newTestStore writes five recordings on three nodes, one of each status.
// The live one stays open until the test ends.
func newTestStore(t *testing.T) *testStore {
	t.Helper()
	ctx := context.Background()
	ts := &testStore{dir: t.TempDir(), keys: map[string]string{}}
	st, err := fsstore.Open(ts.dir, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	put := func(name, node string, start time.Time, body string, status store.Status, reason string) {
		t.Helper()
		w, err := st.Create(ctx, node, start)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		ts.keys[name] = w.Key()
		if status == store.StatusLive {
			t.Cleanup(func() { w.Close(store.StatusComplete, "") })
			return
		}
		if err := w.Close(status, reason); err != nil {
			t.Fatal(err)
		}
	}
	put("ssh", "100.64.0.1", time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), castLines(sshHeader,
		`[0.5,"o","$ "]`, `[2,"i","ls\r"]`, `[2.1,"o","ls\r\nfile.txt\r\n$ "]`, `[187,"o","exit\r\n"]`), store.StatusComplete, "")
	put("root", "100.64.0.1", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), castLines(rootHeader,
		`[1,"o","top - 12:00"]`, `[4.25,"o","\u001b[H"]`)+`[5,"o","cut o`, store.StatusInterrupted, "connection lost")
	put("kube", "proxy-1", time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), castLines(kubeHeader,
		`[0.1,"o","# "]`, `[3723.4,"o","exit\r\n"]`), store.StatusComplete, "")
	put("live", "proxy-1", time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), castLines(liveHeader, `[0.5,"o","hi"]`)+`[0.7,"o","hal`, store.StatusLive, "")
	put("bad", "zz", time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC), "this is not asciicast\n", store.StatusMalformed, "line 1: not a JSON object")
	t.Cleanup(func() { st.Close() })
	return ts
}

func TestLsTable(t *testing.T) {
	ts := newTestStore(t)
	got := reviewRun(t, nil, nil, "ls", "--dst", ts.dir)
	// The live recording's command carries escape sequences: they must not
	// reach the reviewer's terminal.
	want := reviewResult{Stdout: `KEY                                             START                DURATION  USER               COMMAND                    SIZE  STATUS
100.64.0.1/2026-11-01T10-00-00.000000000Z.cast  2026-11-01 10:00:00  3m07s     alice→ubuntu       bash -l                    321B  complete
100.64.0.1/2026-11-01T12-00-00.000000000Z.cast  2026-11-01 12:00:00  4.2s      root               top                        259B  interrupted
proxy-1/2026-11-02T09-00-00.000000000Z.cast     2026-11-02 09:00:00  1h02m03s  carol@example.com  exec prod/web-0 app        312B  complete
proxy-1/2026-11-02T10-00-00.000000000Z.cast     2026-11-02 10:00:00  0.5s      dave               sh -c 'printf ?]0;owned?'  267B  live
zz/2026-11-03T08-00-00.000000000Z.cast          2026-11-03 08:00:00  -         -                  -                          22B   malformed
`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reel ls (-want +got)\n%s", diff)
	}
	// Local time is the reader's: the same store in another zone.
	got = reviewRun(t, nil, map[string]string{"TZ": "Asia/Tokyo"}, "ls", "--dst", ts.dir, "--node", "zz")
	if !strings.Contains(got.Stdout, "2026-11-03 17:00:00") {
		t.Errorf("TZ=Asia/Tokyo: start not in local time:\n%s", got.Stdout)
	}
}

// lsKeys runs reel ls --json with args and returns the short names of the
// recordings listed, in order, and stderr.
func lsKeys(t *testing.T, ts *testStore, args ...string) ([]string, string) {
	t.Helper()
	got := reviewRun(t, nil, nil, append([]string{"ls", "--dst", ts.dir, "--json"}, args...)...)
	if got.Code != 0 {
		t.Fatalf("reel ls %v: exit %d\n%s", args, got.Code, got.Stderr)
	}
	byKey := map[string]string{}
	for name, key := range ts.keys {
		byKey[key] = name
	}
	var names []string
	for line := range strings.Lines(got.Stdout) {
		var e struct{ Key string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		names = append(names, byKey[e.Key])
	}
	return names, got.Stderr
}

func TestLsFilters(t *testing.T) {
	ts := newTestStore(t)
	tests := []struct {
		name   string
		args   []string
		want   []string
		stderr string
	}{
		{"all", nil, []string{"ssh", "root", "kube", "live", "bad"}, ""},
		{"node", []string{"--node", "proxy-1"}, []string{"kube", "live"}, ""},
		{"ssh user", []string{"--user", "alice"}, []string{"ssh"}, ""},
		{"local user", []string{"--user", "ubuntu"}, []string{"ssh"}, ""},
		{"tailnet user", []string{"--user", "carol@example.com"}, []string{"kube"}, ""},
		{"user ignores case", []string{"--user", "ROOT"}, []string{"root"}, ""},
		{"since date", []string{"--since", "2026-11-02"}, []string{"kube", "live", "bad"}, ""},
		{"until date", []string{"--until", "2026-11-02"}, []string{"ssh", "root"}, ""},
		{"between times", []string{"--since", "2026-11-01T11:00", "--until", "2026-11-02T09:30"}, []string{"root", "kube"}, ""},
		{"statuses", []string{"--status", "interrupted,malformed"}, []string{"root", "bad"}, ""},
		{"live", []string{"--status", "live"}, []string{"live"}, ""},
		{"filters combine", []string{"--node", "100.64.0.1", "--user", "bob"}, []string{"root"}, ""},
		{"no match", []string{"--user", "nobody"}, nil, "reel ls: no recordings match (5 in " + ts.dir + ")\n"},
		{"no such node", []string{"--node", "nope"}, nil, "reel ls: no recordings match (0 in " + ts.dir + ")\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, stderr := lsKeys(t, ts, tc.args...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("listed (-want +got)\n%s", diff)
			}
			if stderr != tc.stderr {
				t.Errorf("stderr %q, want %q", stderr, tc.stderr)
			}
		})
	}
}

func TestLsSinceRelative(t *testing.T) {
	ts := newTestStore(t)
	now := func() time.Time { return time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC) }
	var out, errb strings.Builder
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if err := (lsCmd{now: now}).run(context.Background(), env, []string{"--dst", ts.dir, "--since", "26h", "--json"}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for line := range strings.Lines(out.String()) {
		var e struct{ Key string }
		json.Unmarshal([]byte(line), &e)
		keys = append(keys, e.Key)
	}
	if diff := cmp.Diff([]string{ts.keys["live"], ts.keys["bad"]}, keys); diff != "" {
		t.Errorf("--since 26h at %v (-want +got)\n%s", now(), diff)
	}
}

func TestLsJSON(t *testing.T) {
	ts := newTestStore(t)
	got := reviewRun(t, nil, nil, "ls", "--dst", ts.dir, "--json", "--status", "complete,interrupted,malformed", "--node", "100.64.0.1")
	if got.Code != 0 || got.Stderr != "" {
		t.Fatalf("reel ls --json: exit %d, stderr %q", got.Code, got.Stderr)
	}
	var rows []map[string]any
	for line := range strings.Lines(got.Stdout) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		rows = append(rows, r)
	}
	want := []map[string]any{
		{
			"key": ts.keys["ssh"], "node": "100.64.0.1", "sender": "100.64.0.1", "start": "2026-11-01T10:00:00Z", "size": 321.0, "status": "complete",
			"kind": "terminal", "duration": 187.0, "user": "alice→ubuntu", "command": "bash -l",
			"header": map[string]any{
				"version": 2.0, "width": 80.0, "height": 24.0, "timestamp": 1793527200.0, "command": "bash -l",
				"srcNode": "laptop", "srcNodeID": "nLAPTOP", "srcNodeUser": "alice@example.com", "env": map[string]any{"TERM": "xterm"},
				"sshUser": "alice", "localUser": "ubuntu", "connectionID": "c1",
			},
		},
		{
			"key": ts.keys["root"], "node": "100.64.0.1", "sender": "100.64.0.1", "start": "2026-11-01T12:00:00Z", "size": 259.0, "status": "interrupted",
			"reason": "connection lost", "kind": "terminal", "duration": 4.25, "user": "root", "command": "top",
			"header": map[string]any{
				"version": 2.0, "width": 120.0, "height": 40.0, "timestamp": 1793534400.0, "command": "top",
				"srcNode": "laptop", "srcNodeID": "nLAPTOP", "srcNodeUser": "bob@example.com", "env": map[string]any{},
				"sshUser": "root", "localUser": "root", "connectionID": "c2",
			},
		},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("reel ls --json (-want +got)\n%s", diff)
	}

	// A recording whose header cannot be read still lists, with why.
	got = reviewRun(t, nil, nil, "ls", "--dst", ts.dir, "--json", "--node", "zz")
	var bad map[string]any
	if err := json.Unmarshal([]byte(got.Stdout), &bad); err != nil {
		t.Fatalf("%q: %v", got.Stdout, err)
	}
	if bad["duration"] != nil || bad["header"] != nil || !strings.HasPrefix(bad["headerError"].(string), "asciicast: line 1: header: ") || bad["status"] != "malformed" {
		t.Errorf("malformed recording in --json: %v", bad)
	}
}

func TestLsEmptyAndMissing(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(empty, "nope")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want reviewResult
	}{
		{"empty store", []string{"ls", "--dst", empty}, nil, reviewResult{Stderr: "reel ls: no recordings in " + empty + " yet\n"}},
		{"empty store, json", []string{"ls", "--json", "--dst", empty}, nil, reviewResult{Stderr: "reel ls: no recordings in " + empty + " yet\n"}},
		{"dst from env", []string{"ls"}, map[string]string{"TSRECORDER_DST": empty}, reviewResult{Stderr: "reel ls: no recordings in " + empty + " yet\n"}},
		{"missing dst", []string{"ls", "--dst", missing}, nil, reviewResult{Code: 1,
			Stderr: "reel ls: --dst " + missing + ": no such directory (set --dst or TSRECORDER_DST to where reel serve stores recordings)\n"}},
		{"bad status", []string{"ls", "--dst", empty, "--status", "done"}, nil, reviewResult{Code: 2,
			Stderr: "reel ls: --status: unknown status \"done\" (want live, complete, interrupted, malformed or failed)\nRun 'reel ls --help' for usage.\n"}},
		{"bad since", []string{"ls", "--dst", empty, "--since", "yesterday"}, nil, reviewResult{Code: 2,
			Stderr: "reel ls: --since: \"yesterday\" is neither a duration (24h, 7d) nor a time (2026-11-01, 2026-11-01T14:00, RFC 3339)\nRun 'reel ls --help' for usage.\n"}},
		{"argument", []string{"ls", "x"}, nil, reviewResult{Code: 2, Stderr: "reel ls: unexpected argument \"x\"\nRun 'reel ls --help' for usage.\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := reviewRun(t, nil, tc.env, tc.args...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestReviewHelp(t *testing.T) {
	for _, cmd := range []string{"ls", "cat", "play"} {
		t.Run(cmd, func(t *testing.T) {
			got := reviewRun(t, nil, nil, cmd, "--help")
			if got.Code != 0 || !strings.Contains(got.Stdout, "Usage: reel "+cmd) || !strings.Contains(got.Stdout, "Examples:\n    reel "+cmd) ||
				!strings.Contains(got.Stdout, "-dst") {
				t.Errorf("reel %s --help: exit %d\n%s%s", cmd, got.Code, got.Stdout, got.Stderr)
			}
		})
	}
}
