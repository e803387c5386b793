package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzRead reads arbitrary bytes as a month of the log: Read, Page and
// Verify never panic, read the same entries, and reading backwards sees
// the same lines as reading forwards.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"time":"2026-07-01T12:00:01Z","user":"a","action":"view","result":"ok","prev":""}` + "\n"))
	f.Add([]byte("{}\n\n\nx"))
	f.Add([]byte(`{"time":"2026-07-01T12:00:01Z","action":"view","result":"ok","prev":"","extra":1}` + "\n" + `{"time":"2026-07-01T12:00:01Z","action":"v","result":"ok","prev":"x"}{}` + "\n"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "2026-07.jsonl"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		var fwd [][]byte
		if _, err := forEachLineTail(dir, "2026-07", func(line []byte, _ int, _ int64, err error) bool {
			if err == nil {
				fwd = append(fwd, bytes.Clone(line))
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		var back [][]byte
		if err := scanBackward(bytes.NewReader(data), int64(len(data)), func(line []byte, _ int64, err error) bool {
			if err == nil {
				back = append(back, line)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		slices.Reverse(back)
		if len(fwd) != len(back) {
			t.Fatalf("forwards %d lines, backwards %d", len(fwd), len(back))
		}
		for i := range fwd {
			if !bytes.Equal(fwd[i], back[i]) {
				t.Fatalf("line %d: forwards %q, backwards %q", i, fwd[i], back[i])
			}
		}
		var read []Entry
		for e, err := range Read(context.Background(), dir, Query{}) {
			if err == nil {
				read = append(read, e)
			}
		}
		var paged []Entry
		cursor := ""
		for {
			page, next, err := Page(context.Background(), dir, Query{}, cursor, 1)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		slices.Reverse(paged)
		if len(read) != len(paged) {
			t.Fatalf("Read %d entries, Page %d", len(read), len(paged))
		}
		n, _, err := Verify(context.Background(), dir)
		if err != nil || n != len(read) {
			t.Fatalf("Verify: %d entries, %v; Read %d", n, err, len(read))
		}
	})
}

// FuzzCursor: a cursor Page did not make is refused or read safely.
func FuzzCursor(f *testing.F) {
	f.Add("2026-07:10")
	f.Add("")
	f.Add("2026-07:0")
	f.Fuzz(func(t *testing.T, c string) {
		m, off, err := parseCursor(c)
		if err != nil || c == "" {
			return
		}
		if formatCursor(m, off) != c && off >= 0 {
			// Leading zeros are the only other spelling accepted.
			if c2 := formatCursor(m, off); len(c2) >= len(c) {
				t.Fatalf("cursor %q read as %q", c, c2)
			}
		}
	})
}
