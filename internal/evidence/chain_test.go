package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// refHead computes head(N) of data straight from the definition in
// docs/evidence.md, block by block, without Chain.
func refHead(data []byte) (head, last [32]byte) {
	c := sha256.Sum256([]byte("reel-chain v1"))
	k := len(data) / BlockSize
	for i := range k {
		d := sha256.Sum256(data[i*BlockSize : (i+1)*BlockSize])
		c = sha256.Sum256(append(c[:], d[:]...))
	}
	last = sha256.Sum256(data[k*BlockSize:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	buf := append(append(append([]byte{}, c[:]...), n[:]...), last[:]...)
	return sha256.Sum256(buf), last
}

func TestChainMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, BlockSize - 1, BlockSize, BlockSize + 1, 3*BlockSize + 5, 5 * BlockSize} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		wantHead, wantLast := refHead(data)
		// Whole, and in random pieces: the same head.
		for _, piece := range []int{n + 1, 1, 7, 4096, BlockSize + 3} {
			ch := NewChain()
			var blocks []Hash
			ch.OnBlock = func(i int64, d Hash) {
				if i != int64(len(blocks)) {
					t.Errorf("block %d reported as %d", len(blocks), i)
				}
				blocks = append(blocks, d)
			}
			for p := data; len(p) > 0; {
				m := min(len(p), 1+rng.IntN(max(piece, 1)))
				ch.Write(p[:m])
				p = p[m:]
			}
			head, last := ch.Head()
			if head != wantHead || last != wantLast || ch.Size() != int64(n) {
				t.Errorf("n=%d pieces<=%d: head %x last %x size %d, want %x %x %d", n, piece, head, last, ch.Size(), wantHead, wantLast, n)
			}
			if got := HeadFromBlocks(blocks, int64(n), last); got != wantHead {
				t.Errorf("n=%d: HeadFromBlocks = %x, want %x", n, got, wantHead)
			}
			if int64(len(blocks)) != int64(n/BlockSize) {
				t.Errorf("n=%d: %d blocks, want %d", n, len(blocks), n/BlockSize)
			}
		}
	}
}

// TestChainVectors pins the test vectors docs/evidence.md gives (computed
// there with sha256sum and xxd as well).
func TestChainVectors(t *testing.T) {
	for _, v := range vectors() {
		h, _ := refHead(v.data)
		ch := NewChain()
		ch.Write(v.data)
		got, _ := ch.Head()
		if hex.EncodeToString(h[:]) != v.head || hex.EncodeToString(got[:]) != v.head {
			t.Errorf("%s: head %x (reference %x), docs say %s", v.name, got, h, v.head)
		}
	}
}

type vector struct {
	name string
	data []byte
	head string
}

// vectors are the chain test vectors of docs/evidence.md.
func vectors() []vector {
	return []vector{
		{"empty", nil, "87039c328618d23582105402ee74d7db0777fd1ac46e7a446f461878ca1a22fb"},
		{"one line", []byte("{\"version\":2,\"width\":80,\"height\":24}\n"), "315c73ed42d125886db659282fa4ddf2cb051f83e3102668c32e1d4d9bcae8c1"},
		{"16 KiB + 1 of 'a'", bytes.Repeat([]byte("a"), BlockSize+1), "e9b9644e406af6340a8db36f9694bccddc9a87f9259b424170048f1759f586c0"},
	}
}
