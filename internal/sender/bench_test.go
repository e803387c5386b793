package sender

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
)

// textChunks returns n bytes of log-like text lines cut into 32 KiB
// writes, as a pty or pipe delivers them.
func textChunks(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_/=+()[]"
	var all []byte
	for len(all) < n {
		all = fmt.Appendf(all, "%08d ", len(all))
		for l := 40 + r.IntN(80); l > 0; l-- {
			all = append(all, alphabet[r.IntN(len(alphabet))])
		}
		all = append(all, '\r', '\n')
	}
	var chunks [][]byte
	for i := 0; i < n; i += 32 << 10 {
		chunks = append(chunks, all[i:min(i+32<<10, n)])
	}
	return chunks
}

// BenchmarkEncode is the sender's encoding cost: text output to
// asciicast lines.
func BenchmarkEncode(b *testing.B) {
	chunks := textChunks(8 << 20)
	r := newRecording(&Client{}, time.Time{}, nil)
	b.SetBytes(8 << 20)
	for b.Loop() {
		for _, c := range chunks {
			r.pend = r.pend[:0]
			r.encode(event{code: 'o', data: c})
		}
	}
}

// BenchmarkUpload streams text output to reel's recorder in process
// (memory store): the whole sender path plus the recorder's ingest.
func BenchmarkUpload(b *testing.B) {
	rr := startRecorder(b, false)
	chunks := textChunks(32 << 20)
	b.SetBytes(32 << 20)
	for b.Loop() {
		rec, err := (&Client{BufferSize: 64 << 20}).Start(context.Background(), []netip.AddrPort{rr.addr}, asciicast.Header{Width: 80, Height: 24})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range chunks {
			if err := rec.Output(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := rec.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
