package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock returns a clock whose first reading is one second after t, and
// each next one a second later.
func clock(t time.Time) *testutil.Clock {
	c := testutil.NewClock(t.Add(time.Second))
	c.Step = time.Second
	return c
}

func openTest(t *testing.T, dir string, c *testutil.Clock) *Log {
	t.Helper()
	l, err := open(dir, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func readAll(t *testing.T, dir string, q Query) ([]Entry, []error) {
	t.Helper()
	var es []Entry
	var errs []error
	for e, err := range Read(context.Background(), dir, q) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		es = append(es, e)
	}
	return es, errs
}

func verify(t *testing.T, dir string) (int, []string) {
	t.Helper()
	n, probs, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var s []string
	for _, p := range probs {
		s = append(s, p.String())
	}
	return n, s
}

var july = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func TestAppendRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	c := clock(july)
	l := openTest(t, dir, c)
	in := []Entry{
		{User: "alice", Auth: "account", From: "127.0.0.1", Action: ActionLogin, Result: ResultOK},
		{User: "alice", Auth: "account", From: "127.0.0.1", Action: ActionList, Args: map[string]string{"node": "web1"}, Result: ResultOK},
		{User: "alice", Auth: "account", From: "127.0.0.1", Action: ActionView, Target: "web1/x.cast", Result: ResultDenied, Reason: "no viewers rule"},
		// Time and Prev given by the caller are replaced.
		{Time: time.Unix(1, 0), Prev: "forged", User: "bob", Action: ActionDownload, Target: "n/y.cast", Result: ResultOK},
	}
	for _, e := range in {
		if err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	got, errs := readAll(t, dir, Query{})
	if len(errs) > 0 {
		t.Fatalf("read errors: %v", errs)
	}
	if len(got) != len(in) {
		t.Fatalf("read %d entries, want %d", len(got), len(in))
	}
	for i := range in {
		want := in[i]
		want.Time = july.Add(time.Duration(i+1) * time.Second)
		want.Prev = got[i].Prev
		if diff := cmp.Diff(want, got[i]); diff != "" {
			t.Errorf("entry %d (-want +got):\n%s", i, diff)
		}
	}
	if got[0].Prev != "" || got[1].Prev == "" || got[3].Prev == "forged" {
		t.Errorf("prev hashes: %q", []string{got[0].Prev, got[1].Prev, got[3].Prev})
	}
	if n, probs := verify(t, dir); n != 4 || len(probs) > 0 {
		t.Errorf("Verify: %d entries, problems %q", n, probs)
	}
	for _, p := range []string{dir, filepath.Join(dir, "2026-07.jsonl")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700 | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}

	// Filters.
	for _, tt := range []struct {
		q    Query
		want []string
	}{
		{Query{User: "ALICE"}, []string{ActionLogin, ActionList, ActionView}},
		{Query{Action: ActionDownload}, []string{ActionDownload}},
		{Query{Result: ResultDenied}, []string{ActionView}},
		{Query{Since: july.Add(2 * time.Second), Until: july.Add(4 * time.Second)}, []string{ActionList, ActionView}},
		{Query{Since: july.AddDate(0, 1, 0)}, nil},
	} {
		got, _ := readAll(t, dir, tt.q)
		var acts []string
		for _, e := range got {
			acts = append(acts, e.Action)
		}
		if !slices.Equal(acts, tt.want) {
			t.Errorf("Read(%+v) = %q, want %q", tt.q, acts, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, clock(july))
	long := strings.Repeat("é", MaxField) // 2 bytes each
	if err := l.Append(Entry{User: "u", Action: ActionSearch, Target: long, Args: map[string]string{"text": long}, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, dir, Query{})
	if len(got) != 1 {
		t.Fatalf("got %d entries", len(got))
	}
	for _, s := range []string{got[0].Target, got[0].Args["text"]} {
		if len(s) > MaxField || !strings.HasSuffix(s, "é…") {
			t.Errorf("clipped to %d bytes, ending %q", len(s), s[len(s)-8:])
		}
	}
}

// TestVerifyFindsTampering edits, removes and inserts lines: each shows
// as a broken chain at the line after the change.
func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		change func(lines [][]byte) [][]byte
		want   []string
	}{
		{"edit", func(ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`"user":"u1"`), []byte(`"user":"zz"`), 1)
			return ls
		}, []string{"2026-07.jsonl:3: chain broken"}},
		{"remove", func(ls [][]byte) [][]byte { return slices.Delete(ls, 2, 3) }, []string{"2026-07.jsonl:3: chain broken"}},
		{"insert", func(ls [][]byte) [][]byte { return slices.Insert(ls, 1, ls[3]) }, []string{"2026-07.jsonl:2: chain broken", "2026-07.jsonl:3: chain broken"}},
		{"remove first", func(ls [][]byte) [][]byte { return ls[1:] }, []string{"2026-07.jsonl:1: chain broken: the first entry"}},
		{"garbage", func(ls [][]byte) [][]byte { return slices.Insert(ls, 2, []byte("not json")) }, []string{"2026-07.jsonl:3: damaged line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, clock(july))
			for i := range 5 {
				if err := l.Append(Entry{User: fmt.Sprintf("u%d", i), Action: ActionView, Result: ResultOK}); err != nil {
					t.Fatal(err)
				}
			}
			if _, probs := verify(t, dir); len(probs) > 0 {
				t.Fatalf("before the change: %q", probs)
			}
			name := filepath.Join(dir, "2026-07.jsonl")
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
			lines = tt.change(lines)
			if err := os.WriteFile(name, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
				t.Fatal(err)
			}
			_, probs := verify(t, dir)
			if len(probs) != len(tt.want) {
				t.Fatalf("problems %q, want %q", probs, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(probs[i], w) {
					t.Errorf("problem %q, want %q", probs[i], w)
				}
			}
		})
	}
}

// TestTornLine: a line a crash cut short is left alone; the next append
// starts a new line and chains to the last whole entry, readers report
// the damaged line and go on, and Verify finds only that line.
func TestTornLine(t *testing.T) {
	dir := t.TempDir()
	c := clock(july)
	l := openTest(t, dir, c)
	for _, u := range []string{"a", "b"} {
		if err := l.Append(Entry{User: u, Action: ActionView, Result: ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	name := filepath.Join(dir, "2026-07.jsonl")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-07-01T12:00:09Z","user":"c","act`)
	f.Close()

	// Readers skip the unfinished last line: it may be in flight.
	if got, errs := readAll(t, dir, Query{}); len(got) != 2 || len(errs) != 0 {
		t.Fatalf("before the next append: %d entries, errors %v", len(got), errs)
	}
	l2 := openTest(t, dir, c)
	if err := l2.Append(Entry{User: "d", Action: ActionView, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	got, errs := readAll(t, dir, Query{})
	var users []string
	for _, e := range got {
		users = append(users, e.User)
	}
	if !slices.Equal(users, []string{"a", "b", "d"}) {
		t.Errorf("users %q, want a b d", users)
	}
	var le *LineError
	if len(errs) != 1 || !errors.As(errs[0], &le) || le.Line != 3 {
		t.Errorf("errors %v, want one damaged line 3", errs)
	}
	if n, probs := verify(t, dir); n != 3 || len(probs) != 1 || !strings.HasPrefix(probs[0], "2026-07.jsonl:3: damaged line") {
		t.Errorf("Verify: %d entries, %q", n, probs)
	}
}

// TestSharedLog: two Logs on one directory (as the recorder and "reel
// user" are) appending at once keep one unbroken chain.
func TestSharedLog(t *testing.T) {
	dir := t.TempDir()
	c := clock(july)
	logs := []*Log{openTest(t, dir, c), openTest(t, dir, c)}
	const each = 50
	var wg sync.WaitGroup
	errc := make(chan error, 4*each)
	for i, l := range logs {
		for g := range 2 {
			wg.Go(func() {
				for j := range each {
					if err := l.Append(Entry{User: fmt.Sprintf("l%d-g%d-%d", i, g, j), Action: ActionList, Result: ResultOK}); err != nil {
						errc <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n, probs := verify(t, dir); n != 4*each || len(probs) > 0 {
		t.Errorf("Verify: %d entries (want %d), problems %q", n, 4*each, probs)
	}
}

// TestMonths: a new month starts a new file; the chain goes on across
// files, and Read and Page cross them.
func TestMonths(t *testing.T) {
	dir := t.TempDir()
	c := clock(july)
	l := openTest(t, dir, c)
	months := []time.Time{july, july.AddDate(0, 1, 0), july.AddDate(0, 2, 0)}
	for _, m := range months {
		c.Set(m)
		for i := range 3 {
			if err := l.Append(Entry{User: fmt.Sprintf("%s-%d", monthOf(m), i), Action: ActionList, Result: ResultOK}); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.Close()
	// Another process goes on in the last month, and one starts a month.
	l2 := openTest(t, dir, c)
	c.Set(months[2].Add(time.Hour))
	if err := l2.Append(Entry{User: "late", Action: ActionList, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	if ms, _ := listMonths(dir); !slices.Equal(ms, []string{"2026-07", "2026-08", "2026-09"}) {
		t.Errorf("files for months %q", ms)
	}
	if n, probs := verify(t, dir); n != 10 || len(probs) > 0 {
		t.Errorf("Verify: %d entries, problems %q", n, probs)
	}
	got, _ := readAll(t, dir, Query{Since: months[1], Until: months[2]})
	if len(got) != 3 || got[0].User != "2026-08-0" {
		t.Errorf("August: %v", got)
	}

	// Pages of 4, newest first, across the files.
	var users []string
	cursor := ""
	for range 10 {
		page, next, err := Page(context.Background(), dir, Query{}, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			users = append(users, e.User)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := []string{"late", "2026-09-2", "2026-09-1", "2026-09-0", "2026-08-2", "2026-08-1", "2026-08-0", "2026-07-2", "2026-07-1", "2026-07-0"}
	if !slices.Equal(users, want) {
		t.Errorf("pages: %q\nwant   %q", users, want)
	}
	page, next, err := Page(context.Background(), dir, Query{User: "2026-08-1"}, "", 10)
	if err != nil || len(page) != 1 || next != "" {
		t.Errorf("filtered page: %v, %q, %v", page, next, err)
	}
}

func TestPageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"x", "2026-13:1", "2026-07:", "2026-07:-1", "2026-07:1e3", "2026-07:99999999999999999999", ":1"} {
		if _, _, err := Page(context.Background(), dir, Query{}, c, 10); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	if _, _, err := Page(context.Background(), dir, Query{}, "", 1001); err == nil {
		t.Error("page of 1001 accepted")
	}
	if page, next, err := Page(context.Background(), filepath.Join(dir, "none"), Query{}, "", 0); err != nil || len(page) != 0 || next != "" {
		t.Errorf("missing log: %v %q %v", page, next, err)
	}
}

// TestScanBackward reads lines of every size around the block size
// backwards and compares with reading them forwards.
func TestScanBackward(t *testing.T) {
	var b bytes.Buffer
	var want [][]byte
	for _, n := range []int{0, 1, 100, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3, 200 << 10, 0, 7} {
		line := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		want = append(want, line)
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString("unfinished")
	data := b.Bytes()
	var got [][]byte
	var offs []int64
	err := scanBackward(bytes.NewReader(data), int64(len(data)), func(line []byte, off int64, err error) bool {
		if err != nil {
			t.Fatalf("line at %d: %v", off, err)
		}
		got = append(got, line)
		offs = append(offs, off)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	slices.Reverse(offs)
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	var off int64
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || offs[i] != off {
			t.Errorf("line %d: %d bytes at %d, want %d bytes at %d", i, len(got[i]), offs[i], len(want[i]), off)
		}
		off += int64(len(want[i])) + 1
	}
}
