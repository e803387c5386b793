package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/sender"
)

func init() {
	register(&command{name: "kube-proxy", summary: "run a Kubernetes API proxy that records kubectl exec, attach, debug and run sessions", run: runKubeProxy})
}

const kubeProxyUsage = `
Usage: reel kube-proxy --policy FILE [flags]
       reel kube-proxy --print-kubeconfig [--server URL] [--user NAME] [flags]

Runs an HTTPS proxy in front of a Kubernetes API server. Every request is
passed through; "kubectl exec", "attach", "debug" and "run -it" sessions
are recorded (output, resizes, exit status; never what is typed), and API
requests are sent as events, as the policy's "kubernetes" rules say (see
docs/kubernetes.md and docs/policy.md).

The API server and reel's own credentials come from --kubeconfig (and
--context), or inside a pod from its service account.

Modes (--mode):
  pass-through  users' own bearer tokens go upstream; reel learns who
                they are with a SelfSubjectReview (default)
  impersonate   reel authenticates users (client certificate from
                --client-ca, or bearer token checked with a TokenReview) and
                impersonates them with its own service account

Without --tls-cert, a self-signed certificate is made in --state-dir on
first start; --print-kubeconfig prints a kubeconfig that trusts it.

Examples:
    reel kube-proxy --policy /etc/reel/policy.hujson --state-dir /var/lib/reel-kube
    reel kube-proxy --state-dir /var/lib/reel-kube --print-kubeconfig --server https://kube-proxy.example:8443 > reel.kubeconfig
`

func runKubeProxy(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "kube-proxy", kubeProxyUsage)
	var (
		listen, policyFile, kubeconfig, kubeContext, mode      string
		tlsCert, tlsKey, tlsCA, clientCA, stateDir, hostname   string
		server, user, token, recordBuffer, logFormat, logLevel string
		audiences                                              listFlag
		printKubeconfig                                        bool
		policyInterval, finishTimeout, shutdownGrace           time.Duration
	)
	fs.StringVar(&listen, "listen", envOr(env, "127.0.0.1:8443", "REEL_KUBE_PROXY_LISTEN"), "address to serve the API on, HTTPS (env REEL_KUBE_PROXY_LISTEN)")
	fs.StringVar(&policyFile, "policy", envOr(env, "", "REEL_POLICY"), "the policy file (HuJSON; see docs/policy.md) (env REEL_POLICY)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the upstream API server and reel's credentials (default: in a pod, its service account; else $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&kubeContext, "context", "", "the kubeconfig context to use")
	fs.StringVar(&mode, "mode", envOr(env, "pass-through", "REEL_KUBE_PROXY_MODE"), "pass-through or impersonate (env REEL_KUBE_PROXY_MODE)")
	fs.StringVar(&tlsCert, "tls-cert", "", "serving certificate (PEM); default a self-signed one in --state-dir")
	fs.StringVar(&tlsKey, "tls-key", "", "its key (PEM)")
	fs.StringVar(&tlsCA, "tls-ca", "", "with --print-kubeconfig and --tls-cert: the CA (PEM) clients must trust; default the system's")
	fs.StringVar(&clientCA, "client-ca", "", "impersonate mode: users may present client certificates from these CAs (PEM); the common name is the user, the organizations the groups")
	fs.Var(&audiences, "audience", "impersonate mode: token audiences the TokenReview checks; repeat for several (default the API server's)")
	fs.StringVar(&stateDir, "state-dir", envOr(env, "", "REEL_KUBE_PROXY_STATE_DIR"), "where the self-signed certificate is kept (env REEL_KUBE_PROXY_STATE_DIR)")
	fs.StringVar(&hostname, "hostname", "", "this proxy's name, in recordings and events and the self-signed certificate (default: the system's)")
	fs.StringVar(&recordBuffer, "record-buffer", "8MiB", "per session, how much output may wait for a slow recorder; past half of it the session is slowed to the recorder's pace; it fills only when the recorder takes nothing for 10s, and then the session ends (enforceRecorder) or goes on unrecorded")
	fs.DurationVar(&policyInterval, "policy-interval", 2*time.Second, "how often to check the policy file for changes")
	fs.DurationVar(&finishTimeout, "finish-timeout", 30*time.Second, "how long to wait at the end of a session for the recorder to confirm the recording")
	fs.DurationVar(&shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long running sessions may go on before they are cut")
	fs.BoolVar(&printKubeconfig, "print-kubeconfig", false, "print a kubeconfig that points kubectl at this proxy, and exit")
	fs.StringVar(&server, "server", "", "with --print-kubeconfig: the proxy's URL as clients reach it (default https://<listen>)")
	fs.StringVar(&user, "user", "reel-user", "with --print-kubeconfig: the kubeconfig user name")
	fs.StringVar(&token, "token", "", "with --print-kubeconfig: a bearer token to put in the kubeconfig")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var m kubeproxy.Mode
	switch mode {
	case "pass-through":
		m = kubeproxy.PassThrough
	case "impersonate":
		m = kubeproxy.Impersonate
	default:
		return usagef("--mode %q: want pass-through or impersonate", mode)
	}
	if (tlsCert == "") != (tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if tlsCert == "" && stateDir == "" {
		return usagef("--state-dir is required without --tls-cert (the self-signed certificate is kept there)")
	}
	if clientCA != "" && m != kubeproxy.Impersonate {
		return usagef("--client-ca needs --mode impersonate: a client certificate cannot be passed through")
	}
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	cert, caPEM, err := loadServingCert(tlsCert, tlsKey, tlsCA, stateDir, listen, hostname)
	if err != nil {
		return err
	}
	if printKubeconfig {
		if server == "" {
			server = "https://" + listen
		}
		b, err := kubeproxy.Kubeconfig(server, caPEM, kubeproxy.KubeconfigUser{Name: user, Token: token}, "")
		if err != nil {
			return err
		}
		_, err = env.stdout.Write(b)
		return err
	}
	if policyFile == "" {
		return usagef("--policy is required")
	}
	buf, err := parseBytes(recordBuffer)
	if err != nil || buf < 64<<10 {
		return usagef("--record-buffer %q: want a size of at least 64KiB, such as 8MiB", recordBuffer)
	}
	log, err := newLogger(env.stderr, logFormat, logLevel)
	if err != nil {
		return usageError{err.Error()}
	}
	holder, err := policy.Load(policyFile)
	if err != nil {
		return err
	}
	up, err := kubeproxy.LoadUpstream(kubeconfig, kubeContext)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pemCerts, err := os.ReadFile(clientCA)
		if err != nil {
			return fmt.Errorf("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCerts) {
			return fmt.Errorf("--client-ca %s: no PEM certificates", clientCA)
		}
		tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	srv := &kubeproxy.Server{
		Upstream:      up,
		Mode:          m,
		Audiences:     audiences,
		Policy:        holder.Get,
		Recording:     &sender.Client{BufferSize: int(buf)},
		TLSConfig:     tlsConfig,
		Hostname:      hostname,
		FinishTimeout: finishTimeout,
		Log:           log,
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go holder.Watch(watchCtx, log, policyInterval)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("reel kube-proxy listening", "addr", "https://"+ln.Addr().String(), "upstream", up.URL.String(),
		"upstream_config", up.Source, "mode", m.String(), "policy", policyFile)
	select {
	case err := <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for sessions to end", "grace", shutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	srv.Shutdown(sctx)
	<-serveErr
	return nil
}

// loadServingCert returns the serving certificate and the CA (PEM) a
// kubeconfig must trust for it (nil: the system's roots).
func loadServingCert(certFile, keyFile, caFile, stateDir, listen, hostname string) (tls.Certificate, []byte, error) {
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("--tls-cert: %w", err)
		}
		var ca []byte
		if caFile != "" {
			if ca, err = os.ReadFile(caFile); err != nil {
				return tls.Certificate{}, nil, fmt.Errorf("--tls-ca: %w", err)
			}
		}
		return cert, ca, nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	if hostname != "" {
		hosts = append(hosts, hostname, strings.SplitN(hostname, ".", 2)[0])
	}
	return kubeproxy.LoadOrCreateCert(stateDir, hosts)
}
