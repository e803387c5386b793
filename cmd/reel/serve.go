package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/recorder"
)

func init() {
	register(&command{name: "serve", summary: "run the recorder: receive recordings and store them", run: runServe})
}

const serveUsage = `
Usage: reel serve [flags]

Runs the recorder. It speaks Tailscale's session-recording protocol
(POST /record, POST /v2/record with acks, POST /v2/event), so Tailscale SSH,
the Tailscale Kubernetes operator, "reel ssh" and "reel kube-proxy" can all
send to it, and stores each recording as an asciicast v2 file:

    <dst>/<sender-node>/<timestamp>.cast

A byte is acknowledged to the sender only once it is on stable storage.
Recordings a crash left open are closed out (cut at the last complete line,
marked interrupted) at the next start.

Senders are identified by their client certificate under mutual TLS
(--tls-cert, --tls-key, --client-ca), otherwise by IP address; without
mutual TLS only addresses in --allow-from may send.

Examples:
    reel serve                                   # ./recordings, 127.0.0.1:8080
    reel serve --dst /var/lib/reel --listen 0.0.0.0:8080 --allow-from 10.0.0.0/8
    reel serve --listen :8443 --tls-cert srv.pem --tls-key srv.key --client-ca senders.pem
    TS_AUTHKEY=tskey-auth-... reel serve --tailnet --dst /var/lib/reel   # on the tailnet as "recorder", :80

In tailnet mode (--tailnet, see docs/tailnet.md) reel is a node of its own
on the tailnet, like tsrecorder, and names each sender by its stable node ID.
`

type serveFlags struct {
	dst, hostname, stateDir, listen string
	tlsCert, tlsKey, clientCA       string
	allowFrom                       string
	debugListen                     string
	minFree                         string
	logFormat, logLevel             string
	index                           string
	noV2                            bool
	ackInterval, shutdownGrace      time.Duration
	maxLine                         int
	s3                              *s3Flags
	tailnet                         *tailnetFlags
}

func runServe(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "serve", serveUsage)
	var f serveFlags
	fs.StringVar(&f.dst, "dst", envOr(env, "./recordings", "TSRECORDER_DST"), "where recordings go: a directory, or s3://endpoint (TLS) or s3+http://host:port with --bucket; see docs/storage.md (env TSRECORDER_DST)")
	fs.StringVar(&f.hostname, "hostname", envOr(env, "recorder", "TSRECORDER_HOSTNAME"), "this recorder's name, in logs and (tailnet mode) on the tailnet (env TSRECORDER_HOSTNAME)")
	fs.StringVar(&f.stateDir, "statedir", envOr(env, "", "TS_STATE_DIR"), "directory for the recorder's own state; default <dst>/.reel (env TS_STATE_DIR)")
	fs.StringVar(&f.listen, "listen", envOr(env, "127.0.0.1:8080", "REEL_LISTEN"), "address for the recording API (env REEL_LISTEN)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key for --tls-cert (PEM)")
	fs.StringVar(&f.clientCA, "client-ca", "", "require client certificates signed by these CAs (PEM): mutual TLS; the sender's node is its certificate's identity")
	fs.StringVar(&f.allowFrom, "allow-from", "127.0.0.0/8,::1/128", "without mutual TLS, comma-separated CIDRs allowed to send recordings")
	fs.StringVar(&f.debugListen, "debug-listen", envOr(env, "", "REEL_DEBUG_LISTEN"), "address for /healthz and Prometheus /metrics; empty disables (env REEL_DEBUG_LISTEN)")
	fs.StringVar(&f.minFree, "min-free", "1GiB", "free-space reserve: below it new recordings are refused (running ones go on); bytes with unit (512MiB, 2GiB) or a percentage of the disk (5%); 0 disables")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&f.noV2, "no-v2", false, "answer only the v1 API (POST /record), like a recorder older than v2")
	fs.DurationVar(&f.ackInterval, "ack-interval", recorder.DefaultAckInterval, "how often live recordings are synced and acknowledged (at most 4s)")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long live recordings may go on before they are ended and stored as interrupted")
	f.s3 = addS3Flags(fs, env)
	fs.StringVar(&f.index, "index", envOr(env, "", "REEL_INDEX"), "the search index: a SQLite file, postgres://user@host/db, or off; default <statedir>/index.db (env REEL_INDEX); see reel index --help")
	fs.IntVar(&f.maxLine, "max-line", 0, "longest asciicast line accepted before a recording is flagged malformed (default 64 MiB); it is stored either way")
	f.tailnet = addTailnetFlags(fs, env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.tailnet.afterParse(fs, env, &f); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if f.ackInterval <= 0 || f.ackInterval > 4*time.Second {
		return usagef("--ack-interval must be between 0 and 4s, got %s", f.ackInterval)
	}
	log, err := newLogger(env.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return usageError{err.Error()}
	}
	return serve(ctx, env, f, log)
}

func serve(ctx context.Context, env *cmdEnv, f serveFlags, log *slog.Logger) error {
	if f.stateDir == "" && !strings.Contains(f.dst, "://") {
		f.stateDir = filepath.Join(f.dst, ".reel")
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if f.clientCA != "" && f.tlsCert == "" {
		return usagef("--client-ca needs --tls-cert and --tls-key")
	}
	allow, err := parseCIDRs(f.allowFrom)
	if err != nil {
		return usagef("--allow-from: %v", err)
	}
	if err := os.MkdirAll(f.stateDir, 0o750); err != nil && f.stateDir != "" {
		return fmt.Errorf("state dir: %w", err)
	}

	minFreeDir := f.dst
	if isS3(f.dst) {
		minFreeDir = f.stateDir // the S3 spool's disk
	}
	minFree, err := parseMinFree(f.minFree, minFreeDir)
	if err != nil {
		return usagef("--min-free: %v", err)
	}
	st, err := openStore(storeOptions{dst: f.dst, minFree: minFree, stateDir: f.stateDir, log: log, s3: f.s3, getenv: env.getenv})
	if err != nil {
		return err
	}
	defer st.Close()
	repaired, err := st.Recover(ctx)
	for _, info := range repaired {
		log.Warn("closed out a recording interrupted by a crash", "key", info.Key, "size", info.Size)
	}
	if err != nil {
		log.Error("recovering interrupted recordings", "err", err)
	}

	srv := &recorder.Server{
		Store:       st,
		Log:         log,
		DisableV2:   f.noV2,
		AckInterval: f.ackInterval,
		MaxLine:     f.maxLine,
	}
	in, closeIndex := startIndexer(ctx, st, indexLocation(f.dst, f.stateDir, f.index), log)
	defer closeIndex() // after the recorder has stopped, before the store closes
	if in != nil {
		srv.Notify = in.Notify
	}
	mtls := false
	if f.tlsCert != "" {
		cfg, err := serverTLS(f.tlsCert, f.tlsKey, f.clientCA)
		if err != nil {
			return err
		}
		srv.TLSConfig = cfg
		mtls = f.clientCA != ""
	}
	srv.Identify = func(r *http.Request) (string, error) {
		if !mtls {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil {
				return "", fmt.Errorf("sender address %q: %w", r.RemoteAddr, err)
			}
			if !allowed(allow, ap.Addr()) {
				return "", fmt.Errorf("%s is not in --allow-from (and mutual TLS is off)", ap.Addr())
			}
		}
		return recorder.DefaultIdentify(r)
	}
	alarm := newSpaceAlarm(st, log)
	srv.Metrics = &recorder.Metrics{Extra: chainMetrics(alarm.writeMetrics, s3Metrics(st))}

	// Tailnet mode: join first (srv.Identify must be final before anything
	// is served); the plain listener then runs only if --listen was given.
	var tn *tailnetServer
	var tnErr <-chan error
	if f.tailnet != nil && f.tailnet.enabled {
		tn, err = startTailnet(ctx, env, f.tailnet, f.stateDir, f.hostname, srv, log)
		if err != nil {
			return err
		}
		defer tn.close()
		tnErr = tn.serveErr()
	}
	var ln net.Listener
	serveErr := make(chan error, 1)
	if f.listen != "" {
		ln, err = net.Listen("tcp", f.listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		go func() { serveErr <- srv.Serve(ln) }()
	} else {
		serveErr <- nil
	}

	var debugSrv *http.Server
	if f.debugListen != "" {
		dln, err := net.Listen("tcp", f.debugListen)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return fmt.Errorf("debug listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.Metrics)
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			if msg := alarm.unhealthy(); msg != "" {
				http.Error(w, msg, http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		})
		debugSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go debugSrv.Serve(dln)
		log.Info("debug endpoints", "addr", dln.Addr().String())
	}

	alarmCtx, stopAlarm := context.WithCancel(context.Background())
	defer stopAlarm()
	go alarm.watch(alarmCtx, 5*time.Second)

	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
	}
	if ln != nil {
		log.Info("reel recorder listening", "url", scheme+"://"+ln.Addr().String(), "dst", f.dst, "hostname", f.hostname,
			"v2", !f.noV2, "mtls", mtls, "allow_from", f.allowFrom, "min_free", f.minFree)
		fmt.Fprintf(env.stderr, "reel: recording API on %s://%s, storing to %s\n", scheme, ln.Addr(), f.dst)
	}

	plainErr := serveErr
	if ln == nil {
		plainErr = nil // tailnet only
	}
	select {
	case err := <-plainErr:
		return fmt.Errorf("serve: %w", err)
	case err := <-tnErr:
		return fmt.Errorf("serve on the tailnet: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", f.shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	drainStore(st, f.shutdownGrace, log)
	if debugSrv != nil {
		debugSrv.Close()
	}
	<-serveErr
	if tn != nil {
		<-tnErr
		if cerr := tn.close(); cerr != nil {
			log.Warn("leaving the tailnet", "err", cerr)
		}
	}
	log.Info("stopped")
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func serverTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca %s: no PEM certificates found", caFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return nil, err
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseMinFree reads "1GiB", "512MiB", "1000000", "5%" (of the disk holding
// dir) or "0".
func parseMinFree(s, dir string) (int64, error) {
	s = strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || v < 0 || v >= 100 {
			return 0, fmt.Errorf("bad percentage %q", s)
		}
		if v == 0 {
			return -1, nil
		}
		total, err := diskSize(dir)
		if err != nil {
			return 0, err
		}
		return int64(float64(total) * v / 100), nil
	}
	n, err := parseBytes(s)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return -1, nil // disabled
	}
	return n, nil
}

func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 512MiB, 2GiB)", s)
	}
	return int64(v * float64(mult)), nil
}

// newLogger builds the slog logger the flags ask for.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
