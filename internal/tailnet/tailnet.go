// Package tailnet joins reel to a tailnet as a node of its own, with
// tailscale.com/tsnet (userspace WireGuard, no TUN device, no root), and
// names the peer behind each connection with WhoIs.
//
// It is the only package in reel that imports tsnet. Everything else sees
// the small Node interface: listeners on the tailnet (plain and with the
// tailnet's TLS certificate) and WhoIs. Connections accepted from those
// listeners are marked, so that an HTTP handler can tell a tailnet request
// from one that came in through a plain listener (Via) and identify its
// sender by stable node ID (Identify), as tsrecorder does.
//
// Tailscale's log upload is off unless Config.Logs asks for it: the node
// then also tells the control server it runs with no logs (like tailscaled
// --no-logs-no-support).
package tailnet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/ipn"
	"tailscale.com/ipn/store"
	"tailscale.com/logtail"
	"tailscale.com/tsnet"
)

// Config says how to join the tailnet.
type Config struct {
	// Hostname is the node's name on the tailnet. Empty means "recorder",
	// tsrecorder's default.
	Hostname string
	// Dir holds the node's state (keys, certificates) unless State names
	// another store. Required: a node that forgets its key re-registers
	// as a new node on every start.
	Dir string
	// State, if set, is where the node keeps its state instead of
	// Dir/tailscaled.state: a file path, "kube:<secret>" (a Kubernetes
	// secret, when running in a pod), or "mem:" (forgotten at exit; only
	// with Ephemeral).
	State string
	// AuthKey authorizes the node on its first start. Once the node is
	// registered (its state holds a key) it is not used.
	AuthKey string
	// ControlURL is the coordination server, for a self-hosted one such as
	// Headscale. Empty means Tailscale's.
	ControlURL string
	// AdvertiseTags are the ACL tags the node asks for, e.g. "tag:recorder".
	AdvertiseTags []string
	// Ephemeral registers the node as ephemeral: the control server
	// removes it soon after it goes offline.
	Ephemeral bool
	// Logs uploads the node's logs to Tailscale's log service
	// (log.tailscale.com), as tailscaled does by default. Off unless the
	// user opts in: reel does not phone home.
	Logs bool
	// Log receives what the node has to tell the user (the login URL,
	// state changes) at Info, and its verbose backend log at Debug. Nil
	// discards.
	Log *slog.Logger
	// BackendLog, if set, receives the verbose backend log instead of
	// Log at Debug (tests use it).
	BackendLog func(format string, args ...any)
}

// Node is what reel uses of its tailnet node: declared here, small, so the
// recorder and a later web UI do not depend on tsnet.
type Node interface {
	// Listen listens on the node's tailnet addresses only; addr is
	// ":port". Connections it accepts are marked (see Via).
	Listen(network, addr string) (net.Listener, error)
	// ListenTLS is Listen with TLS, using the node's tailnet certificate
	// (the tailnet must have HTTPS enabled).
	ListenTLS(network, addr string) (net.Listener, error)
	// WhoIs names the peer at remoteAddr ("ip:port" of a tailnet
	// connection).
	WhoIs(ctx context.Context, remoteAddr string) (Identity, error)
	// Addrs returns the node's tailnet addresses.
	Addrs() []netip.Addr
	// Close leaves the tailnet.
	Close() error
}

// Identity is a tailnet peer, as WhoIs names it.
type Identity struct {
	// NodeID is the peer's stable node ID (e.g. "nXXXXXCNTRL"): the name
	// tsrecorder files its recordings under.
	NodeID string
	// Name is the peer's MagicDNS name without the trailing dot.
	Name string
	// Tags are the peer's ACL tags; empty for a user-owned node.
	Tags []string
	// User is the owner's login name, for a user-owned node.
	User string
	// Caps are the app capabilities the tailnet policy's grants give the
	// peer on this node, by name, each with its values (the web UI reads
	// its viewers' grants here).
	Caps map[string][]json.RawMessage
}

// Server is a running tsnet node. It implements Node.
type Server struct {
	ts  *tsnet.Server
	lc  *local.Client
	log *slog.Logger

	mu    sync.Mutex
	addrs []netip.Addr
}

var _ Node = (*Server)(nil)

// disableLogsOnce makes the opt-out process-wide, as logtail's switch is.
var disableLogsOnce sync.Once

// Start joins the tailnet and returns once the node is running (it has
// tailnet addresses), or ctx ends, or the node fails. On a first start
// without an auth key it logs the URL to visit and waits.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("tailnet: no state directory")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !cfg.Logs {
		disableLogsOnce.Do(func() {
			logtail.Disable()
			envknob.SetNoLogsNoSupport()
		})
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = "recorder"
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("tailnet: state directory: %w", err)
	}
	backendLog := cfg.BackendLog
	if backendLog == nil {
		backendLog = func(format string, args ...any) {
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "tailscale")
			}
		}
	}
	ts := &tsnet.Server{
		Dir:           cfg.Dir,
		Hostname:      hostname,
		AuthKey:       cfg.AuthKey,
		ControlURL:    cfg.ControlURL,
		AdvertiseTags: cfg.AdvertiseTags,
		Ephemeral:     cfg.Ephemeral,
		Logf:          backendLog,
		UserLogf: func(format string, args ...any) {
			log.Info(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "tailscale")
		},
	}
	if cfg.State != "" {
		if !store.HasKnownProviderPrefix(cfg.State) {
			if err := os.MkdirAll(filepath.Dir(cfg.State), 0o700); err != nil {
				return nil, fmt.Errorf("tailnet: state %q: %w", cfg.State, err)
			}
		}
		st, err := store.New(backendLog, cfg.State)
		if err != nil {
			return nil, fmt.Errorf("tailnet: state %q: %w", cfg.State, err)
		}
		ts.Store = st
	}
	if err := ts.Start(); err != nil {
		return nil, fmt.Errorf("tailnet: start: %w", err)
	}
	s := &Server{ts: ts, log: log}
	lc, err := ts.LocalClient()
	if err != nil {
		ts.Close()
		return nil, fmt.Errorf("tailnet: local client: %w", err)
	}
	s.lc = lc
	st, err := ts.Up(ctx)
	if err != nil {
		ts.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tailnet: joining %s: %w", controlName(cfg.ControlURL), context.Cause(ctx))
		}
		return nil, fmt.Errorf("tailnet: joining %s: %w", controlName(cfg.ControlURL), err)
	}
	s.addrs = append([]netip.Addr(nil), st.TailscaleIPs...)
	name := ""
	if st.Self != nil {
		name = strings.TrimSuffix(st.Self.DNSName, ".")
	}
	log.Info("joined the tailnet", "name", name, "addrs", fmt.Sprint(s.addrs), "control", controlName(cfg.ControlURL), "tailscale_logs", cfg.Logs)
	return s, nil
}

func controlName(u string) string {
	if u == "" {
		return ipn.DefaultControlURL
	}
	return u
}

// Listen listens on the node's tailnet addresses; see Node.
func (s *Server) Listen(network, addr string) (net.Listener, error) {
	ln, err := s.ts.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet: listen %s: %w", addr, err)
	}
	return &listener{Listener: ln}, nil
}

// ListenTLS listens with the node's tailnet certificate; see Node.
func (s *Server) ListenTLS(network, addr string) (net.Listener, error) {
	domains := s.ts.CertDomains()
	if len(domains) == 0 {
		return nil, errors.New("tailnet: listen TLS: the tailnet gives this node no certificate name; enable MagicDNS and HTTPS certificates in the tailnet's DNS settings")
	}
	ln, err := s.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, &tls.Config{
		GetCertificate: s.lc.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}), nil
}

// WhoIs names the peer at remoteAddr; see Node.
func (s *Server) WhoIs(ctx context.Context, remoteAddr string) (Identity, error) {
	who, err := s.lc.WhoIs(ctx, remoteAddr)
	if err != nil {
		if errors.Is(err, local.ErrPeerNotFound) {
			return Identity{}, fmt.Errorf("tailnet: WhoIs %s: not a peer of this node", remoteAddr)
		}
		return Identity{}, fmt.Errorf("tailnet: WhoIs %s: %w", remoteAddr, err)
	}
	if who.Node == nil || who.Node.StableID == "" {
		return Identity{}, fmt.Errorf("tailnet: WhoIs %s: the answer names no node", remoteAddr)
	}
	id := Identity{
		NodeID: string(who.Node.StableID),
		Name:   strings.TrimSuffix(who.Node.Name, "."),
	}
	if who.Node.IsTagged() {
		id.Tags = append([]string(nil), who.Node.Tags...)
	} else if who.UserProfile != nil {
		id.User = who.UserProfile.LoginName
	}
	for name, vals := range who.CapMap {
		if id.Caps == nil {
			id.Caps = map[string][]json.RawMessage{}
		}
		for _, v := range vals {
			id.Caps[string(name)] = append(id.Caps[string(name)], json.RawMessage(v))
		}
	}
	return id, nil
}

// Addrs returns the node's tailnet addresses as of joining.
func (s *Server) Addrs() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.Addr(nil), s.addrs...)
}

// Dial dials addr over the tailnet (tests and the benchmark send through
// it).
func (s *Server) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return s.ts.Dial(ctx, network, addr)
}

// Close leaves the tailnet: listeners close, connections break.
func (s *Server) Close() error {
	return s.ts.Close()
}
