package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/reel-rec/reel/internal/policy"
)

// Proxy is a trusted reverse proxy that authenticates viewers itself and
// names them in a request header.
type Proxy struct {
	// Trusted are the proxy's addresses. The header is believed only on
	// connections from them; from anywhere else a request that carries
	// it is refused.
	Trusted []netip.Prefix
	// Header names the viewer; DefaultProxyHeader if empty.
	Header string
}

// DefaultProxyHeader is the identity header a Proxy reads by default (the
// one oauth2-proxy and nginx's auth_request setups send).
const DefaultProxyHeader = "X-Forwarded-User"

func (p *Proxy) header() string {
	if p.Header == "" {
		return DefaultProxyHeader
	}
	return p.Header
}

func (p *Proxy) trusts(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(p.Trusted, func(pfx netip.Prefix) bool { return pfx.Contains(a) })
}

// ParseProxies reads --ui-trusted-proxy: comma-separated addresses and
// CIDRs, each checked as a policy's src is; at least one.
func ParseProxies(s string) ([]netip.Prefix, error) {
	out, err := policy.ParsePrefixes(s)
	if err == nil && len(out) == 0 {
		err = errors.New("no addresses")
	}
	return out, err
}

// ValidHeaderName reports whether s can name the identity header: an
// HTTP token, not one of the headers every client sends.
func ValidHeaderName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	switch http.CanonicalHeaderKey(s) {
	case "Cookie", "Authorization", "Host", "User-Agent", "Origin", "Referer", "Content-Type", "Content-Length":
		return false
	}
	return true
}

// proxyIdentity reads the viewer a trusted proxy names. The header must
// appear once and hold a valid name.
func parseProxyHeader(values []string) (string, error) {
	switch {
	case len(values) == 0 || values[0] == "":
		return "", errors.New("no identity")
	case len(values) > 1:
		return "", errors.New("the identity header appears more than once")
	case !ValidName(values[0]):
		return "", fmt.Errorf("bad identity %q: want 1 to 64 letters, digits, '.', '_', '+', '@' or '-'", clipForLog(values[0]))
	}
	return values[0], nil
}

// clientAddr returns the address of the client behind r: the peer's, or,
// from a trusted proxy, the last address the proxy added to
// X-Forwarded-For.
func clientAddr(r *http.Request, p *Proxy) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := ap.Addr().Unmap()
	if p == nil || !p.trusts(peer) {
		return peer, false
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) > 0 {
		parts := strings.Split(xff[len(xff)-1], ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
			return a.Unmap(), true
		}
	}
	return peer, true
}

// ViewerCapability is the tailnet app capability that grants viewers
// access, from the tailnet policy file's grants; see Grant.
const ViewerCapability = "github.com/reel-rec/reel/cap/viewer"

// TailnetPeer is a tailnet peer as WhoIs names it.
type TailnetPeer struct {
	// User is the owner's login name; "" for a tagged device.
	User string
	// Node is the peer's MagicDNS name, for messages.
	Node string
	// Caps are the app capabilities the tailnet grants the peer on this
	// node, by name, each with its values.
	Caps map[string][]json.RawMessage
}

// WhoIs names the tailnet peer at remoteAddr.
type WhoIs interface {
	WhoIs(ctx context.Context, remoteAddr string) (TailnetPeer, error)
}

// WhoIsFunc adapts a function to WhoIs.
type WhoIsFunc func(ctx context.Context, remoteAddr string) (TailnetPeer, error)

// WhoIs calls f.
func (f WhoIsFunc) WhoIs(ctx context.Context, remoteAddr string) (TailnetPeer, error) {
	return f(ctx, remoteAddr)
}

// ParseGrants reads the values of ViewerCapability. A value that is not
// a valid grant is an error: the tailnet policy has a mistake, and
// nothing of it is granted.
func ParseGrants(values []json.RawMessage) ([]Grant, error) {
	var out []Grant
	for i, raw := range values {
		var g Grant
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.DisallowUnknownFields()
		if err := d.Decode(&g); err != nil {
			return nil, fmt.Errorf("grant #%d: %v", i+1, err)
		}
		if d.More() {
			return nil, fmt.Errorf("grant #%d: more than one value", i+1)
		}
		for _, n := range g.Nodes {
			if !validGrantNode(n) {
				return nil, fmt.Errorf("grant #%d: bad node %q", i+1, clipForLog(n))
			}
		}
		for _, a := range g.Actions {
			if a != policy.ActionView && a != policy.ActionDownload {
				return nil, fmt.Errorf("grant #%d: unknown action %q", i+1, clipForLog(a))
			}
		}
		if len(g.Nodes) == 0 && !g.Admin {
			return nil, fmt.Errorf("grant #%d: no nodes", i+1)
		}
		out = append(out, g)
	}
	return out, nil
}

func validGrantNode(n string) bool {
	if n == "*" {
		return true
	}
	s := strings.TrimPrefix(n, "tag:")
	if s == "" || len(n) > 128 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// clipForLog shortens a value from a request for a message.
func clipForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
