package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/tailnet"
)

func init() {
	register(&command{name: "vnc", summary: "run a VNC proxy that records desktop sessions", run: runVNC})
}

const vncUsage = `
Usage: reel vnc --upstream HOST:PORT --policy FILE --users FILE [flags]
       reel vnc --tailnet --statedir DIR --upstream HOST:PORT --policy FILE [flags]

Runs an RFB (VNC) proxy in front of a VNC server. Users connect to it
with any VNC client that speaks VeNCrypt (TigerVNC's vncviewer, noVNC
through --websocket, Remmina, ...), log in with a user name and password
from --users, and reach the desktop if the policy's "desktop" rules let
them. The proxy logs in to the VNC server with the server's own password
(--upstream-password-file), which users never see. Sessions are recorded
as the policy says, as desktop recordings (docs/desktop-format.md) sent to
"reel serve"; see docs/vnc.md.

--users is a file of lines USER:HASH with bcrypt hashes (as written by
"htpasswd -nB USER") or argon2id hashes ($argon2id$v=19$...). Without
--tls-cert and --tls-key the proxy makes a self-signed certificate at
start and logs its SHA-256 fingerprint.

With --tailnet the proxy joins a tailnet as node --hostname (its keys in
--statedir) and serves VNC there on port 5900. Tailnet users log in with
no password (security type None; WireGuard already encrypts and
authenticates the connection): each is the tailnet user of the node they
come from, named by WhoIs, which is what the policy's users and groups
see (a tagged node has no user: only address and "*" entries match it).
Recorders on the tailnet are reached through the node. The plain
listener, with its VeNCrypt logins, then runs only if --listen is given.
The first start needs TS_AUTHKEY or TS_AUTHKEY_FILE, or a login by the
URL it logs.

Examples:
    reel vnc --listen 0.0.0.0:5900 --upstream 127.0.0.1:5901 \
        --upstream-password-file /etc/reel/vncpasswd --policy /etc/reel/policy.hujson \
        --users /etc/reel/vnc-users --tls-cert cert.pem --tls-key key.pem
    TS_AUTHKEY_FILE=/etc/reel/authkey reel vnc --tailnet --hostname lab-desktop \
        --statedir /var/lib/reel-vnc --upstream 127.0.0.1:5901 \
        --upstream-password-file /etc/reel/vncpasswd --policy /etc/reel/policy.hujson
`

// vncTailnetUsage is reel vnc's --tailnet.
const vncTailnetUsage = "join a tailnet as node --hostname and serve VNC there on :5900, each user named by WhoIs, with no password; the plain listener then runs only if --listen is given (env REEL_TAILNET=1). The first start needs TS_AUTHKEY or TS_AUTHKEY_FILE, or a login by the URL it logs"

// vncTailnetPort is where reel vnc serves on the tailnet: VNC's port.
const vncTailnetPort = ":5900"

func runVNC(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "vnc", vncUsage)
	var (
		listen, wsListen, upstream, passFile, policyFile, usersFile string
		certFile, keyFile, host, recordBuffer, logFormat, logLevel  string
		hostname, stateDir                                          string
		tags                                                        listFlag
		wsOrigins                                                   listFlag
		minInterval, policyInterval, finishTimeout                  time.Duration
	)
	fs.StringVar(&listen, "listen", envOr(env, "127.0.0.1:5900", "REEL_VNC_LISTEN"), "address for VNC clients (env REEL_VNC_LISTEN)")
	fs.StringVar(&wsListen, "websocket", "", "address for VNC over WebSocket with TLS (wss://), for noVNC; off when empty")
	fs.Var(&wsOrigins, "websocket-origin", "a web origin (host pattern) allowed to open the WebSocket besides the proxy's own; repeatable")
	fs.StringVar(&upstream, "upstream", "", "the VNC server, HOST:PORT")
	fs.StringVar(&passFile, "upstream-password-file", "", "file whose first line is the VNC server's password (VNC authentication); none: the server asks for none")
	fs.StringVar(&policyFile, "policy", envOr(env, "", "REEL_POLICY"), "the policy file (HuJSON; see docs/policy.md) (env REEL_POLICY)")
	fs.StringVar(&usersFile, "users", "", "file of USER:HASH lines (bcrypt or argon2id) that users log in with")
	fs.StringVar(&certFile, "tls-cert", "", "the proxy's TLS certificate (PEM)")
	fs.StringVar(&keyFile, "tls-key", "", "the proxy's TLS key (PEM)")
	fs.StringVar(&host, "host", "", "the desktop's name for the policy's dst (default: the upstream's host)")
	fs.Var(&tags, "tag", `a tag of the desktop for the policy's dst ("tag:lab"); repeat or separate with commas`)
	fs.StringVar(&recordBuffer, "record-buffer", "32MiB", "per session, how much recording may wait for a slow recorder; when it is full the recording is lost (and the session ends under enforceRecorder)")
	fs.DurationVar(&minInterval, "min-interval", rfb.DefaultMinInterval, "shortest time between two writes of changed screen regions to a recording")
	fs.DurationVar(&policyInterval, "policy-interval", 2*time.Second, "how often to check the policy file for changes")
	fs.DurationVar(&finishTimeout, "finish-timeout", rfb.DefaultFinishTimeout, "how long to wait at the end of a session for the recorder to confirm the recording")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	tn := addTailnetFlags(fs, env, vncTailnetUsage)
	fs.StringVar(&hostname, "hostname", "", `tailnet mode: this node's name on the tailnet (default: --host if given, else "vnc")`)
	fs.StringVar(&stateDir, "statedir", envOr(env, "", "REEL_VNC_STATE_DIR"), "tailnet mode: directory for the node's state (its keys); required with --tailnet (env REEL_VNC_STATE_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Without --tailnet the plain listener always runs; with it, only
	// when asked for. The plain and WebSocket listeners log users in.
	plain := !tn.enabled || isSet(fs, "listen") || env.getenv("REEL_VNC_LISTEN") != ""
	logins := plain || wsListen != ""
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case upstream == "":
		return usagef("--upstream is required")
	case policyFile == "":
		return usagef("--policy is required")
	case logins && usersFile == "" && tn.enabled:
		return usagef("--users is required for --listen and --websocket, where users log in")
	case logins && usersFile == "":
		return usagef("--users is required")
	case (certFile == "") != (keyFile == ""):
		return usagef("--tls-cert and --tls-key go together")
	case tn.enabled && stateDir == "":
		return usagef("--tailnet needs --statedir, where the node keeps its keys")
	}
	upHost, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return usagef("--upstream %q: want HOST:PORT", upstream)
	}
	if hostname == "" {
		hostname = cmp.Or(host, "vnc")
	}
	if host == "" {
		host = upHost
	}
	hostTags, err := tags.tags()
	if err != nil {
		return err
	}
	if tn.enabled {
		if _, err := tn.tags(); err != nil {
			return err
		}
		if err := tn.readAuthKey(env); err != nil {
			return err
		}
	}
	buf, err := parseBytes(recordBuffer)
	if err != nil || buf < 1<<20 {
		return usagef("--record-buffer %q: want a size of at least 1MiB, such as 32MiB", recordBuffer)
	}
	log, err := newLogger(env.stderr, logFormat, logLevel)
	if err != nil {
		return usageError{err.Error()}
	}
	var password string
	if passFile != "" {
		if password, err = rfb.ReadPasswordFile(passFile); err != nil {
			return err
		}
	}
	holder, err := policy.Load(policyFile)
	if err != nil {
		return err
	}
	srv := &rfb.Server{
		Upstream:         upstream,
		UpstreamPassword: password,
		Host:             host,
		HostTags:         hostTags,
		Policy:           holder.Get,
		Recording:        &sender.Client{BufferSize: int(buf)},
		Log:              log,
		MinInterval:      minInterval,
		FinishTimeout:    finishTimeout,
		WebSocketOrigins: wsOrigins,
	}
	if logins {
		if _, err := rfb.ReadUserFile(usersFile); err != nil {
			return err
		}
		var cert tls.Certificate
		if certFile != "" {
			if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
				return fmt.Errorf("TLS certificate: %w", err)
			}
		} else {
			if cert, err = selfSigned(host); err != nil {
				return err
			}
			sum := sha256.Sum256(cert.Certificate[0])
			log.Warn("vnc: no --tls-cert: using a self-signed certificate; clients must be told to trust it", "sha256", hex.EncodeToString(sum[:]))
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.Auth = &rfb.UserFile{Path: usersFile}
	}

	// Every listener is opened before any serves, so that a failure
	// leaves nothing behind.
	type server struct {
		ln    net.Listener
		serve func(net.Listener) error
	}
	var servers []server
	closeAll := func() {
		for _, s := range servers {
			s.ln.Close()
		}
	}
	var node *tailnet.Server
	if tn.enabled {
		if node, err = tn.join(ctx, stateDir, hostname, log); err != nil {
			return err
		}
		defer node.Close() // after Shutdown: sessions end first
		srv.Recording.Dial = node.Dialer()
		tln, err := node.Listen("tcp", vncTailnetPort)
		if err != nil {
			return fmt.Errorf("listen on the tailnet: %w", err)
		}
		servers = append(servers, server{tln, func(ln net.Listener) error { return srv.ServeIdentified(ln, whoIs(node)) }})
		for _, a := range node.Addrs() {
			addr := net.JoinHostPort(a.String(), strings.TrimPrefix(vncTailnetPort, ":"))
			log.Info("reel vnc: VNC on the tailnet at "+addr, "addr", addr)
		}
	}
	if plain {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen: %w", err)
		}
		servers = append(servers, server{ln, srv.Serve})
		log.Info("reel vnc listening", "addr", ln.Addr().String())
	}
	if wsListen != "" {
		wln, err := net.Listen("tcp", wsListen)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen: %w", err)
		}
		servers = append(servers, server{wln, srv.ServeWebSocket})
		log.Info("reel vnc: websocket listening", "addr", wln.Addr().String())
	}
	serveErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() { serveErr <- s.serve(s.ln) }()
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go holder.Watch(watchCtx, log, policyInterval)
	log.Info("reel vnc started", "upstream", upstream, "host", host, "tags", hostTags, "policy", policyFile, "tailnet", tn.enabled)

	running := len(servers)
	var first error
	select {
	case first = <-serveErr:
		running--
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for sessions to end", "grace", "10s")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	for ; running > 0; running-- {
		<-serveErr
	}
	if first != nil && !errors.Is(first, rfb.ErrServerClosed) {
		return first
	}
	return nil
}

// whoIs names a tailnet client by WhoIs of its address on the node.
func whoIs(node tailnet.Node) func(context.Context, net.Conn) (rfb.Peer, error) {
	return func(ctx context.Context, c net.Conn) (rfb.Peer, error) {
		id, err := node.WhoIs(ctx, c.RemoteAddr().String())
		if err != nil {
			return rfb.Peer{}, err
		}
		return rfb.Peer{User: id.User, Node: id.Name, NodeID: id.NodeID, Tags: id.Tags}, nil
	}
}

// selfSigned makes a certificate for host, valid for a year.
func selfSigned(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "reel vnc " + host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
