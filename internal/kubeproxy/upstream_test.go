package kubeproxy_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/reel-rec/reel/internal/kubeproxy"
)

// TestUpstreamResumesTLS: each exec takes an upstream connection of its
// own, so a new connection to a TLS API server must resume the TLS session
// instead of paying a full handshake.
func TestUpstreamResumesTLS(t *testing.T) {
	var mu sync.Mutex
	var resumed []bool
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		resumed = append(resumed, r.TLS.DidResume)
		mu.Unlock()
		// Like an upgraded connection: never back in the idle pool.
		w.Header().Set("Connection", "close")
	}))
	defer hs.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	up, err := kubeproxy.NewUpstream(&rest.Config{Host: hs.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range []http.RoundTripper{up.Anonymous, up.Own} {
		for range 2 {
			req, _ := http.NewRequest(http.MethodGet, hs.URL+"/api", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// Per transport: a full handshake, then a resumed one.
	if want := []bool{false, true, false, true}; len(resumed) != len(want) || resumed[1] != true || resumed[3] != true || resumed[0] || resumed[2] {
		t.Fatalf("TLS resumed per request = %v, want %v", resumed, want)
	}
}
