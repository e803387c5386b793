// Package rfb is `reel vnc`: an RFB (VNC) proxy that authenticates users,
// asks the policy whether and how their desktop session is recorded,
// logs in to the real VNC server with its own password, and records what
// it passes on as a desktop recording (package desktop).
//
// Users authenticate with VeNCrypt: X509Plain (TLS with the proxy's
// certificate, then a user name and password) on the RFB port, and Plain
// inside the TLS of the WebSocket port (noVNC). The proxy decodes every
// framebuffer update it forwards; it offers the server only the encodings
// it can decode (Raw, CopyRect, RRE, Hextile, ZRLE, Tight with JPEG, and
// the cursor, desktop-size, name, fence and continuous-update
// pseudo-encodings), and the client gets only what it asked for, in the
// pixel format it set.
package rfb

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/sender"
)

var b64 = base64.RawStdEncoding

// Defaults for the Server's zero fields.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultMaxPixels        = 7680 * 4320
	DefaultMinInterval      = 50 * time.Millisecond
	DefaultFinishTimeout    = 30 * time.Second
	maxCutText              = 16 << 20
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("rfb: server closed")

// Server is the proxy. Set the fields, then call Serve (RFB over TCP) or
// ServeWebSocket (RFB over WebSocket, for noVNC).
type Server struct {
	// Upstream is the VNC server's address, host:port. Required.
	Upstream string
	// UpstreamPassword is the VNC server's password (VNC authentication;
	// only 8 characters count). Empty means the server asks for none.
	UpstreamPassword string
	// Host and HostTags name the desktop for the policy's dst.
	Host     string
	HostTags []string
	// TLSConfig holds the proxy's certificate: required, since users send
	// their password inside TLS.
	TLSConfig *tls.Config
	// Auth checks user names and passwords. Required.
	Auth Authenticator
	// Policy returns the current policy. Required.
	Policy func() *policy.Policy
	// Recording starts recordings. Nil means a zero sender.Client.
	Recording *sender.Client
	// Dial connects to the upstream. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log receives one line per session and every failure. Nil discards.
	Log *slog.Logger
	// HandshakeTimeout bounds the handshake with the client and the
	// upstream. Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPixels bounds the desktop size. Zero means DefaultMaxPixels (8K).
	MaxPixels int
	// MinInterval is the shortest time between two writes of changed
	// regions to the recording. Zero means DefaultMinInterval.
	MinInterval time.Duration
	// FinishTimeout bounds the wait at the end of a session for the
	// recorder to confirm the recording.
	FinishTimeout time.Duration
	// WebSocketOrigins are the origins (host patterns, as for
	// path.Match) allowed to open the WebSocket besides the proxy's own.
	WebSocketOrigins []string
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
	nextID    atomic.Uint64
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Serve accepts RFB connections on ln until Shutdown. Users log in with
// VeNCrypt (X509Plain: TLS, then a user name and password checked by
// Auth).
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, listenMode{})
}

// A Peer is a client that the network it came through has named, such as
// a tailnet peer named by WhoIs: it logs in with no password.
type Peer struct {
	// User is who the policy's user and group entries and the
	// recording's header name: a tailnet login name
	// ("alice@example.com"). It is empty for a tagged node, which then
	// matches only address and "*" entries.
	User string
	// Node is the client's node name (MagicDNS, without the final dot),
	// NodeID its stable node ID, Tags its ACL tags (a tagged node).
	Node, NodeID string
	Tags         []string
}

// describe names the peer in logs and refusals.
func (p Peer) describe() string {
	switch {
	case p.User != "":
		return p.User
	case p.Node != "":
		return "node " + p.Node
	}
	return "an unnamed client"
}

// ServeIdentified accepts RFB connections on ln until Shutdown, naming
// each client with identify instead of a login: for a tailnet listener,
// WhoIs of the connection's remote address. Clients are offered security
// type None, so ln must carry only connections that the network has
// already encrypted and authenticated (a tailnet's WireGuard). A client
// that identify cannot name is refused, with a reason it shows. TLSConfig
// and Auth are not used.
func (s *Server) ServeIdentified(ln net.Listener, identify func(ctx context.Context, c net.Conn) (Peer, error)) error {
	if identify == nil {
		return errors.New("rfb: ServeIdentified needs an identify function")
	}
	return s.serve(ln, listenMode{identify: identify})
}

// listenMode is how a listener's clients log in: VeNCrypt X509Plain (the
// zero value), VeNCrypt Plain inside a WebSocket's TLS (ws), or named by
// the network (identify).
type listenMode struct {
	ws       bool
	identify func(ctx context.Context, c net.Conn) (Peer, error)
}

func (s *Server) serve(ln net.Listener, mode listenMode) error {
	switch {
	case s.Policy == nil || s.Upstream == "":
		return errors.New("rfb: Server needs Upstream and Policy")
	case mode.identify == nil && (s.TLSConfig == nil || s.Auth == nil):
		return errors.New("rfb: Server needs TLSConfig and Auth for clients that log in")
	}
	if !s.track(ln, nil, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.track(ln, nil, false)
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.handleConn(c, mode)
	}
}

// handleConn runs one session in its own goroutine.
func (s *Server) handleConn(c net.Conn, mode listenMode) {
	if !s.track(nil, c, true) {
		c.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.track(nil, c, false)
		defer c.Close()
		s.session(c, mode)
	}()
}

func (s *Server) track(ln net.Listener, c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners == nil {
		s.listeners, s.conns = map[net.Listener]struct{}{}, map[net.Conn]struct{}{}
	}
	if add && s.closed {
		return false
	}
	switch {
	case ln != nil && add:
		s.listeners[ln] = struct{}{}
	case ln != nil:
		delete(s.listeners, ln)
	case add:
		s.conns[c] = struct{}{}
	default:
		delete(s.conns, c)
	}
	return true
}

// Shutdown stops accepting, waits until ctx is done for sessions to end,
// then closes the rest (their recordings are finished as far as they got).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// refusal is a handshake failure with the reason the client is shown.
type refusal struct {
	reason string // for the client
	err    error  // for the log
}

func (r *refusal) Error() string {
	if r.err != nil {
		return r.reason + ": " + r.err.Error()
	}
	return r.reason
}

func refuse(reason string, err error) error { return &refusal{reason, err} }

// sendFailure sends a SecurityResult "failed" with a reason (RFB 3.8).
func sendFailure(w io.Writer, reason string) {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(len(reason)))
	w.Write(append(b, reason...))
}

// session is one client connection, from the handshake to the end.
func (s *Server) session(raw net.Conn, mode listenMode) {
	id := s.connID()
	log := s.log().With("conn", id, "remote", raw.RemoteAddr().String())
	hsTimeout := orDur(s.HandshakeTimeout, DefaultHandshakeTimeout)
	raw.SetDeadline(time.Now().Add(hsTimeout))

	var conn net.Conn
	var peer Peer
	var err error
	if mode.identify != nil {
		conn = raw
		peer, err = s.identifiedHandshake(raw, mode.identify, hsTimeout)
	} else {
		conn, peer.User, err = s.clientHandshake(raw, mode.ws)
	}
	if err != nil {
		log.Warn("vnc: refused", "user", peer.User, "err", err)
		return
	}
	log = log.With("user", peer.User)
	if peer.NodeID != "" {
		log = log.With("node", peer.Node, "nodeID", peer.NodeID)
	}
	src := addrOf(raw.RemoteAddr())
	d := s.Policy().Desktop(policy.DesktopRequest{User: peer.User, Src: src, Host: s.Host, HostTags: s.HostTags})
	if d.Action != policy.Accept {
		log.Warn("vnc: refused by policy", "why", strings.Join(d.Why, "; "))
		sendFailure(conn, "reel: access denied: no policy rule lets "+peer.describe()+" use this desktop")
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), hsTimeout)
	up, init, err := s.dialUpstream(ctx)
	cancel()
	if err != nil {
		log.Error("vnc: upstream", "upstream", s.Upstream, "err", err)
		sendFailure(conn, "reel: cannot connect to the desktop")
		return
	}
	defer up.Close()
	s.track(nil, up, true)
	defer s.track(nil, up, false)

	var rec *sender.Recording
	var rcd *recorder
	if d.Record {
		h := desktop.Header{
			Width: init.w, Height: init.h, Start: s.now(), Protocol: "rfb",
			User: peer.User, Source: raw.RemoteAddr().String(), Upstream: s.Upstream, Host: s.Host,
			DesktopName: init.name, ConnectionID: id, Keys: d.RecordKeys, Clipboard: d.RecordClipboard,
			SrcNode: peer.Node, SrcNodeID: peer.NodeID, SrcNodeTags: peer.Tags,
		}
		rec, rcd, err = s.startRecording(d, h)
		if err != nil {
			if d.EnforceRecorder {
				log.Error("vnc: refused: cannot record the session (enforceRecorder)", "err", err)
				sendFailure(conn, "reel: this session must be recorded, and no recorder can be reached; try again later")
				return
			}
			log.Warn("vnc: session not recorded: no recorder reachable (fail open)", "err", err)
			rec, rcd = nil, nil
		}
	}
	// SecurityResult OK, then the client's ClientInit (its shared flag
	// is not passed on: the upstream was asked to share), then our
	// ServerInit, the upstream's.
	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		s.endRecording(log, rec, rcd)
		return
	}
	var ci [1]byte
	if _, err := io.ReadFull(conn, ci[:]); err != nil {
		s.endRecording(log, rec, rcd)
		return
	}
	if _, err := conn.Write(init.raw); err != nil {
		s.endRecording(log, rec, rcd)
		return
	}
	raw.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	log.Info("vnc: session started", "upstream", s.Upstream, "recorded", rec != nil, "recorder", recorderOf(rec), "size", fmt.Sprintf("%dx%d", init.w, init.h))

	err = s.relay(conn, up, init, rec, rcd, d.EnforceRecorder, log)
	s.endRecording(log, rec, rcd)
	log.Info("vnc: session ended", "err", err)
}

func recorderOf(rec *sender.Recording) string {
	if rec == nil {
		return ""
	}
	return rec.Recorder().String()
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) connID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clientHandshake runs the version and security handshake with the client
// and returns the (TLS) connection and the authenticated user. A refusal
// has been sent to the client when it returns an error.
func (s *Server) clientHandshake(c net.Conn, ws bool) (net.Conn, string, error) {
	if _, err := io.WriteString(c, "RFB 003.008\n"); err != nil {
		return nil, "", err
	}
	var v [12]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return nil, "", err
	}
	if string(v[:]) != "RFB 003.008\n" {
		// Older clients cannot take a reason; say nothing.
		return nil, "", fmt.Errorf("rfb: client speaks %q; reel needs RFB 3.8", v[:11])
	}
	if _, err := c.Write([]byte{1, secVeNCrypt}); err != nil {
		return nil, "", err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:1]); err != nil {
		return nil, "", err
	}
	if b[0] != secVeNCrypt {
		sendFailure(c, "reel: this proxy needs VeNCrypt (TLS with a user name and password)")
		return nil, "", fmt.Errorf("rfb: client chose security type %d", b[0])
	}
	// VeNCrypt 0.2.
	if _, err := c.Write([]byte{0, 2}); err != nil {
		return nil, "", err
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return nil, "", err
	}
	if b[0] != 0 || b[1] != 2 {
		c.Write([]byte{1})
		return nil, "", fmt.Errorf("rfb: client's VeNCrypt version %d.%d", b[0], b[1])
	}
	sub := uint32(vencryptX509Plain)
	if ws {
		sub = vencryptPlain // TLS is the WebSocket's
	}
	msg := []byte{0, 1}
	msg = binary.BigEndian.AppendUint32(msg, sub)
	if _, err := c.Write(msg); err != nil {
		return nil, "", err
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return nil, "", err
	}
	if got := binary.BigEndian.Uint32(b[:4]); got != sub {
		c.Write([]byte{0})
		return nil, "", fmt.Errorf("rfb: client chose VeNCrypt subtype %d", got)
	}
	conn := c
	if !ws {
		if _, err := c.Write([]byte{1}); err != nil {
			return nil, "", err
		}
		tc := tls.Server(c, s.TLSConfig)
		if err := tc.Handshake(); err != nil {
			return nil, "", fmt.Errorf("rfb: TLS: %w", err)
		}
		conn = tc
	}
	// Plain: lengths, then user name and password.
	var l [8]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, "", err
	}
	ul, pl := binary.BigEndian.Uint32(l[:4]), binary.BigEndian.Uint32(l[4:])
	if ul > 1024 || pl > 1024 {
		sendFailure(conn, "reel: user name or password too long")
		return nil, "", errors.New("rfb: user name or password longer than 1024 bytes")
	}
	up := make([]byte, ul+pl)
	if _, err := io.ReadFull(conn, up); err != nil {
		return nil, "", err
	}
	user, pass := string(up[:ul]), string(up[ul:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Auth.Authenticate(ctx, user, pass); err != nil {
		sendFailure(conn, "reel: authentication failed")
		return nil, user, fmt.Errorf("rfb: authentication: %w", err)
	}
	return conn, user, nil
}

// identifiedHandshake runs the version and security handshake with a
// client that identify names: security type None, offered only once the
// client is named. A client that cannot be named is refused with a
// reason (no security types). The SecurityResult is sent by session.
func (s *Server) identifiedHandshake(c net.Conn, identify func(context.Context, net.Conn) (Peer, error), timeout time.Duration) (Peer, error) {
	if _, err := io.WriteString(c, "RFB 003.008\n"); err != nil {
		return Peer{}, err
	}
	var v [12]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return Peer{}, err
	}
	if string(v[:]) != "RFB 003.008\n" {
		return Peer{}, fmt.Errorf("rfb: client speaks %q; reel needs RFB 3.8", v[:11])
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	p, err := identify(ctx, c)
	cancel()
	if err != nil {
		sendNoTypes(c, "reel: cannot tell who you are: this address is not known on the network")
		return Peer{}, fmt.Errorf("rfb: identify: %w", err)
	}
	if _, err := c.Write([]byte{1, secNone}); err != nil {
		return p, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return p, err
	}
	if b[0] != secNone {
		sendFailure(c, "reel: no password is needed here: choose security type None")
		return p, fmt.Errorf("rfb: client chose security type %d", b[0])
	}
	return p, nil
}

// sendNoTypes refuses a client before security negotiation: zero security
// types, then the reason (RFB 3.8).
func sendNoTypes(w io.Writer, reason string) {
	b := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(reason)))
	w.Write(append(b, reason...))
}

// serverInit is the upstream's ServerInit.
type serverInit struct {
	raw  []byte
	w, h int
	pf   PixelFormat
	name string
}

// dialUpstream connects and logs in to the VNC server and exchanges
// ClientInit (shared) and ServerInit.
func (s *Server) dialUpstream(ctx context.Context) (net.Conn, *serverInit, error) {
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, "tcp", s.Upstream)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	init, err := s.upstreamHandshake(c)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, init, nil
}

func (s *Server) upstreamHandshake(c net.Conn) (*serverInit, error) {
	var v [12]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return nil, fmt.Errorf("rfb: upstream version: %w", err)
	}
	if !strings.HasPrefix(string(v[:]), "RFB 003.") {
		return nil, fmt.Errorf("rfb: upstream is not a VNC server (%q)", v[:])
	}
	if string(v[:]) < "RFB 003.008\n" {
		return nil, fmt.Errorf("rfb: upstream speaks %q; reel needs RFB 3.8", v[:11])
	}
	if _, err := io.WriteString(c, "RFB 003.008\n"); err != nil {
		return nil, err
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	if n[0] == 0 {
		return nil, fmt.Errorf("rfb: upstream refused: %s", readReason(c))
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(c, types); err != nil {
		return nil, err
	}
	want := byte(secNone)
	if s.UpstreamPassword != "" {
		want = secVNCAuth
	}
	if !strings.ContainsRune(string(types), rune(want)) {
		return nil, fmt.Errorf("rfb: upstream does not offer security type %d (offers %v)", want, types)
	}
	if _, err := c.Write([]byte{want}); err != nil {
		return nil, err
	}
	if want == secVNCAuth {
		var ch [16]byte
		if _, err := io.ReadFull(c, ch[:]); err != nil {
			return nil, err
		}
		resp, err := vncAuthResponse(s.UpstreamPassword, ch[:])
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(resp); err != nil {
			return nil, err
		}
	}
	var res [4]byte
	if _, err := io.ReadFull(c, res[:]); err != nil {
		return nil, err
	}
	if binary.BigEndian.Uint32(res[:]) != 0 {
		return nil, fmt.Errorf("rfb: upstream authentication failed: %s", readReason(c))
	}
	if _, err := c.Write([]byte{1}); err != nil { // ClientInit: shared
		return nil, err
	}
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	nl := binary.BigEndian.Uint32(hdr[20:])
	if nl > maxNameLen {
		return nil, fmt.Errorf("rfb: upstream desktop name of %d bytes", nl)
	}
	name := make([]byte, nl)
	if _, err := io.ReadFull(c, name); err != nil {
		return nil, err
	}
	init := &serverInit{raw: append(hdr, name...), w: int(binary.BigEndian.Uint16(hdr)), h: int(binary.BigEndian.Uint16(hdr[2:])), pf: parsePixelFormat(hdr[4:20]), name: string(name)}
	if err := init.pf.check(); err != nil {
		return nil, err
	}
	maxPx := s.MaxPixels
	if maxPx <= 0 {
		maxPx = DefaultMaxPixels
	}
	if init.w <= 0 || init.h <= 0 || init.w*init.h > maxPx {
		return nil, fmt.Errorf("rfb: upstream desktop size %dx%d beyond the limit of %d pixels", init.w, init.h, maxPx)
	}
	return init, nil
}

func readReason(r io.Reader) string {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return "(no reason)"
	}
	n := min(binary.BigEndian.Uint32(l[:]), 4096)
	b := make([]byte, n)
	io.ReadFull(r, b)
	return fmt.Sprintf("%q", b)
}

// startRecording starts the upload and the encoder.
func (s *Server) startRecording(d policy.DesktopDecision, h desktop.Header) (*sender.Recording, *recorder, error) {
	var head bufferWriter
	enc, err := desktop.NewEncoder(&head, h, 0)
	if err != nil {
		return nil, nil, err
	}
	c := s.Recording
	if c == nil {
		c = &sender.Client{}
	}
	rec, err := c.StartStream(context.Background(), d.Recorders, desktop.ContentType, head)
	if err != nil {
		return nil, nil, err
	}
	enc.SetWriter(sinkWriter(rec.Write))
	rcd := newRecorder(enc, h.Start, s.now, orDur(s.MinInterval, DefaultMinInterval), d.RecordKeys, d.RecordClipboard)
	return rec, rcd, nil
}

type bufferWriter []byte

func (b *bufferWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

func (s *Server) endRecording(log *slog.Logger, rec *sender.Recording, rcd *recorder) {
	if rec == nil {
		return
	}
	rcd.stop()
	ctx, cancel := context.WithTimeout(context.Background(), orDur(s.FinishTimeout, DefaultFinishTimeout))
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		log.Error("vnc: recording not confirmed by the recorder", "recorder", rec.Recorder().String(), "err", err)
		return
	}
	log.Info("vnc: recording finished", "recorder", rec.Recorder().String(), "bytes", rec.Sent())
}

// relay passes messages both ways until either side ends. It decodes the
// server's updates into the screen, and records. When the recording is
// lost and enforce is set, it ends the session.
func (s *Server) relay(client, up net.Conn, init *serverInit, rec *sender.Recording, rcd *recorder, enforce bool, log *slog.Logger) error {
	maxPx := s.MaxPixels
	if maxPx <= 0 {
		maxPx = DefaultMaxPixels
	}
	var sink screenSink = nopSink{}
	if rcd != nil {
		sink = rcd
	}
	scr, err := newScreen(init.w, init.h, init.pf, maxPx, sink)
	if err != nil {
		return err
	}
	if rcd != nil {
		rcd.mu.Lock()
		rcd.scr = scr
		rcd.mu.Unlock()
	}
	stop := func() { client.Close(); up.Close() }
	var lostErr atomic.Value
	if rec != nil {
		rcd.onErr = func(err error) {
			if enforce {
				lostErr.Store(err)
				log.Error("vnc: recording lost; ending the session (enforceRecorder)", "err", err)
				stop()
				return
			}
			log.Warn("vnc: recording lost; the session goes on unrecorded (fail open)", "err", err)
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-rec.Lost():
				rcd.mu.Lock()
				rcd.fail(rec.Err())
				rcd.mu.Unlock()
			case <-done:
			}
		}()
	}
	var pendingPF atomic.Pointer[PixelFormat]
	errc := make(chan error, 2)
	go func() {
		err := s.serverToClient(client, up, scr, rcd, &pendingPF)
		log.Debug("vnc: server to client ended", "err", err)
		errc <- err
	}()
	go func() {
		err := s.clientToServer(client, up, rcd, &pendingPF)
		log.Debug("vnc: client to server ended", "err", err)
		errc <- err
	}()
	err = <-errc
	stop()
	<-errc
	if le, ok := lostErr.Load().(error); ok {
		return le
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

type nopSink struct{}

func (nopSink) region(desktop.Rect)             {}
func (nopSink) copyRect(int, int, desktop.Rect) {}
func (nopSink) resize(int, int)                 {}
func (nopSink) cursor(*desktop.Cursor)          {}

// flusher flushes w when the reader r has nothing more buffered: bytes
// go out at once when nothing else is coming, and in batches otherwise.
func flushIfIdle(br *bufio.Reader, w *bufio.Writer) error {
	if br.Buffered() == 0 {
		return w.Flush()
	}
	return nil
}

// serverToClient reads the server's messages, decodes updates, and
// passes everything on.
func (s *Server) serverToClient(client, up net.Conn, scr *screen, rcd *recorder, pendingPF *atomic.Pointer[PixelFormat]) error {
	cw := bufio.NewWriterSize(client, 64<<10)
	t := newTee(up, cw)
	for {
		typ, err := t.u8()
		if err != nil {
			return err
		}
		switch typ {
		case 0: // FramebufferUpdate
			if pf := pendingPF.Swap(nil); pf != nil {
				if err := scr.setPixelFormat(*pf); err != nil {
					return err
				}
			}
			if rcd != nil {
				rcd.mu.Lock()
				err = scr.update(t)
				if err == nil {
					// Pass the update on before recording it.
					err = cw.Flush()
					rcd.updateDone()
				}
				rcd.mu.Unlock()
			} else {
				err = scr.update(t)
			}
		case 1: // SetColourMapEntries
			var b []byte
			if b, err = t.next(5); err != nil {
				return err
			}
			first, n := int(binary.BigEndian.Uint16(b[1:])), int(binary.BigEndian.Uint16(b[3:]))
			if first+n > maxColorMap {
				return fmt.Errorf("rfb: colour map entries %d..%d", first, first+n)
			}
			if b, err = t.next(6 * n); err != nil {
				return err
			}
			rgb := make([]uint32, n)
			for i := range rgb {
				rgb[i] = uint32(b[6*i])<<16 | uint32(b[6*i+2])<<8 | uint32(b[6*i+4])
			}
			scr.setColourMap(first, rgb)
			if rcd != nil {
				rcd.mu.Lock()
				scr.sink.region(desktop.Rect{W: scr.fb.W, H: scr.fb.H})
				rcd.mu.Unlock()
			}
		case 2: // Bell
		case 3: // ServerCutText
			err = cutText(t, func(text []byte) {
				if rcd != nil {
					rcd.clipboard(true, text)
				}
			})
		case 150: // EndOfContinuousUpdates
		case 248: // ServerFence
			err = fence(t)
		default:
			return fmt.Errorf("rfb: unknown server message type %d", typ)
		}
		if err != nil {
			return err
		}
		if err := flushIfIdle(t.br, cw); err != nil {
			return err
		}
	}
}

// cutText reads a cut-text message after its type byte.
func cutText(t *tee, rec func([]byte)) error {
	b, err := t.next(7)
	if err != nil {
		return err
	}
	n := int32(binary.BigEndian.Uint32(b[3:]))
	if n < 0 || n > maxCutText {
		return fmt.Errorf("rfb: cut text of %d bytes", n)
	}
	text, err := t.next(int(n))
	if err != nil {
		return err
	}
	rec(text)
	return nil
}

// fence reads a fence message after its type byte.
func fence(t *tee) error {
	b, err := t.next(8)
	if err != nil {
		return err
	}
	if b[7] > 64 {
		return fmt.Errorf("rfb: fence payload of %d bytes", b[7])
	}
	return t.skip(int(b[7]))
}

// clientToServer reads the client's messages and passes them on; the
// encodings are filtered to what reel can decode.
func (s *Server) clientToServer(client, up net.Conn, rcd *recorder, pendingPF *atomic.Pointer[PixelFormat]) error {
	uw := bufio.NewWriterSize(up, 16<<10)
	t := newTee(client, uw)
	for {
		typ, err := t.u8()
		if err != nil {
			return err
		}
		switch typ {
		case 0: // SetPixelFormat
			var b []byte
			if b, err = t.next(19); err != nil {
				return err
			}
			pf := parsePixelFormat(b[3:])
			if err := pf.check(); err != nil {
				return err
			}
			pendingPF.Store(&pf)
		case 2: // SetEncodings: filtered, so not passed on as read
			t.w = nil
			encs, ferr := readEncodings(t)
			t.w = uw
			if ferr != nil {
				return ferr
			}
			// The type byte has been passed on already.
			msg := []byte{0}
			msg = binary.BigEndian.AppendUint16(msg, uint16(len(encs)))
			for _, e := range encs {
				msg = binary.BigEndian.AppendUint32(msg, uint32(e))
			}
			_, err = uw.Write(msg)
		case 3: // FramebufferUpdateRequest
			_, err = t.next(9)
		case 4: // KeyEvent
			var b []byte
			if b, err = t.next(7); err == nil && rcd != nil {
				rcd.key(b[0] != 0, binary.BigEndian.Uint32(b[3:]))
			}
		case 5: // PointerEvent
			var b []byte
			if b, err = t.next(5); err == nil && rcd != nil {
				rcd.pointer(int(binary.BigEndian.Uint16(b[1:])), int(binary.BigEndian.Uint16(b[3:])), b[0])
			}
		case 6: // ClientCutText
			err = cutText(t, func(text []byte) {
				if rcd != nil {
					rcd.clipboard(false, text)
				}
			})
		case 150: // EnableContinuousUpdates
			_, err = t.next(9)
		case 248: // ClientFence
			err = fence(t)
		case 251: // SetDesktopSize
			var b []byte
			if b, err = t.next(7); err != nil {
				return err
			}
			if b[5] > maxScreens {
				return fmt.Errorf("rfb: SetDesktopSize with %d screens", b[5])
			}
			err = t.skip(16 * int(b[5]))
		default:
			return fmt.Errorf("rfb: unknown client message type %d", typ)
		}
		if err != nil {
			return err
		}
		if err := flushIfIdle(t.br, uw); err != nil {
			return err
		}
	}
}

// readEncodings reads SetEncodings after its type byte and returns the
// encodings reel supports, in the client's order.
func readEncodings(t *tee) ([]int32, error) {
	b, err := t.next(3)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if b, err = t.next(4 * n); err != nil {
		return nil, err
	}
	var out []int32
	for i := range n {
		e := int32(binary.BigEndian.Uint32(b[4*i:]))
		if Supported(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ReadPasswordFile reads the upstream VNC password: the file's first line.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("rfb: password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("rfb: password file %s is empty", path)
	}
	return line, nil
}
