package tailnet

import (
	"context"
	"net"
	"net/netip"

	"tailscale.com/net/tsaddr"
)

// IsTailnetAddr reports whether a is in the ranges Tailscale gives nodes
// their addresses from (100.64.0.0/10 and fd7a:115c:a1e0::/48).
func IsTailnetAddr(a netip.Addr) bool { return tsaddr.IsTailscaleIP(a) }

// Dialer returns a dial function that reaches tailnet addresses through
// the node and every other address directly (net.Dialer): a program whose
// node runs in userspace, with no TUN device, then reaches recorders on
// the tailnet and off it alike.
func (s *Server) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	var direct net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ap, err := netip.ParseAddrPort(addr); err == nil && IsTailnetAddr(ap.Addr()) {
			return s.ts.Dial(ctx, network, addr)
		}
		return direct.DialContext(ctx, network, addr)
	}
}
