package index

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a page.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// MinQuery is the shortest search text, in characters: a trigram index
// cannot look up less.
const MinQuery = 3

func pageLimit(p Page) int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// checkQuery validates search text.
func checkQuery(text string) error {
	if utf8.RuneCountInString(text) < MinQuery {
		return ErrQueryShort
	}
	if !utf8.ValidString(text) || strings.ContainsAny(text, "\n\x00") {
		return fmt.Errorf("index: search text must be valid UTF-8 on one line")
	}
	return nil
}

// cursor is the position after the last row of a page. Its fields are
// the sort key of that row: V the sort column's value, K the key (or event
// id), and for search S and L the chunk's sequence number and the line.
type cursor struct {
	Sort Sort   `json:"o,omitempty"`
	V    int64  `json:"v"`
	K    string `json:"k"`
	S    int    `json:"s,omitempty"`
	L    int    `json:"l,omitempty"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("index: bad page cursor: %w", err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("index: bad page cursor: %w", err)
	}
	return &c, nil
}

// sortSpec is how a Sort orders rows: the column and the direction.
type sortSpec struct {
	col  string // column of recordings (alias r)
	desc bool
}

func sortOf(s Sort) (sortSpec, error) {
	switch s {
	case "", SortStartDesc:
		return sortSpec{"start_ns", true}, nil
	case SortStartAsc:
		return sortSpec{"start_ns", false}, nil
	case SortSizeDesc:
		return sortSpec{"size", true}, nil
	case SortDurDesc:
		return sortSpec{"dur_ns", true}, nil
	}
	return sortSpec{}, fmt.Errorf("index: unknown sort %q", s)
}

// sortValue is r's value in the sort column.
func (s sortSpec) value(r Recording) int64 {
	switch s.col {
	case "size":
		return r.Size
	case "dur_ns":
		return durNanos(r)
	}
	return r.Start.UnixNano()
}

func durNanos(r Recording) int64 {
	if r.End.IsZero() || r.End.Before(r.Start) {
		return 0
	}
	return r.End.Sub(r.Start).Nanoseconds()
}

// userNames are the names Filter.User finds a recording by: User, Login
// and LocalUser, lower-cased, and the part before '@' of each.
func userNames(r Recording) []string {
	var out []string
	for _, u := range []string{r.User, r.Login, r.LocalUser} {
		u = strings.ToLower(u)
		if u == "" {
			continue
		}
		out = append(out, u)
		if local, _, ok := strings.Cut(u, "@"); ok && local != "" {
			out = append(out, local)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// match is a Node or User filter value: exact, or a prefix ending in "*".
// It returns the value and, for a prefix, the least string greater than
// every string with that prefix ("" when there is none).
func prefixRange(v string) (lo, hi string, prefix bool) {
	p, ok := strings.CutSuffix(v, "*")
	if !ok {
		return v, "", false
	}
	rs := []rune(p)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] < unicode.MaxRune {
			rs[i]++
			// Skip the surrogate range, which is not valid in UTF-8.
			if rs[i] >= 0xD800 && rs[i] <= 0xDFFF {
				rs[i] = 0xE000
			}
			return p, string(rs[:i+1]), true
		}
	}
	return p, "", true
}

// findFold returns the byte offsets of the first match of q in s,
// ignoring case as the trigram index does (Unicode simple folding).
func findFold(s, q string) (int, int, bool) {
	if q == "" {
		return 0, 0, true
	}
	if isASCII(q) {
		return findFoldASCII(s, q)
	}
	for i := 0; i < len(s); {
		if j, ok := hasPrefixFold(s[i:], q); ok {
			return i, i + j, true
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return 0, 0, false
}

// hasPrefixFold reports whether s starts with q ignoring case, and how many
// bytes of s the match spans.
func hasPrefixFold(s, q string) (int, bool) {
	i := 0
	for _, qr := range q {
		if i >= len(s) {
			return 0, false
		}
		sr, n := utf8.DecodeRuneInString(s[i:])
		if !equalFoldRune(sr, qr) {
			return 0, false
		}
		i += n
	}
	return i, true
}

func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// chunkHits returns the hits of q in a chunk's text, from line index
// after+1 on (after -1: all), at most max.
func chunkHits(rec Recording, seq int, tstart, tend float64, text string, times []float64, q string, after, max int) (hits []Hit, lines []int) {
	line := 0
	for rest := text; rest != "" && len(hits) < max; line++ {
		l, tail, _ := strings.Cut(rest, "\n")
		rest = tail
		if line <= after {
			continue
		}
		i, j, ok := findFold(l, q)
		if !ok {
			continue
		}
		at := tstart
		if line < len(times) {
			at = times[line]
		}
		hits = append(hits, Hit{Recording: rec, TStart: tstart, TEnd: tend, Line: l, Match: [2]int{i, j}, At: at})
		lines = append(lines, line)
	}
	_ = seq
	return hits, lines
}

// encodeTimes packs line times as varints of milliseconds, each from the
// chunk's start: small, since lines of a chunk are close in time.
func encodeTimes(tstart float64, times []float64) []byte {
	if times == nil {
		return nil
	}
	b := make([]byte, 0, len(times)*2)
	for _, t := range times {
		b = binary.AppendVarint(b, int64(math.Round((t-tstart)*1000)))
	}
	return b
}

func decodeTimes(tstart float64, b []byte) []float64 {
	if len(b) == 0 {
		return nil
	}
	var out []float64
	for len(b) > 0 {
		v, n := binary.Varint(b)
		if n <= 0 {
			break
		}
		out = append(out, tstart+float64(v)/1000)
		b = b[n:]
	}
	return out
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// statuses splits a Filter.Status value.
func statuses(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// findFoldASCII is findFold for an ASCII q: bytes compared with ASCII
// case folded.
func findFoldASCII(s, q string) (int, int, bool) {
	c0 := lowerASCII(q[0])
	for i := 0; i+len(q) <= len(s); i++ {
		if lowerASCII(s[i]) != c0 {
			continue
		}
		j := 1
		for j < len(q) && lowerASCII(s[i+j]) == lowerASCII(q[j]) {
			j++
		}
		if j == len(q) {
			return i, i + len(q), true
		}
	}
	return 0, 0, false
}
