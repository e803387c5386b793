package index

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func words(doc string) []string {
	if doc == "" {
		return nil
	}
	return strings.Split(doc, " ")
}

func TestTrigramDoc(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // trigrams, before hex
	}{
		{"each trigram once", "abcabcabc", []string{"ABC", "BCA", "CAB"}},
		{"case folded", "aBc ABC", []string{"ABC", "BC ", "C A", " AB"}},
		{"none across lines", "ab\ncd\nefg\n", []string{"EFG"}},
		{"short lines", "ab\n\nx\n", nil},
		{"beyond ASCII", "Straße STRASSE", []string{"STR", "TRA", "RAß", "AßE", "ßE ", "E S", " ST", "RAS", "ASS", "SSE"}},
		{"folding orbit", "\u212a\u017f k", []string{"KS ", "S K"}}, // Kelvin sign, long s
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, w := range tc.want {
				want = append(want, string(appendWord(nil, [3]rune([]rune(w)))))
			}
			got := words(string(trigramDoc(nil, tc.text)))
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("trigramDoc(%q) (-want +got):\n%s", tc.text, d)
			}
		})
	}
	// The pooled set is clean for the next document.
	trigramDoc(nil, "xyz\u00e9\u00e9\u00e9")
	if got := words(string(trigramDoc(nil, "xyz\u00e9\u00e9\u00e9"))); len(got) != 4 {
		t.Errorf("second document of the same text: %d words, want 4", len(got))
	}
}

// TestTrigramDocFindsEveryMatch: whenever findFold finds q in a line of a
// text, every word of q's query is in the text's document: the index
// never loses a hit that the check of the candidates would keep.
func TestTrigramDocFindsEveryMatch(t *testing.T) {
	alphabet := []rune("aAbBkK\u212as S\u017f\u00df\u1e9e\u00e9\u00c9\u65e5 \n%_\"")
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) string {
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(rs)
	}
	checked := 0
	for range 20000 {
		text := rnd(5 + r.IntN(40))
		q := strings.ReplaceAll(rnd(3+r.IntN(3)), "\n", "x")
		doc := map[string]bool{}
		for _, w := range words(string(trigramDoc(nil, text))) {
			doc[w] = true
		}
		for line := range strings.SplitSeq(text, "\n") {
			if _, _, ok := findFold(line, q); !ok {
				continue
			}
			checked++
			for _, w := range strings.Split(trigramMatch(q), " AND ") {
				if !doc[w] {
					t.Fatalf("line %q has %q (findFold) but the document of %q lacks its word %s", line, q, text, w)
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d matches checked", checked)
	}
}
