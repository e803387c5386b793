package testutil

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// ServeHTTP serves h on a loopback port, over HTTP/1.1 and unencrypted
// HTTP/2 (h2c, as the recording API's v2 needs), until the end of the
// test.
func ServeHTTP(t testing.TB, h http.Handler) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs := &http.Server{Protocols: &p, Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// StartStalledRecorder starts a recording-API recorder (v2, h2c) on a
// loopback port that accepts uploads and keeps acking 0 but never reads
// their bodies: a recorder too slow for the sender, whose buffer must
// then fill. It stops at the end of the test.
func StartStalledRecorder(t testing.TB) netip.AddrPort {
	t.Helper()
	return serveUploads(t, func(r *http.Request, ack func(int)) {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				ack(0)
			}
		}
	})
}

// serveUploads serves the recording API's v2 (h2c) on a loopback port
// until the end of the test: 200 to the HEAD probe, and for each POST
// /v2/record a 200 whose body upload writes with ack, one ack frame a
// call.
func serveUploads(t testing.TB, upload func(r *http.Request, ack func(n int))) netip.AddrPort {
	t.Helper()
	return ServeHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/record" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodPost {
			return // the HEAD probe
		}
		rc := http.NewResponseController(w)
		rc.Flush()
		upload(r, func(n int) {
			fmt.Fprintf(w, `{"ack":%d}`+"\n", n)
			rc.Flush()
		})
	}))
}

// SlowRecorder is a recording-API recorder (v2, h2c) on a loopback port
// that takes uploads at a bounded pace and acks what it took: a working
// recorder slower than the session that writes to it.
type SlowRecorder struct {
	Addr netip.AddrPort

	mu     sync.Mutex
	bodies [][]byte
}

// StartSlowRecorder starts a SlowRecorder that reads at most 16 KiB of an
// upload every 5 ms (about 3 MB/s). It stops at the end of the test.
func StartSlowRecorder(t testing.TB) *SlowRecorder {
	t.Helper()
	s := &SlowRecorder{}
	s.Addr = serveUploads(t, func(r *http.Request, ack func(int)) {
		// A reader hands over one read of at most 16 KiB at a time; the
		// loop takes one per tick, and acks at every tick meanwhile, as a
		// real recorder acks an idle upload.
		type piece struct {
			b   []byte
			err error
		}
		pieces := make(chan piece)
		go func() {
			for {
				buf := make([]byte, 16<<10)
				n, err := r.Body.Read(buf)
				select {
				case pieces <- piece{buf[:n], err}:
				case <-r.Context().Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var body []byte
		for done := false; !done; {
			select {
			case <-r.Context().Done():
				return
			case p := <-pieces:
				body = append(body, p.b...)
				ack(len(body))
				if p.err != nil {
					done = true
					break
				}
				select { // the pace: one read per tick
				case <-r.Context().Done():
					return
				case <-tick.C:
				}
			case <-tick.C:
				ack(len(body))
			}
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
	})
	return s
}

// Uploads returns the bodies of the uploads that have ended.
func (s *SlowRecorder) Uploads() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}
