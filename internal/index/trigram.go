package index

import (
	"encoding/hex"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The SQLite index does not give FTS5 a chunk's text but a document of the
// distinct trigrams of its lines, each written as one word of hex digits
// (the trigram's UTF-8 bytes, case folded) for FTS5's ascii tokenizer. The
// index is the same as the trigram tokenizer's with detail=none (for each
// trigram, the rows that have it), but FTS5 gets each trigram of a chunk
// once instead of at every place it occurs: a 256 KiB chunk of logs has
// some 256,000 trigrams and a few tens of thousands distinct ones, and
// adding each occurrence to FTS5's pending-terms hash was most of the
// cost of indexing. The text itself is kept in chunks.text.
//
// Trigrams never span a line break (a query has none, and a hit is a
// line). Case is folded as findFold compares: runes equal under Unicode
// simple folding have the same fold, the least rune of their folding
// orbit, so a line that findFold matches has every trigram of the query.

// foldRune is the least rune equal to r under simple case folding.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// trigramSet marks the trigrams of one document seen so far: ASCII ones
// (7 bits a rune, most of the text) in a bitmap, the others in a map.
type trigramSet struct {
	bits [1 << 21 / 64]uint64
	set  []uint32 // bits set, to clear them after
	wide map[string]struct{}
}

var trigramSets = sync.Pool{New: func() any { return new(trigramSet) }}

// trigramDoc appends to dst the FTS5 document of text: its distinct
// trigrams, each a word, separated by spaces.
func trigramDoc(dst []byte, text string) []byte {
	s := trigramSets.Get().(*trigramSet)
	defer func() {
		for _, k := range s.set {
			s.bits[k/64] = 0
		}
		s.set = s.set[:0]
		clear(s.wide)
		trigramSets.Put(s)
	}()
	var win [3]rune
	n := 0 // runes in win
	for i := 0; i < len(text); {
		r := rune(text[i])
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			i++
		} else {
			var size int
			r, size = utf8.DecodeRuneInString(text[i:])
			r = foldRune(r)
			i += size
		}
		if r == '\n' {
			n = 0
			continue
		}
		win[0], win[1], win[2] = win[1], win[2], r
		if n < 2 {
			n++
			continue
		}
		if win[0]|win[1]|win[2] < utf8.RuneSelf {
			k := uint32(win[0])<<14 | uint32(win[1])<<7 | uint32(win[2])
			if s.bits[k/64]&(1<<(k%64)) != 0 {
				continue
			}
			s.bits[k/64] |= 1 << (k % 64)
			s.set = append(s.set, k)
			dst = appendWord(dst, win)
			continue
		}
		var b [12]byte
		w := utf8.AppendRune(utf8.AppendRune(utf8.AppendRune(b[:0], win[0]), win[1]), win[2])
		if _, ok := s.wide[string(w)]; ok {
			continue
		}
		if s.wide == nil {
			s.wide = map[string]struct{}{}
		}
		s.wide[string(w)] = struct{}{}
		dst = appendWord(dst, win)
	}
	return dst
}

// appendWord appends the word of a trigram of folded runes.
func appendWord(dst []byte, tri [3]rune) []byte {
	if len(dst) > 0 {
		dst = append(dst, ' ')
	}
	var b [12]byte
	w := utf8.AppendRune(utf8.AppendRune(utf8.AppendRune(b[:0], tri[0]), tri[1]), tri[2])
	return hex.AppendEncode(dst, w)
}

// trigramMatch is the FTS5 query for the rows that have every trigram of
// q.
func trigramMatch(q string) string {
	return strings.ReplaceAll(string(trigramDoc(nil, q)), " ", " AND ")
}
