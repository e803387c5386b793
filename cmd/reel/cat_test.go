package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeCast writes a recording file in dir and returns its path.
func writeCast(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCat(t *testing.T) {
	ts := newTestStore(t)
	dir := t.TempDir()
	plain := writeCast(t, dir, "plain.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000,"env":{}}`,
		`[0.1,"o","hello \u001b[1mbold\u001b[0m\r\n"]`, `[0.5,"r","100x30"]`, `[0.6,"i","ls\r"]`, `[0.7,"m","mark"]`,
		`[1.2,"o","wörld\r\n"]`, `[1.3,"x","0"]`))
	truncated := writeCast(t, dir, "truncated.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000}`,
		`[0.1,"o","one\r\n"]`, `[0.2,"o","two\r\n"]`)+`[0.3,"o","thr`)
	broken := writeCast(t, dir, "broken.cast", castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000}`,
		`[0.1,"o","before\r\n"]`, `[0.2,"o",`, `[0.3,"o","after\r\n"]`))
	v1 := writeCast(t, dir, "v1.cast", `{"version":1,"width":80,"height":24,"duration":1.5,"command":"/bin/bash","title":"","env":{},
  "stdout":[[0.1,"hello "],[1.4,"v1\r\n"]]}`+"\n")
	v3 := writeCast(t, dir, "v3.cast", castLines(`{"version":3,"term":{"cols":80,"rows":24},"timestamp":1700000000}`,
		`[0.1,"o","hello "]`, `[0.5,"i","x"]`, `[1.0,"o","v3\r\n"]`, `[0.2,"x","0"]`))
	notCast := writeCast(t, dir, "notes.txt", "hello\n")
	// A copy of a stored recording outside the store has no status.
	copied := writeCast(t, dir, "copy.cast", readFile(t, filepath.Join(ts.dir, ts.keys["root"])))

	tests := []struct {
		name string
		args []string
		want reviewResult
	}{
		{"file", []string{plain}, reviewResult{Stdout: "hello \x1b[1mbold\x1b[0m\r\nwörld\r\n"}},
		{"with input", []string{"--input", plain}, reviewResult{Stdout: "hello \x1b[1mbold\x1b[0m\r\nls\rwörld\r\n"}},
		{"several files", []string{plain, copied}, reviewResult{Stdout: "hello \x1b[1mbold\x1b[0m\r\nwörld\r\ntop - 12:00\x1b[H"}},
		{"key", []string{"--dst", ts.dir, ts.keys["ssh"]}, reviewResult{Stdout: "$ ls\r\nfile.txt\r\n$ exit\r\n"}},
		{"key with dst from env", []string{ts.keys["kube"]}, reviewResult{Stdout: "# exit\r\n"}},
		{"path inside the store gets its status", []string{filepath.Join(ts.dir, ts.keys["root"])}, reviewResult{Stdout: "top - 12:00\x1b[H",
			Stderr: "note: " + ts.keys["root"] + " was interrupted (the upload did not end normally); it was cut at its last complete line (connection lost)\n"}},
		{"copy outside the store", []string{copied}, reviewResult{Stdout: "top - 12:00\x1b[H"}},
		{"live", []string{"--dst", ts.dir, ts.keys["live"]}, reviewResult{Stdout: "hi",
			Stderr: "note: " + ts.keys["live"] + " is still being recorded; this is what was stored so far\n" +
				"note: " + ts.keys["live"] + " ends in a partial line (cut off); shown up to its last complete event\n"}},
		{"truncated file", []string{truncated}, reviewResult{Stdout: "one\r\ntwo\r\n",
			Stderr: "note: " + truncated + " ends in a partial line (cut off); shown up to its last complete event\n"}},
		{"v1", []string{v1}, reviewResult{Stdout: "hello v1\r\n"}},
		{"v3", []string{"--input", v3}, reviewResult{Stdout: "hello xv3\r\n"}},
		{"broken line is skipped", []string{broken}, reviewResult{Code: 1, Stdout: "before\r\nafter\r\n"}},
		{"malformed store recording", []string{"--dst", ts.dir, ts.keys["bad"]}, reviewResult{Code: 1}},
		{"not a recording", []string{notCast}, reviewResult{Code: 1}},
		{"missing file", []string{filepath.Join(dir, "nope.cast")}, reviewResult{Code: 1,
			Stderr: "reel cat: " + filepath.Join(dir, "nope.cast") + ": no such file, and not a recording key (<node>/<time>.cast) either\n"}},
		{"missing key", []string{"--dst", ts.dir, "zz/2020-01-01T00-00-00.000000000Z.cast"}, reviewResult{Code: 1,
			Stderr: "reel cat: no recording zz/2020-01-01T00-00-00.000000000Z.cast in " + ts.dir + "\n"}},
		{"directory", []string{dir}, reviewResult{Code: 1, Stderr: "reel cat: " + dir + " is a directory, not a recording\n"}},
		{"no argument", nil, reviewResult{Code: 2,
			Stderr: "reel cat: name a recording: a .cast file or a <node>/<time>.cast key\nRun 'reel cat --help' for usage.\n"}},
	}
	// Where the decoder fails, stderr starts so; the rest is the codec's
	// wording.
	errPrefix := map[string]string{
		"broken line is skipped":    "reel cat: " + broken + ": a line is not an asciicast event, skipped: asciicast: line 3: ",
		"malformed store recording": "reel cat: " + ts.keys["bad"] + ": ",
		"not a recording":           "reel cat: " + notCast + ": ",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := reviewRun(t, nil, map[string]string{"TSRECORDER_DST": ts.dir}, append([]string{"cat"}, tc.args...)...)
			if p := errPrefix[tc.name]; p != "" && strings.HasPrefix(got.Stderr, p) && strings.HasSuffix(got.Stderr, "\n") {
				tc.want.Stderr = got.Stderr
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("reel cat %q (-want +got)\n%s", tc.args, diff)
			}
		})
	}
}

func TestCatStdin(t *testing.T) {
	in := strings.NewReader(castLines(`{"version":2,"width":80,"height":24,"timestamp":1700000000}`, `[0.1,"o","piped\r\n"]`))
	got := reviewRun(t, in, nil, "cat", "-")
	if diff := cmp.Diff(reviewResult{Stdout: "piped\r\n"}, got); diff != "" {
		t.Errorf("reel cat - (-want +got)\n%s", diff)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
