package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/reel-rec/reel/internal/asciicast"
)

// scale writes varied copies of each base recording until each kind holds
// an equal share of target bytes, so that small recordings (a shell
// session, vim) weigh as much in the corpus as bulk output does.
func scale(base []string, target int64, seed int64) error {
	share := target / int64(len(base))
	var total int64
	copies := 0
	for _, f := range base {
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		size := st.Size()
		for round := 1; size < share; round++ {
			out := filepath.Join(filepath.Dir(f), fmt.Sprintf("%04d.cast", round))
			n, err := varyFile(f, out, rand.New(rand.NewPCG(uint64(seed), uint64(round))), round)
			if err != nil {
				return err
			}
			size += n
			copies++
		}
		total += size
	}
	fmt.Printf("corpus: %d copies, %d bytes in all (%.2f GiB)\n", copies, total, float64(total)/(1<<30))
	return nil
}

// varyFile writes a copy of the recording in with its text varied and
// returns the copy's size.
func varyFile(in, out string, rnd *rand.Rand, round int) (int64, error) {
	src, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	w := &countWriter{w: bufio.NewWriterSize(dst, 1<<20)}
	dec := asciicast.NewDecoder(src)
	h, err := dec.Header()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", in, err)
	}
	h.Timestamp += int64(round) * 3607
	h.ConnectionID = fmt.Sprintf("%s-%d", h.ConnectionID, round)
	h.SrcNode = fmt.Sprintf("node-%02d.example.ts.net", rnd.IntN(50))
	enc := asciicast.NewEncoder(w)
	if err := enc.WriteHeader(h); err != nil {
		return 0, err
	}
	v := variation{letters: 1 + rnd.IntN(25), digits: 1 + rnd.IntN(9), salt: rnd.Uint32()}
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", in, err)
		}
		if ev.Code == asciicast.Output {
			ev.Data = v.apply(ev.Data)
		}
		if err := enc.WriteEvent(ev); err != nil {
			return 0, err
		}
	}
	if err := w.w.(*bufio.Writer).Flush(); err != nil {
		return 0, err
	}
	return w.n, dst.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// variation shifts the letters of about half the words (chosen by a hash
// of the word and the salt) and every digit, outside escape sequences.
// Lengths stay the same, so widths, wrapping and cursor movements do too.
type variation struct {
	letters, digits int
	salt            uint32
}

func (v variation) apply(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0x1b:
			i = skipEscape(b, i)
		case isLetter(c):
			j := i
			h := v.salt
			for j < len(b) && isLetter(b[j]) {
				h = h*31 + uint32(b[j])
				j++
			}
			if h>>7&1 == 0 {
				for k := i; k < j; k++ {
					b[k] = shift(b[k], v.letters)
				}
			}
			i = j
		case c >= '0' && c <= '9':
			b[i] = '0' + (c-'0'+byte(v.digits))%10
			i++
		default:
			i++
		}
	}
	return string(b)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func shift(c byte, n int) byte {
	base := byte('a')
	if c <= 'Z' {
		base = 'A'
	}
	return base + (c-base+byte(n))%26
}

// skipEscape returns the index after the escape sequence at b[i].
func skipEscape(b []byte, i int) int {
	i++
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '[':
		for i++; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i + 1
			}
		}
	case ']', 'P', '_', '^', 'X':
		for i++; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
	default:
		for ; i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f; i++ {
		}
		return i + 1
	}
	return i
}
