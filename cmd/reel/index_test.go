package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/reel-rec/reel/internal/index"
)

// cmdIndexed waits until the index of the store in DIR (DIR/.reel/index.db)
// has N recordings, none live, each with its text complete:
//
//	indexed DIR N
func cmdIndexed(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: indexed DIR N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	path := filepath.Join(ts.MkAbs(args[0]), ".reel", "index.db")
	var seen string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			seen = indexState(path)
			if seen == fmt.Sprintf("%d done", want) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("indexed: %d recordings not indexed in %s after 60s; seen: %s", want, path, seen)
}

// indexState sums up an index: "N done" when every row is closed and has
// its text, else what is not.
func indexState(path string) string {
	ctx := context.Background()
	ix, err := index.Open(ctx, path, nil)
	if err != nil {
		return err.Error()
	}
	defer ix.Close()
	rows, _, err := ix.List(ctx, index.Filter{}, index.Page{Limit: index.MaxLimit})
	if err != nil {
		return err.Error()
	}
	var not []string
	for _, r := range rows {
		if r.Status == "live" || r.Indexed != r.Size {
			not = append(not, fmt.Sprintf("%s %s %d/%d", r.Key, r.Status, r.Indexed, r.Size))
		}
	}
	if len(not) > 0 {
		return strings.Join(not, "; ")
	}
	return fmt.Sprintf("%d done", len(rows))
}

// cmdIndexing waits until some recording in DIR's index has part of its
// text indexed (0 < Indexed < Size):
//
//	indexing DIR
func cmdIndexing(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: indexing DIR")
	}
	path := filepath.Join(ts.MkAbs(args[0]), ".reel", "index.db")
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			if ix, err := index.Open(ctx, path, nil); err == nil {
				rows, _, _ := ix.List(ctx, index.Filter{}, index.Page{Limit: index.MaxLimit})
				ix.Close()
				for _, r := range rows {
					if r.Indexed > 0 && r.Indexed < r.Size {
						return
					}
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("indexing: no recording partly indexed in %s after 60s", path)
}

// cmdGencast writes a recording of EVENTS output events, each of 40 lines
// "event E line L marker", one event a second:
//
//	gencast FILE EVENTS
func cmdGencast(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: gencast FILE EVENTS")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	var b strings.Builder
	b.WriteString(`{"version":2,"width":100,"height":30,"timestamp":1793527200,"srcNode":"big","srcNodeID":"nBIG","env":{},"sshUser":"erin","localUser":"erin","connectionID":"c7","command":"tail -f app.log"}` + "\n")
	var out strings.Builder
	for e := range n {
		out.Reset()
		for l := range 40 {
			fmt.Fprintf(&out, "event %d line %d marker\r\n", e, l)
		}
		line, _ := json.Marshal([]any{float64(e), "o", out.String()})
		b.Write(line)
		b.WriteByte('\n')
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(b.String()), 0o644))
}

// TestParseMoment: reel play --at reads what reel search prints.
func TestParseMoment(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"", 0, true}, {"1:23", 83, true}, {"+1:23", 83, true}, {"1:02:03", 3723, true}, {"83", 83, true},
		{"83.5s", 83.5, true}, {"2m", 120, true}, {"0:07.5", 7.5, true},
		{"-1", 0, false}, {"1:2:3:4", 0, false}, {"abc", 0, false}, {"1:x", 0, false}, {"-5s", 0, false},
	} {
		got, err := parseMoment(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseMoment(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err == nil && tc.in != "" {
			if back, err := parseMoment(formatMoment(got)); err != nil || back != float64(int64(got)) {
				t.Errorf("formatMoment(%v) = %q does not read back (%v, %v)", got, formatMoment(got), back, err)
			}
		}
	}
}
