package recorder_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"tailscale.com/sessionrecording"
)

// BenchmarkIngestV2 uploads 32 concurrent recordings of 4 MiB each with
// Tailscale's client into a recorder on an fsstore, acks durable. Bytes/s
// is the aggregate ingest rate (client and server share the CPU).
func BenchmarkIngestV2(b *testing.B) {
	const streams, size = 32, 4 << 20
	var body bytes.Buffer
	body.Write(castHeader(b))
	for i := 0; body.Len() < size; i++ {
		body.Write(eventLine(float64(i)*0.001, fmt.Sprintf("%d %s\r\n", i, bytes.Repeat([]byte("output "), 1+i%300))))
	}
	lines := bytes.SplitAfter(body.Bytes(), []byte("\n"))
	h := start(b, nil)
	b.SetBytes(int64(streams * body.Len()))
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{h.addr}, dial)
				if err != nil {
					b.Error(err)
					return
				}
				for _, l := range lines {
					wc.Write(l)
				}
				wc.Close()
				if err := <-errc; err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}
