package testutil

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a backend. Cut drops them all and
// refuses new ones, like a peer that died or a network that went away.
type Proxy struct {
	Addr    netip.AddrPort // where clients connect
	backend string

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
	wg    sync.WaitGroup
}

// StartProxy listens on a loopback port and forwards to backend until Cut
// or the end of the test.
func StartProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, Addr: netip.MustParseAddrPort(ln.Addr().String()), backend: backend}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Cut)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			c.Close()
			b.Close()
			continue
		}
		p.conns = append(p.conns, c, b)
		p.wg.Add(2)
		p.mu.Unlock()
		go func() { defer p.wg.Done(); io.Copy(b, c); b.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, b); c.Close() }()
	}
}

// Cut closes every forwarded connection and the listener, and waits for
// the forwarding goroutines to end. It is safe to call more than once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.dead = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// DeadAddr returns a loopback address where nothing listens (a port that
// was just free).
func DeadAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// FreeAddr returns a loopback "host:port" that was free a moment ago, for
// a server started as another process that needs its address up front.
// It never returns the same port twice in one test process: the kernel
// may hand a just-closed port out again at once, and two servers of one
// test (a --listen and a --debug-listen) must not get the same one.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for i := 0; ; i++ {
		ap := DeadAddr(t)
		handedOut.Lock()
		seen := handedOut.ports[ap.Port()]
		handedOut.ports[ap.Port()] = true
		handedOut.Unlock()
		if !seen || i == 100 {
			return ap.String()
		}
	}
}

// handedOut are the ports FreeAddr has returned.
var handedOut = struct {
	sync.Mutex
	ports map[uint16]bool
}{ports: map[uint16]bool{}}
