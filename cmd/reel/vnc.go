package main

import (
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
)

func init() {
	register(&command{name: "vnc", summary: "run a VNC proxy that records desktop sessions", run: runVNC})
}

const vncUsage = `
Usage: reel vnc --upstream HOST:PORT --policy FILE --users FILE [flags]

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

Examples:
    reel vnc --listen 0.0.0.0:5900 --upstream 127.0.0.1:5901 \
        --upstream-password-file /etc/reel/vncpasswd --policy /etc/reel/policy.hujson \
        --users /etc/reel/vnc-users --tls-cert cert.pem --tls-key key.pem
`

func runVNC(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "vnc", vncUsage)
	var (
		listen, wsListen, upstream, passFile, policyFile, usersFile string
		certFile, keyFile, host, recordBuffer, logFormat, logLevel  string
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case upstream == "":
		return usagef("--upstream is required")
	case policyFile == "":
		return usagef("--policy is required")
	case usersFile == "":
		return usagef("--users is required")
	case (certFile == "") != (keyFile == ""):
		return usagef("--tls-cert and --tls-key go together")
	}
	upHost, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return usagef("--upstream %q: want HOST:PORT", upstream)
	}
	if host == "" {
		host = upHost
	}
	var hostTags []string
	for _, t := range tags {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				if !strings.HasPrefix(tag, "tag:") {
					return usagef("--tag %q: want tag:NAME", tag)
				}
				hostTags = append(hostTags, tag)
			}
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
	if _, err := rfb.ReadUserFile(usersFile); err != nil {
		return err
	}
	holder, err := policy.Load(policyFile)
	if err != nil {
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
	srv := &rfb.Server{
		Upstream:         upstream,
		UpstreamPassword: password,
		Host:             host,
		HostTags:         hostTags,
		TLSConfig:        &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Auth:             &rfb.UserFile{Path: usersFile},
		Policy:           holder.Get,
		Recording:        &sender.Client{BufferSize: int(buf)},
		Log:              log,
		MinInterval:      minInterval,
		FinishTimeout:    finishTimeout,
		WebSocketOrigins: wsOrigins,
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	servers := 1
	if wsListen != "" {
		wln, err := net.Listen("tcp", wsListen)
		if err != nil {
			ln.Close()
			<-serveErr
			return fmt.Errorf("listen: %w", err)
		}
		servers++
		go func() { serveErr <- srv.ServeWebSocket(wln) }()
		log.Info("reel vnc: websocket listening", "addr", wln.Addr().String())
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go holder.Watch(watchCtx, log, policyInterval)
	log.Info("reel vnc listening", "addr", ln.Addr().String(), "upstream", upstream, "host", host, "tags", hostTags, "policy", policyFile)

	var first error
	select {
	case first = <-serveErr:
		servers--
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for sessions to end", "grace", "10s")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	for ; servers > 0; servers-- {
		<-serveErr
	}
	if first != nil && !errors.Is(first, rfb.ErrServerClosed) {
		return first
	}
	return nil
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
