package recorder

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// limitListener enforces, as each connection is accepted and before
// anything is read from it, an address filter (--allow-from) and the
// limits on open connections in total and per sender address. A refused
// connection is closed at once, so a refused sender cannot hold
// connections (or file descriptors) open.
type limitListener struct {
	net.Listener
	s     *Server
	allow func(netip.Addr) bool // nil allows every address
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		// Refusals are counted before the connection is closed: whoever
		// sees it closed sees it counted.
		if l.allow != nil && !l.allow(addr) {
			l.s.refuse("allow_from", "refused connection: sender not in --allow-from", "remote", addr)
			c.Close()
			continue
		}
		if reason, limit := l.s.conns.acquire(addr, l.s.MaxConns, l.s.MaxConnsPerSender); reason != "" {
			l.s.refuse(reason, "refused connection: too many open", "remote", addr, "limit", limit)
			c.Close()
			continue
		}
		l.s.Metrics.connsOpen.Add(1)
		return &countedConn{Conn: c, release: func() {
			l.s.conns.release(addr)
			l.s.Metrics.connsOpen.Add(-1)
		}}, nil
	}
}

// remoteAddr is c's remote IP address (the zero Addr if it has none).
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// countedConn gives its slot back when it is closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close an HTTP/1 connection before it
// closes it, as it does for a bare *net.TCPConn.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connCounter counts open connections, in total and per address.
type connCounter struct {
	mu    sync.Mutex
	total int
	per   map[netip.Addr]int
}

// acquire takes a slot for a connection from addr, or says which limit
// (negative: none) refuses it.
func (cc *connCounter) acquire(addr netip.Addr, maxTotal, maxPer int) (reason string, limit int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if maxTotal >= 0 && cc.total >= maxTotal {
		return "conns", maxTotal
	}
	if maxPer >= 0 && cc.per[addr] >= maxPer {
		return "conns_per_sender", maxPer
	}
	if cc.per == nil {
		cc.per = map[netip.Addr]int{}
	}
	cc.total++
	cc.per[addr]++
	return "", 0
}

func (cc *connCounter) release(addr netip.Addr) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.total--
	if cc.per[addr]--; cc.per[addr] <= 0 {
		delete(cc.per, addr)
	}
}

// refuse counts a refusal and logs it, at most once per refusalLogEvery
// for each reason, with the number of refusals not logged since: a flood
// of refused connections must not flood the log.
func (s *Server) refuse(reason, msg string, attrs ...any) {
	s.Metrics.refused.add(reason)
	if n, ok := s.logLimit.allow(reason, time.Now()); ok {
		if n > 0 {
			attrs = append(attrs, "also_refused_since_last_logged", n)
		}
		s.Log.Warn(msg, append(attrs, "reason", reason)...)
	}
}

// refusalLogEvery is how often one kind of refusal is logged at most.
const refusalLogEvery = 10 * time.Second

// logLimiter lets one log line per key through every refusalLogEvery.
type logLimiter struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

// allow reports whether to log key now, and how many were skipped since
// the last line logged.
func (l *logLimiter) allow(key string, now time.Time) (skipped int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.skipped = map[string]time.Time{}, map[string]int{}
	}
	if len(l.last) > 1024 {
		// Keys can be senders: forget the quiet ones.
		for k, t := range l.last {
			if now.Sub(t) >= refusalLogEvery && l.skipped[k] == 0 {
				delete(l.last, k)
			}
		}
	}
	if last, seen := l.last[key]; seen && now.Sub(last) < refusalLogEvery {
		l.skipped[key]++
		return 0, false
	}
	skipped = l.skipped[key]
	l.last[key] = now
	delete(l.skipped, key)
	return skipped, true
}
