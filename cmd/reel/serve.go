package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/busy"
	"github.com/reel-rec/reel/internal/evidence"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/tailnet"
)

func init() {
	register(&command{name: "serve", summary: "run the recorder: receive recordings and store them", run: runServe})
}

const serveUsage = `
Usage: reel serve [flags]

Runs the recorder. It speaks Tailscale's session-recording protocol
(POST /record, POST /v2/record with acks, POST /v2/event), so Tailscale SSH,
the Tailscale Kubernetes operator and "reel ssh" can all send to it, and
stores each recording as an asciicast v2 file:

    <dst>/<sender-node>/<timestamp>.cast

A byte is acknowledged to the sender only once it is on stable storage.
Recordings a crash left open are closed out (cut at the last complete line,
marked interrupted) at the next start.

Every recording is sealed (docs/evidence.md): a hash chain extended at
each sync, a seal signed at close with the key in <statedir>/evidence
("reel key show" prints its public half), and a signed manifest, so that
"reel verify" finds any change or deletion. With --policy, the policy's
retention rules are applied every --retention-every (docs/retention.md).

Senders are identified by their client certificate under mutual TLS
(--tls-cert, --tls-key, --client-ca), otherwise by IP address; without
mutual TLS only addresses in --allow-from may send.

Examples:
    reel serve                                   # ./recordings, 127.0.0.1:8080
    reel serve --dst /var/lib/reel --listen 0.0.0.0:8080 --allow-from 10.0.0.0/8
    reel serve --listen :8443 --tls-cert srv.pem --tls-key srv.key --client-ca senders.pem
    TS_AUTHKEY=tskey-auth-... reel serve --tailnet --dst /var/lib/reel   # on the tailnet as "recorder", :80
    reel serve --ui                              # and the web UI on http://127.0.0.1:8443 (docs/ui.md);
                                                 # the first start prints the admin's one-time password

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
	maxConns, maxConnsPerSender     int
	maxSessions, maxSessionsPerSndr int
	s3                              *s3Flags
	evidence                        *serveEvidence // retention.go
	tailnet                         *tailnetFlags
	access                          *accessFlags
	ui                              *uiFlags
}

func runServe(ctx context.Context, env *cmdEnv, args []string) error {
	if err := refuseSecretOnArgv(args); err != nil {
		return err
	}
	fs := newFlagSet(env, "serve", serveUsage)
	var f serveFlags
	fs.StringVar(&f.dst, "dst", envOr(env, "./recordings", "TSRECORDER_DST"), "where recordings go: a directory, or s3://endpoint (TLS) or s3+http://host:port with --bucket; see docs/storage.md (env TSRECORDER_DST)")
	fs.StringVar(&f.hostname, "hostname", envOr(env, "recorder", "TSRECORDER_HOSTNAME"), "this recorder's name, in logs and (tailnet mode) on the tailnet (env TSRECORDER_HOSTNAME)")
	fs.StringVar(&f.stateDir, "statedir", envOr(env, "", "TS_STATE_DIR"), "directory for the recorder's own state; default <dst>/.reel (env TS_STATE_DIR)")
	fs.StringVar(&f.listen, "listen", envOr(env, "127.0.0.1:8080", "REEL_LISTEN"), "address for the recording API (env REEL_LISTEN)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key for --tls-cert (PEM)")
	fs.StringVar(&f.clientCA, "client-ca", "", "require client certificates signed by these CAs (PEM): mutual TLS; the sender's node is its certificate's identity")
	fs.StringVar(&f.allowFrom, "allow-from", "127.0.0.0/8,::1/128", "without mutual TLS, comma-separated addresses and CIDRs allowed to send recordings; connections from anywhere else are closed as soon as they are accepted")
	fs.StringVar(&f.debugListen, "debug-listen", envOr(env, "", "REEL_DEBUG_LISTEN"), "address for /healthz and Prometheus /metrics; empty disables (env REEL_DEBUG_LISTEN)")
	fs.StringVar(&f.minFree, "min-free", "1GiB", "free-space reserve: below it new recordings are refused (running ones go on); bytes with unit (512MiB, 2GiB) or a percentage of the disk (5%); 0 disables")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&f.noV2, "no-v2", false, "answer only the v1 API (POST /record), like a recorder older than v2")
	fs.DurationVar(&f.ackInterval, "ack-interval", recorder.DefaultAckInterval, "how often live recordings are synced and acknowledged (at most 4s)")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long live recordings may go on before they are ended and stored as interrupted")
	fs.IntVar(&f.maxConns, "max-conns", recorder.DefaultMaxConns, "most connections open at once; more are closed as soon as they are accepted (logged, counted in reel_refused_total); -1 for no limit")
	fs.IntVar(&f.maxConnsPerSender, "max-conns-per-sender", recorder.DefaultMaxConnsPerSender, "most connections open at once from one IP address; -1 for no limit")
	fs.IntVar(&f.maxSessions, "max-sessions", recorder.DefaultMaxSessions, "most recordings received at once; more are refused with 503, so senders fail over; -1 for no limit")
	fs.IntVar(&f.maxSessionsPerSndr, "max-sessions-per-sender", recorder.DefaultMaxSessionsPerSender, "most recordings received at once from one sender node; -1 for no limit")
	f.s3 = addS3Flags(fs, env)
	fs.StringVar(&f.index, "index", envOr(env, "", "REEL_INDEX"), "the search index: a SQLite file, postgres://user@host/db, or off; default <statedir>/index.db (env REEL_INDEX); see reel index --help")
	fs.IntVar(&f.maxLine, "max-line", 0, "longest asciicast line accepted before a recording is flagged malformed (default 64 MiB); it is stored either way")
	f.evidence = &serveEvidence{}
	f.evidence.addFlags(fs, env)
	f.tailnet = addTailnetFlags(fs, env, serveTailnetUsage)
	f.access = addAccessFlags(fs, env)
	f.ui = addUIFlags(fs, env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.tailnet.afterParse(fs, env, &f); err != nil {
		return err
	}
	if err := f.access.check(f.tailnet.enabled); err != nil {
		return err
	}
	if err := f.ui.check(f.tailnet != nil && f.tailnet.enabled, indexLocation(f.dst, f.stateDir, f.index)); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if f.ackInterval <= 0 || f.ackInterval > 4*time.Second {
		return usagef("--ack-interval must be between 0 and 4s, got %s", f.ackInterval)
	}
	for name, v := range map[string]int{"--max-conns": f.maxConns, "--max-conns-per-sender": f.maxConnsPerSender, "--max-sessions": f.maxSessions, "--max-sessions-per-sender": f.maxSessionsPerSndr} {
		if v == 0 || v < -1 {
			return usagef("%s %d: want a positive number, or -1 for no limit", name, v)
		}
	}
	log, err := newLogger(env.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return usageError{err.Error()}
	}
	return serve(ctx, env, f, log)
}

// serve runs the recorder. Everything that can fail at start fails before
// the store is touched where it can; a start that fails after that
// removes the directories it made (startCleanup), so it leaves nothing
// behind.
func serve(ctx context.Context, env *cmdEnv, f serveFlags, log *slog.Logger) (err error) {
	fsDst := !strings.Contains(f.dst, "://")
	if fsDst {
		if fi, serr := os.Stat(f.dst); serr == nil && !fi.IsDir() {
			return usagef("--dst %s is not a directory: recordings are stored in a directory (or an s3:// bucket, see docs/storage.md)", f.dst)
		}
	}
	if f.stateDir == "" && fsDst {
		f.stateDir = filepath.Join(f.dst, ".reel")
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if f.clientCA != "" && f.tlsCert == "" {
		return usagef("--client-ca needs --tls-cert and --tls-key")
	}
	mtls := f.clientCA != ""
	allow, err := parseAllowFrom(f.allowFrom)
	if err != nil {
		return usagef("--allow-from: %v", err)
	}
	if len(allow) == 0 && !mtls && f.listen != "" {
		return usagef("--allow-from is empty and mutual TLS is off: no sender could send on --listen %s", f.listen)
	}
	minFreeDir := f.dst
	if isS3(f.dst) {
		minFreeDir = f.stateDir // the S3 spool's disk
	}
	minFree, err := parseMinFree(f.minFree, minFreeDir)
	if err != nil {
		return usagef("--min-free: %v", err)
	}
	var tlsCfg *tls.Config
	if f.tlsCert != "" {
		if tlsCfg, err = serverTLS(f.tlsCert, f.tlsKey, f.clientCA); err != nil {
			return err
		}
	}
	if !mtls && f.listen != "" && !isLoopbackListen(f.listen) && loopbackOnly(allow) {
		log.Warn("--listen accepts connections from the network, but --allow-from admits only loopback addresses: every other sender will be refused; set --allow-from to the senders' networks, or use mutual TLS (--client-ca)",
			"listen", f.listen, "allow_from", f.allowFrom)
	}

	// The policy (viewers rules, admins), before the store is touched: a
	// bad file fails the start.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	holder, err := f.access.loadPolicy(watchCtx, log)
	if err != nil {
		return err
	}
	// holder: the web UI's (--ui: f.access.openAccess) and retention's.

	cleanup := newStartCleanup(f.dst, f.stateDir, fsDst)
	defer func() {
		if err != nil {
			cleanup.run()
		}
	}()
	if f.stateDir != "" {
		if err := os.MkdirAll(f.stateDir, 0o750); err != nil {
			return fmt.Errorf("state directory %s: %w", f.stateDir, err)
		}
	}
	st, err := openStore(storeOptions{dst: f.dst, minFree: minFree, stateDir: f.stateDir, log: log, s3: f.s3, getenv: env.getenv})
	if err != nil {
		return storeOpenError(err, f, fsDst)
	}
	rst, closeStore, err := f.evidence.open(st, f.dst, f.stateDir, log)
	if err != nil {
		st.Close()
		return err
	}
	defer closeStore()
	repaired, rerr := rst.Recover(ctx)
	for _, info := range repaired {
		log.Warn("closed out a recording interrupted by a crash", "key", info.Key, "size", info.Size)
	}
	if rerr != nil {
		log.Error("recovering interrupted recordings", "err", rerr)
	}

	// Listen once recovered, so that a sender that connects is served;
	// a busy port fails the start, and the cleanup removes what it made.
	var ln, dln net.Listener
	if f.listen != "" {
		if ln, err = net.Listen("tcp", f.listen); err != nil {
			return fmt.Errorf("--listen %s: %w", f.listen, err)
		}
		defer func() {
			if err != nil {
				ln.Close()
			}
		}()
	}
	if f.debugListen != "" {
		if dln, err = net.Listen("tcp", f.debugListen); err != nil {
			return fmt.Errorf("--debug-listen %s: %w", f.debugListen, err)
		}
		defer func() {
			if err != nil {
				dln.Close()
			}
		}()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// busyRate is the rate of recording bytes received above which the
	// recorder counts as busy, and background work (the index's text, the
	// UI's segment cuts) leaves it the CPU (internal/busy): far above what
	// a fleet of interactive sessions sends, reached by bulk output (a cat
	// of a large file, a build log).
	const busyRate = 16 << 20
	srv := &recorder.Server{
		Store:                rst,
		Log:                  log,
		DisableV2:            f.noV2,
		AckInterval:          f.ackInterval,
		MaxLine:              f.maxLine,
		MaxConns:             f.maxConns,
		MaxConnsPerSender:    f.maxConnsPerSender,
		MaxSessions:          f.maxSessions,
		MaxSessionsPerSender: f.maxSessionsPerSndr,
		TLSConfig:            tlsCfg,
		Metrics:              recorder.NewMetrics(reg),
	}
	// The index follows the recorder (index.go); it never holds it up.
	// With the UI, it also tells the UI each node's tags.
	var tags *auth.TagMap
	if f.ui.enabled {
		tags = &auth.TagMap{}
	}
	// While the recorder takes a burst of data, the indexer yields it the
	// CPU and catches up after.
	isBusy := busy.Meter(srv.Metrics.BytesReceived, busyRate, time.Second, time.Now)
	in, closeIndex := startIndexer(ctx, st, indexLocation(f.dst, f.stateDir, f.index), tags, isBusy, log)
	defer closeIndex() // after the recorder has stopped, before the store closes
	// Retention deletes by the policy's rules, and takes what it deleted
	// out of the index.
	var forget evidence.Forgetter
	if in != nil {
		forget = in.Index
	}
	f.evidence.startRetention(holder, f.stateDir, forget, log)
	srv.Identify = func(r *http.Request) (string, error) {
		if !mtls {
			// The listener already closed connections from elsewhere;
			// this guards requests that reach the handler another way.
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
	// One hook, two listeners: the indexer, and the UI's live views. The
	// UI starts once the tailnet is up (it may listen there), but the
	// recorder may receive before that: changes go to it once it runs.
	var ui atomic.Pointer[uiServer]
	srv.Notify = func(key string, c recorder.Change) {
		if in != nil {
			in.Notify(key, c)
		}
		if u := ui.Load(); u != nil {
			u.notify(key, c)
		}
	}
	alarm := newSpaceAlarm(st, log)
	alarm.register(reg)
	if mr, ok := st.(metricsReporter); ok {
		reg.MustRegister(reporterCollector(mr))
	}

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
	if f.ui != nil && f.ui.enabled {
		var node *tailnet.Server
		if tn != nil {
			node = tn.node
		}
		var idx index.Index
		if in != nil {
			idx = in.Index
		}
		u, err := startUI(ctx, f.ui, uiDeps{store: st, stateDir: f.stateDir, tailnet: node, index: idx, tags: tags, holder: holder, access: f.access, busy: isBusy}, log)
		if err != nil {
			srv.Shutdown(context.Background())
			return err
		}
		defer u.close()
		ui.Store(u)
		fmt.Fprintf(env.stderr, "\nreel: the web UI is at %s\n", u.url)
		if msg := u.firstLogin; msg != "" {
			fmt.Fprintf(env.stderr, "reel: %s\n", msg)
		}
	}
	serveErr := make(chan error, 1)
	if ln != nil {
		go func() {
			if mtls {
				serveErr <- srv.Serve(ln)
				return
			}
			serveErr <- srv.ServeAllowed(ln, func(a netip.Addr) bool { return allowed(allow, a) })
		}()
	} else {
		serveErr <- nil
	}

	var debugSrv *http.Server
	if dln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			if msg := alarm.unhealthy(); msg != "" {
				http.Error(w, msg, http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		})
		debugSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
		go debugSrv.Serve(dln)
		log.Info("debug endpoints on http://"+dln.Addr().String(), "addr", dln.Addr().String())
	}

	alarmCtx, stopAlarm := context.WithCancel(context.Background())
	defer stopAlarm()
	go alarm.watch(alarmCtx, 5*time.Second)

	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
	}
	if ln != nil {
		url := scheme + "://" + ln.Addr().String()
		log.Info("recording API on "+url, "url", url, "dst", f.dst, "hostname", f.hostname,
			"v2", !f.noV2, "mtls", mtls, "allow_from", f.allowFrom, "min_free", f.minFree)
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
	serr := srv.Shutdown(sctx)
	f.evidence.stop(f.shutdownGrace, log)
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
	if serr != nil && !errors.Is(serr, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", serr)
	}
	return nil
}

// metricsReporter is implemented by stores that keep metrics of their own
// (s3store: its spool and uploads).
type metricsReporter interface {
	ReportMetrics(report func(name, help string, counter bool, value float64))
}

// reporterCollector exposes a metricsReporter's metrics to a registry.
func reporterCollector(mr metricsReporter) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		mr.ReportMetrics(func(name, help string, counter bool, v float64) {
			t := prometheus.GaugeValue
			if counter {
				t = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, nil), t, v)
		})
	})
}

// storeOpenError says in the user's words why the store did not open:
// another process holds its lock, or what else failed.
func storeOpenError(err error, f serveFlags, fsDst bool) error {
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	if errors.Is(err, store.ErrInUse) {
		return err // "another reel process (pid N) is using DIR"
	}
	if u := errors.Unwrap(err); fsDst && u != nil {
		return fmt.Errorf("cannot use %s for recordings: %w", f.dst, u)
	}
	return err
}

// startCleanup removes what a failed start made: the state directory and
// the recordings directory, if they did not exist before, as long as they
// hold nothing but empty directories, the lock files (which hold at most
// the holder's pid) and the evidence state a start makes before any
// recording (a new signing key, an empty manifest: startMade).
type startCleanup struct{ dirs []string }

// startMade are the files, besides locks, that a start makes in new
// directories before it can receive a recording: the signing key made on
// first start and its public key (also published in the store, as
// .evidence/keys/<keyid>.pub), the manifest's empty journal and its first
// head (.evidence/manifest/<keyid>/head). In a directory this start made,
// they sealed nothing.
var startMade = map[string]bool{"recorder.key": true, "recorder.pub": true, "manifest.journal": true, "manifest.json": true, "head": true}

func newStartCleanup(dst, stateDir string, fsDst bool) *startCleanup {
	c := &startCleanup{}
	for _, d := range []string{stateDir, dst} {
		if d == "" || (d == dst && !fsDst) {
			continue
		}
		if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
			c.dirs = append(c.dirs, d)
		} else if d == dst {
			// dst was there; its .reel and .evidence may be new.
			for _, sd := range []string{filepath.Join(dst, ".reel"), filepath.Join(dst, store.FilesDir)} {
				if sd == stateDir {
					continue
				}
				if _, err := os.Lstat(sd); errors.Is(err, fs.ErrNotExist) {
					c.dirs = append(c.dirs, sd)
				}
			}
		}
	}
	return c
}

func (c *startCleanup) run() {
	for _, d := range c.dirs {
		removeIfBare(d)
	}
}

// removeIfBare removes dir if it holds only directories and lock files
// (named "lock", a pid at most); it reports whether it did.
func removeIfBare(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			if !removeIfBare(p) {
				return false
			}
		case e.Name() == "lock":
			if fi, err := e.Info(); err != nil || !fi.Mode().IsRegular() || fi.Size() > 64 || os.Remove(p) != nil {
				return false
			}
		case startMade[e.Name()] || filepath.Base(dir) == "keys" && strings.HasSuffix(e.Name(), ".pub"):
			if fi, err := e.Info(); err != nil || !fi.Mode().IsRegular() || fi.Size() > 4096 || os.Remove(p) != nil {
				return false
			}
		default:
			return false
		}
	}
	return os.Remove(dir) == nil
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

// parseAllowFrom reads --allow-from: comma-separated IP addresses and
// CIDRs, each checked as "reel policy check" checks a policy's src.
func parseAllowFrom(s string) ([]netip.Prefix, error) { return policy.ParsePrefixes(s) }

// loopbackOnly reports whether every prefix holds only loopback addresses.
func loopbackOnly(allow []netip.Prefix) bool {
	if len(allow) == 0 {
		return false
	}
	for _, p := range allow {
		if !p.Addr().Unmap().IsLoopback() || (p.Addr().Is4() && p.Bits() < 8) || (p.Addr().Is6() && p.Bits() < 128) {
			return false
		}
	}
	return true
}

// isLoopbackListen reports whether a --listen address accepts connections
// only from this machine.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
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

// newLogger builds the slog logger the flags ask for. Durations are
// written as Go durations ("1.5s"), not as nanoseconds, in both formats.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
