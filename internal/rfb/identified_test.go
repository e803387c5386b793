package rfb_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// serveIdentified serves p's proxy on one more loopback listener whose
// clients identify names (as a tailnet listener's are named by WhoIs),
// and returns its address.
func (p *proxy) serveIdentified(t testing.TB, identify func(context.Context, net.Conn) (rfb.Peer, error)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.srv.ServeIdentified(ln, identify) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, rfb.ErrServerClosed) {
			t.Errorf("ServeIdentified: %v", err)
		}
	})
	return ln.Addr().String()
}

// refusedReason logs in to addr with security type None and returns the
// reason the proxy refused with.
func refusedReason(t testing.TB, addr string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testutil.DefaultWait))
	c, err := rfb.NewClient(conn, rfb.ClientConfig{})
	var re *rfb.RefusedError
	if !errors.As(err, &re) {
		if c != nil {
			t.Fatalf("%s: logged in, want a refusal", addr)
		}
		t.Fatalf("%s: %v, want a refusal with a reason", addr, err)
	}
	return re.Reason
}

// TestIdentifiedClients: on a listener whose clients the network names
// (reel vnc on a tailnet, naming them by WhoIs), a real vncviewer logs in
// with security type None and no password; the policy decides on the
// named user; the recording's header carries the user and the node, and
// its screen equals the server's. A client the network cannot name, a
// tagged node that no rule admits, and a client that asks for VeNCrypt are
// refused with reasons.
func TestIdentifiedClients(t *testing.T) {
	d := startDesktop(t, 640, 480)
	r := startRecorder(t)
	pol, err := policy.Parse("p.hujson", []byte(fmt.Sprintf(`{
		"recorders": {"tag:rec": [%q]},
		"desktop": [{"action": "accept", "src": ["alice@example.com"], "dst": ["lab"], "recorder": ["tag:rec"], "enforceRecorder": true}],
	}`, r.addr)))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, d, []netip.AddrPort{r.addr}, true, func(s *rfb.Server) {
		s.Policy = func() *policy.Policy { return pol }
	})
	alice := rfb.Peer{User: "alice@example.com", Node: "laptop.tail-scale.ts.net", NodeID: "nLAPTOP"}
	var mu sync.Mutex
	var asked []string // the connections identify named
	named := p.serveIdentified(t, func(_ context.Context, c net.Conn) (rfb.Peer, error) {
		mu.Lock()
		asked = append(asked, c.RemoteAddr().String())
		mu.Unlock()
		return alice, nil
	})
	unknown := p.serveIdentified(t, func(context.Context, net.Conn) (rfb.Peer, error) {
		return rfb.Peer{}, errors.New("tailnet: WhoIs: not a peer of this node")
	})
	tagged := p.serveIdentified(t, func(context.Context, net.Conn) (rfb.Peer, error) {
		return rfb.Peer{Node: "ci.tail-scale.ts.net", NodeID: "nCI", Tags: []string{"tag:ci"}}, nil
	})

	if got := refusedReason(t, unknown); !strings.Contains(got, "cannot tell who you are") {
		t.Errorf("a client the network cannot name: refused with %q", got)
	}
	if got := refusedReason(t, tagged); !strings.Contains(got, "no policy rule lets node ci.tail-scale.ts.net use this desktop") {
		t.Errorf("a tagged node no rule admits: refused with %q", got)
	}
	if got := askVeNCrypt(t, named); !strings.Contains(got, "choose security type None") {
		t.Errorf("a client asking for VeNCrypt on a named listener: refused with %q", got)
	}
	if len(r.desktops(t)) != 0 {
		t.Fatalf("refused clients left recordings: %+v", r.desktops(t))
	}

	v := startViewerAt(t, named, nil, append([]string{"-SecurityTypes", "None"}, lossless...)...)
	var key string
	testutil.WaitForSeen(t, 60*time.Second, "a live desktop recording", func() bool {
		if ds := r.desktops(t); len(ds) == 1 && ds[0].Status == store.StatusLive {
			key = ds[0].Key
			return true
		}
		return false
	}, func() string { return p.logs.String() + v.out.String() })
	d.Must(t, "type", "--delay", "10", "echo named-by-the-network")
	d.Must(t, "key", "Return")
	matchLive(t, d, r, key, p)
	v.stop()
	testutil.WaitForSeen(t, 30*time.Second, "the recording to be complete", func() bool {
		ds := r.desktops(t)
		return len(ds) == 1 && ds[0].Status == store.StatusComplete
	}, func() string { return fmt.Sprintf("%+v\n%s", r.desktops(t), p.logs.String()) })
	_, ix := lastFrame(t, r.read(t, key))
	h := ix.Header
	if h.User != alice.User || h.SrcNode != alice.Node || h.SrcNodeID != alice.NodeID || len(h.SrcNodeTags) != 0 || h.Host != "lab" {
		t.Errorf("header %+v, want user %q and node %q (%s)", h, alice.User, alice.Node, alice.NodeID)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(asked, h.Source) {
		t.Errorf("header source %q is none of the connections identify named: %v", h.Source, asked)
	}
}

// askVeNCrypt speaks RFB 3.8 to addr, picks VeNCrypt whatever is
// offered, and returns the reason of the SecurityResult failure.
func askVeNCrypt(t testing.TB, addr string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testutil.DefaultWait))
	var v [12]byte
	if _, err := io.ReadFull(conn, v[:]); err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "RFB 003.008\n")
	var n [1]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil || n[0] == 0 {
		t.Fatalf("security types: %d, %v", n[0], err)
	}
	types := make([]byte, n[0])
	io.ReadFull(conn, types)
	if !slices.Equal(types, []byte{1}) {
		t.Errorf("offered security types %v, want only None (1)", types)
	}
	conn.Write([]byte{19}) // VeNCrypt
	var res [8]byte
	if _, err := io.ReadFull(conn, res[:]); err != nil || binary.BigEndian.Uint32(res[:4]) != 1 {
		t.Fatalf("SecurityResult %x, %v; want failed", res, err)
	}
	reason := make([]byte, min(binary.BigEndian.Uint32(res[4:]), 1024))
	io.ReadFull(conn, reason)
	return string(reason)
}
