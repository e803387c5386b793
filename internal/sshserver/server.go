// Package sshserver is `reel ssh`: an SSH server that records the sessions
// it hosts, under a policy file (internal/policy) that says who may log in
// as which local user, which sessions are recorded, to which recorders, and
// whether a session may run when no recorder is reachable.
//
// Users authenticate with public keys only, from their own
// ~/.ssh/authorized_keys or from a central file of "LOCALUSER [OPTIONS]
// KEYTYPE BASE64 [comment]" lines, read as sshd reads them (StrictModes,
// the key options that restrict a key). Sessions run as the local user:
// reel switches to it when it runs as root; a reel that is not root serves
// only its own user. Interactive shells get a pty; commands run with or
// without one; the sftp subsystem runs the system's sftp-server. Port,
// agent and X11 forwarding are refused: they would carry data past the
// recording.
//
// A recorded session streams its terminal output (and window sizes, and
// with the policy's inputRecording what is typed while the terminal
// echoes) through internal/sender. Under enforceRecorder (fail closed)
// a session is refused if no recorder can be reached and ended if its
// recorder is lost; otherwise (fail open) it goes on unrecorded, the
// server logs it loudly and the next recording's header notes the gap.
package sshserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/sender"
)

// Defaults for the Server's zero fields.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultFinishTimeout    = 10 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("sshserver: server closed")

// Server is an SSH server that records its sessions. Set the fields, then
// call Serve. HostKeys and Policy are required.
type Server struct {
	// HostKeys are the server's host keys (see LoadHostKeys).
	HostKeys []ssh.Signer
	// Policy returns the policy in force; it is asked at every login and
	// at the start of every session (policy.Holder.Get).
	Policy func() *policy.Policy
	// AuthorizedKeysFile is a central file of "LOCALUSER [OPTIONS] KEYTYPE
	// BASE64 [comment]" lines (see ParseAuthorizedKeys); "" for none. It
	// is re-read when it changes.
	AuthorizedKeysFile string
	// NoUserKeys disables reading users' ~/.ssh/authorized_keys.
	NoUserKeys bool
	// Hostname is this host's name, matched against the policy's dst and
	// written in recordings. "" means os.Hostname.
	Hostname string
	// HostTags are this host's tags ("tag:prod"), for the policy's dst.
	HostTags []string
	// Recording connects to recorders. Nil means a zero sender.Client.
	// Its Report field is replaced by the server's.
	Recording *sender.Client
	// SFTPServer is the sftp-server program for the sftp subsystem. ""
	// looks in the usual places; "-" disables the subsystem.
	SFTPServer string
	// Log receives one line per login and session and every failure. Nil
	// discards.
	Log *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// HandshakeTimeout bounds the SSH handshake and authentication.
	// Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// FinishTimeout bounds the wait for the recorder to confirm a
	// recording when its session ends. Zero means DefaultFinishTimeout.
	FinishTimeout time.Duration

	initOnce sync.Once
	initErr  error
	cfg      *ssh.ServerConfig
	rec      *sender.Client
	keys     *keysFile
	users    *userDB    // set by tests, else made by init
	self     *localUser // set when not root: the only user served
	sftpPath string

	gaps gapLog

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closing   atomic.Bool
	connWG    sync.WaitGroup
}

func (s *Server) init() error {
	s.initOnce.Do(func() { s.initErr = s.doInit() })
	return s.initErr
}

func (s *Server) doInit() error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Policy == nil {
		return errors.New("sshserver: no policy")
	}
	if len(s.HostKeys) == 0 {
		return errors.New("sshserver: no host keys")
	}
	if s.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("sshserver: hostname: %w", err)
		}
		s.Hostname = h
	}
	rc := sender.Client{}
	if s.Recording != nil {
		rc = *s.Recording
	}
	if rc.Log == nil {
		rc.Log = s.Log
	}
	if rc.Now == nil {
		rc.Now = s.Now
	}
	rc.Report = s.reportOutcome
	s.rec = &rc
	if s.AuthorizedKeysFile != "" {
		kf, err := loadKeysFile(s.AuthorizedKeysFile, s.Log)
		if err != nil {
			return fmt.Errorf("sshserver: %w", err)
		}
		s.keys = kf
	}
	if s.users == nil {
		s.users = newUserDB()
	}
	if s.self == nil && os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("sshserver: current user: %w", err)
		}
		lu, err := s.users.lookup(u.Username)
		if err != nil {
			return fmt.Errorf("sshserver: %w", err)
		}
		s.self = lu
		s.Log.Warn("not running as root: serving only the user reel runs as", "user", lu.Name)
	}
	s.sftpPath = findSFTPServer(s.SFTPServer)
	s.cfg = &ssh.ServerConfig{
		// Sessions get their own checks; the config is shared and the
		// callbacks find the connection through ConnMetadata.
		PublicKeyCallback: s.checkPublicKey,
		ServerVersion:     "SSH-2.0-reel",
		MaxAuthTries:      6,
	}
	for _, k := range s.HostKeys {
		s.cfg.AddHostKey(k)
	}
	s.listeners = map[net.Listener]struct{}{}
	s.conns = map[*serverConn]struct{}{}
	return nil
}

// findSFTPServer returns the sftp-server to run, or "" if none.
func findSFTPServer(flag string) string {
	switch flag {
	case "-":
		return ""
	case "":
		for _, p := range []string{
			"/usr/lib/openssh/sftp-server",     // Debian, Ubuntu
			"/usr/libexec/openssh/sftp-server", // Fedora, RHEL
			"/usr/lib/ssh/sftp-server",         // Arch, Alpine
			"/usr/libexec/sftp-server",         // macOS, BSD
		} {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p
			}
		}
		return ""
	}
	return flag
}

// Serve accepts SSH connections on ln until Shutdown or Close, and then
// returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporary) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.connWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.connWG.Done()
			s.handleConn(nc)
		}()
	}
}

var errTemporary = errors.New("temporary")

// Shutdown stops accepting connections and waits, until ctx is done, for
// the open ones to end; then it closes them (their sessions' processes
// are hung up and killed) and waits for their recordings to be closed.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	s.closeListeners()
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.closeConns()
	<-done
	return ctx.Err()
}

// Close closes the listeners and every connection at once, and waits for
// the sessions to end.
func (s *Server) Close() error {
	if err := s.init(); err != nil {
		return err
	}
	s.closeListeners()
	s.closeConns()
	s.connWG.Wait()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) closeConns() {
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// serverConn is one SSH connection.
type serverConn struct {
	s      *Server
	nc     net.Conn
	sc     *ssh.ServerConn
	id     string // connectionID: shared by the sessions of the connection
	src    netip.AddrPort
	user   *localUser
	auth   authInfo
	ctx    context.Context
	cancel context.CancelFunc

	sessions sync.WaitGroup
}

// authInfo is what authentication found out, passed from the callback to
// the connection in the Permissions.
type authInfo struct {
	fingerprint string
	keySource   string // the authorized keys file and line
	keyOptions  string // the options of that line, as written
	noPTY       bool   // no-pty or restrict
	forced      bool   // command=
	command     string // the forced command
}

const (
	extFingerprint = "reel-fingerprint"
	extKeySource   = "reel-key-source"
	extKeyOptions  = "reel-key-options"
	extNoPTY       = "reel-no-pty"
	extCommand     = "reel-force-command"
)

func (a authInfo) extensions() map[string]string {
	ext := map[string]string{extFingerprint: a.fingerprint, extKeySource: a.keySource}
	if a.keyOptions != "" {
		ext[extKeyOptions] = a.keyOptions
	}
	if a.noPTY {
		ext[extNoPTY] = "1"
	}
	if a.forced {
		ext[extCommand] = a.command
	}
	return ext
}

func authInfoOf(p *ssh.Permissions) authInfo {
	ext := p.Extensions
	cmd, forced := ext[extCommand]
	return authInfo{
		fingerprint: ext[extFingerprint],
		keySource:   ext[extKeySource],
		keyOptions:  ext[extKeyOptions],
		noPTY:       ext[extNoPTY] == "1",
		forced:      forced,
		command:     cmd,
	}
}

func (c *serverConn) close() {
	c.cancel()
	c.nc.Close()
}

func newConnID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) handleConn(nc net.Conn) {
	src, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	ctx, cancel := context.WithCancel(context.Background())
	c := &serverConn{s: s, nc: nc, id: newConnID(), src: src, ctx: ctx, cancel: cancel}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		nc.Close()
		cancel()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		cancel()
		nc.Close()
	}()

	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	nc.SetDeadline(s.Now().Add(timeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		s.Log.Debug("ssh handshake failed", "remote", src, "err", err)
		return
	}
	nc.SetDeadline(time.Time{})
	c.sc = sc
	c.auth = authInfoOf(sc.Permissions)
	lu, err := s.resolveUser(sc.User())
	if err != nil { // the user vanished since authentication
		s.Log.Warn("login refused", "remote", src, "user", sc.User(), "err", err)
		sc.Close()
		return
	}
	c.user = lu
	s.Log.Info("login", "remote", src, "user", sc.User(), "connection", c.id,
		"fingerprint", c.auth.fingerprint, "key", c.auth.keySource, "key_options", c.auth.keyOptions)

	go func() {
		// Global requests: keepalives get "false", which OpenSSH takes
		// as proof of life; forwarding requests are refused.
		for req := range reqs {
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}()
	go func() {
		<-ctx.Done()
		sc.Close()
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.Prohibited, "reel ssh: only sessions are allowed (no forwarding: it would bypass recording)")
			continue
		}
		c.sessions.Add(1)
		go func() {
			defer c.sessions.Done()
			c.handleSession(nch)
		}()
	}
	// The connection is gone: end its sessions.
	cancel()
	c.sessions.Wait()
	s.Log.Info("connection closed", "remote", src, "user", sc.User(), "connection", c.id)
}

// resolveUser finds the local account for a login name and checks that
// this server may serve it.
func (s *Server) resolveUser(name string) (*localUser, error) {
	if s.self != nil && name != s.self.Name {
		return nil, fmt.Errorf("reel ssh is not running as root and serves only %q", s.self.Name)
	}
	return s.users.lookup(name)
}

// checkPublicKey authenticates a login: the key must be authorized for the
// local user named by the login name, and the policy must admit the user
// from this address as that local user.
func (s *Server) checkPublicKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	name := meta.User()
	fp := ssh.FingerprintSHA256(key)
	src, _ := netip.ParseAddrPort(meta.RemoteAddr().String())
	log := s.Log.With("remote", src, "user", name, "fingerprint", fp)
	lu, err := s.resolveUser(name)
	if err != nil {
		log.Info("login refused", "err", err)
		return nil, err
	}
	m, ok := s.authorizedKey(lu, key, src.Addr(), log)
	if !ok {
		log.Debug("key not authorized")
		return nil, errors.New("key not authorized")
	}
	d := s.Policy().SSH(s.policyRequest(name, lu.Name, src.Addr()))
	if d.Action != policy.Accept {
		log.Info("login refused by policy", "why", d.Why)
		return nil, errors.New("refused by policy")
	}
	a := authInfo{fingerprint: fp, keySource: m.source, keyOptions: m.opts.text, noPTY: m.opts.noPTY,
		forced: m.opts.hasCommand, command: m.opts.command}
	return &ssh.Permissions{Extensions: a.extensions()}, nil
}

func (s *Server) policyRequest(sshUser, localUser string, src netip.Addr) policy.SSHRequest {
	return policy.SSHRequest{
		User:      sshUser,
		Src:       src.Unmap(),
		LocalUser: localUser,
		Host:      s.Hostname,
		HostTags:  s.HostTags,
	}
}
