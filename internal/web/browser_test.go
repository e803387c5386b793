package web

// The UI in a real headless Chromium (internal/web/webtest), against a
// UI server with in-test fakes of the index, authenticator and policy.

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
	"github.com/reel-rec/reel/internal/web/webtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	webtest.CloseBrowser()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ui is a UI server for a test, on loopback, with the in-test index,
// authenticator, policy and audit log, and a count of the bytes it sent
// per kind of response.
type ui struct {
	srv   *Server
	st    store.Store
	idx   *memIndex
	audit *testAudit
	base  string

	sent struct {
		cast, segments, live atomic.Int64
	}
}

func newUI(t *testing.T, st store.Store, adjust func(*Server)) *ui {
	t.Helper()
	if st == nil {
		st = memstore.New(memstore.Options{})
		t.Cleanup(func() { st.Close() })
	}
	u := &ui{st: st, idx: newMemIndex(), audit: &testAudit{}}
	u.srv = &Server{
		Store: st, Index: u.idx, Audit: u.audit, CacheDir: t.TempDir(),
		Log: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth: &testAuth{users: map[string]testUser{
			"alice": {password: "alice-pw", admin: true},
			"bob":   {password: "bob-pw"},
		}},
		Access: &testAccess{nodes: map[string][]string{"bob": {"nobody-node"}}},
	}
	if adjust != nil {
		adjust(u.srv)
	}
	h := u.srv.Handler()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n *atomic.Int64
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/cast"), strings.HasSuffix(p, "/download"):
			n = &u.sent.cast
		case strings.Contains(p, "/seg/"):
			n = &u.sent.segments
		}
		if n != nil {
			w = &countingWriter{ResponseWriter: w, n: n}
		}
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		u.srv.Close()
	})
	u.base = "http://" + ln.Addr().String()
	return u
}

// tlogWriter writes the server's log to the test's.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// countingWriter counts the body bytes of successful responses (what
// was sent of a recording, not error messages).
type countingWriter struct {
	http.ResponseWriter
	n    *atomic.Int64
	code int
}

func (c *countingWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	if c.code == 0 || c.code/100 == 2 {
		c.n.Add(int64(n))
	}
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
