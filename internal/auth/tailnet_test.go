package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tailscale.com/tailcfg"

	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestTailnetViewer runs the UI's authentication on a real tailnet (an
// in-process control server and two tsnet nodes): the viewer is the
// tailnet user WhoIs names, with no password; the tailnet policy's grant
// of auth.ViewerCapability gives access; a request that did not come
// over the tailnet is refused.
func TestTailnetViewer(t *testing.T) {
	for _, kv := range tailnettest.NodeEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := tailnettest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	join := func(name string) *tailnet.Server {
		s, err := tailnet.Start(ctx, tailnet.Config{Hostname: name, Dir: filepath.Join(t.TempDir(), name), ControlURL: c.URL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	rec, laptop := join("rec"), join("laptop")

	// The adapter reel serve uses.
	whois := auth.WhoIsFunc(func(ctx context.Context, addr string) (auth.TailnetPeer, error) {
		id, err := rec.WhoIs(ctx, addr)
		return auth.TailnetPeer{User: id.User, Node: id.Name, Caps: id.Caps}, err
	})
	a := &auth.Authenticator{Tailnet: whois, Access: &auth.Access{}}
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", a.Handler()))
	mux.Handle("/api", a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := auth.ViewerFrom(r.Context())
		ok, _ := a.Access.Can(v, "web1", nil, policy.ActionView)
		fmt.Fprintf(w, "hello %s via %s; may view web1: %v", v.Name, v.Via, ok)
	})))
	srv := &http.Server{Handler: mux}
	tln, err := rec.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.Serve(tln) }()
	go func() { done <- srv.Serve(pln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		<-done
	})

	var recAddr string
	for _, ip := range rec.Addrs() {
		if ip.Is4() {
			recAddr = ip.String()
		}
	}
	client := &http.Client{Transport: &http.Transport{DialContext: laptop.Dial}}
	get := func(method, url string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := "http://" + recAddr
	status, body := get("GET", base+"/api", nil)
	if status != 200 || !regexp.MustCompile(`^hello user-\d+@fake-control\.example\.net via tailnet; may view web1: false$`).MatchString(body) {
		t.Fatalf("GET /api over the tailnet: %d %q", status, body)
	}
	status, body = get("GET", base+"/auth/session", nil)
	var info auth.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); status != 200 || err != nil || info.Via != "tailnet" || info.CSRF == "" || info.Login {
		t.Fatalf("GET /auth/session: %d %q", status, body)
	}
	if status, _ := get("POST", base+"/api", nil); status != 403 {
		t.Errorf("POST without a CSRF token: %d, want 403", status)
	}
	if status, body := get("POST", base+"/api", map[string]string{auth.CSRFHeader: info.CSRF}); status != 200 {
		t.Errorf("POST with the token: %d %q", status, body)
	}
	if status, _ := get("POST", base+"/auth/login", nil); status == 200 {
		t.Error("a password login on the tailnet succeeded")
	}

	// The tailnet policy grants viewing web1: the next requests see it.
	c.Server.SetGlobalAppCaps(tailcfg.PeerCapMap{
		auth.ViewerCapability: {tailcfg.RawMessage(`{"nodes":["web1"],"actions":["view"]}`)},
	})
	testutil.WaitForSeen(t, time.Minute, "the grant to reach the recorder", func() bool {
		_, body = get("GET", base+"/api", nil)
		return strings.HasSuffix(body, "may view web1: true")
	}, func() string { return body })

	// Not over the tailnet: WhoIs does not know the peer.
	resp, err := http.Get("http://" + pln.Addr().String() + "/api")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "who you are on the tailnet is not known") {
		t.Errorf("request from outside the tailnet: %d %q", resp.StatusCode, b)
	}
}
