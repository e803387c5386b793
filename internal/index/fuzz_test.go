package index

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCursor: a page cursor comes from a client (the web UI's URLs); any
// string is either a cursor or an error, never a panic, and a cursor
// encodes back to itself.
func FuzzCursor(f *testing.F) {
	f.Add("")
	f.Add(cursor{Sort: SortSizeDesc, V: 42, K: "n/k.cast", S: 3, L: 7}.encode())
	f.Add("eyJ2IjoxfQ")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil || c == nil {
			return
		}
		again, err := decodeCursor(c.encode())
		if err != nil || *again != *c {
			t.Fatalf("cursor %+v does not survive encoding: %+v, %v", c, again, err)
		}
	})
}

// FuzzFindFold: the match offsets are on rune boundaries, the match
// equals the query ignoring case, and a query that is a substring of the
// line (as is) is always found.
func FuzzFindFold(f *testing.F) {
	f.Add("École Über straße", "über")
	f.Add("disk at 100% now", "0% n")
	f.Add("KELVIN \u212a", "k")
	f.Fuzz(func(t *testing.T, s, q string) {
		if !utf8.ValidString(s) || !utf8.ValidString(q) || q == "" {
			return
		}
		i, j, ok := findFold(s, q)
		if strings.Contains(s, q) && !ok {
			t.Fatalf("%q not found in %q", q, s)
		}
		if !ok {
			return
		}
		if i < 0 || j > len(s) || i > j || !utf8.ValidString(s[i:j]) {
			t.Fatalf("findFold(%q, %q) = %d, %d", s, q, i, j)
		}
		if !strings.EqualFold(s[i:j], q) {
			t.Fatalf("findFold(%q, %q) matched %q", s, q, s[i:j])
		}
	})
}
