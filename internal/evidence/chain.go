package evidence

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// BlockSize is the size of the blocks the chain hashes: a recording is
// split into BlockSize-byte blocks from its first byte; the last block may
// be shorter.
const BlockSize = 16 << 10

// Hash is a SHA-256 digest.
type Hash [sha256.Size]byte

// chainIV is c₋₁, the chain value before the first block.
var chainIV = Hash(sha256.Sum256([]byte("reel-chain v1")))

// Chain hashes a byte stream as the evidence format defines it:
//
//	d_i  = SHA-256(block i)                      for every full block
//	c_-1 = SHA-256("reel-chain v1")
//	c_i  = SHA-256(c_(i-1) || d_i)
//	head(N) = SHA-256(c_(k-1) || uint64be(N) || SHA-256(bytes [kB, N)))
//
// where B is BlockSize and k = floor(N/B) is the number of full blocks.
// The head binds every byte and the length; it can be taken at any point
// (Head) without disturbing the chain. The zero value is not ready: use
// NewChain.
type Chain struct {
	c     Hash      // c_(k-1)
	k     int64     // full blocks so far
	part  hash.Hash // SHA-256 of the current partial block
	nPart int       // bytes in it
	// OnBlock, if set, is called with each full block's index and d_i as
	// the block completes.
	OnBlock func(i int64, d Hash)
}

// NewChain returns an empty chain.
func NewChain() *Chain {
	return &Chain{c: chainIV, part: sha256.New()}
}

// Size is the number of bytes hashed.
func (ch *Chain) Size() int64 { return ch.k*BlockSize + int64(ch.nPart) }

// Blocks is the number of full blocks hashed.
func (ch *Chain) Blocks() int64 { return ch.k }

// Write hashes p; it never fails.
func (ch *Chain) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		m := min(len(p), BlockSize-ch.nPart)
		ch.part.Write(p[:m])
		ch.nPart += m
		p = p[m:]
		if ch.nPart == BlockSize {
			var d Hash
			ch.part.Sum(d[:0])
			ch.part.Reset()
			ch.nPart = 0
			ch.c = link(ch.c, d)
			if ch.OnBlock != nil {
				ch.OnBlock(ch.k, d)
			}
			ch.k++
		}
	}
	return n, nil
}

// Head returns head(Size()) and the hash of the current partial block.
func (ch *Chain) Head() (head, last Hash) {
	ch.part.Sum(last[:0])
	return headOf(ch.c, ch.Size(), last), last
}

// link is c_i = SHA-256(c_(i-1) || d_i).
func link(c, d Hash) Hash {
	var b [2 * sha256.Size]byte
	copy(b[:], c[:])
	copy(b[sha256.Size:], d[:])
	return sha256.Sum256(b[:])
}

// headOf is SHA-256(c || uint64be(n) || last).
func headOf(c Hash, n int64, last Hash) Hash {
	var b [2*sha256.Size + 8]byte
	copy(b[:], c[:])
	binary.BigEndian.PutUint64(b[sha256.Size:], uint64(n))
	copy(b[sha256.Size+8:], last[:])
	return sha256.Sum256(b[:])
}

// HeadFromBlocks computes head(n) from the hashes of the full blocks and of
// the last, partial one: how a verifier checks that a chain file's block
// list is the one the seal signed.
func HeadFromBlocks(blocks []Hash, n int64, last Hash) Hash {
	c := chainIV
	for _, d := range blocks {
		c = link(c, d)
	}
	return headOf(c, n, last)
}
