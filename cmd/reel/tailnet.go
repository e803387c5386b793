package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/tailnet"
)

// tailnetFlags are reel serve's tailnet-mode flags. The names and
// environment variables are tsrecorder's, so that a deployment written for
// tsrecorder runs reel unchanged (see docs/tailnet.md).
type tailnetFlags struct {
	enabled       bool
	state         string
	loginServer   string
	advertiseTags string
	logs          bool

	// Filled by afterParse.
	authKey      string
	userStateDir string // --statedir / TS_STATE_DIR as given, before serve's default
}

// serveTailnetUsage is reel serve's --tailnet.
const serveTailnetUsage = "join a tailnet as node --hostname and serve the recording API there on :80, naming each sender by its stable node ID; the plain listener then runs only if --listen is given (env REEL_TAILNET=1). The first start needs TS_AUTHKEY or TS_AUTHKEY_FILE, or a login by the URL it logs"

// addTailnetFlags registers the tailnet flags on fs; usage is the
// --tailnet flag's.
func addTailnetFlags(fs *flag.FlagSet, env *cmdEnv, usage string) *tailnetFlags {
	f := &tailnetFlags{}
	fs.BoolVar(&f.enabled, "tailnet", envBool(env, "REEL_TAILNET"), usage)
	fs.StringVar(&f.state, "state", envOr(env, "", "TS_STATE"), "tailnet mode: where the node keeps its identity: a file, or kube:<secret> in a Kubernetes pod; default <statedir>/tailscaled.state (env TS_STATE)")
	fs.StringVar(&f.loginServer, "login-server", envOr(env, "", "TSRECORDER_LOGIN_SERVER"), "tailnet mode: coordination server URL, for a self-hosted one such as Headscale; default Tailscale's (env TSRECORDER_LOGIN_SERVER)")
	fs.StringVar(&f.advertiseTags, "advertise-tags", "", "tailnet mode: comma-separated ACL tags to request for the node, e.g. tag:recorder")
	fs.BoolVar(&f.logs, "tailscale-logs", false, "tailnet mode: upload the node's Tailscale client logs to Tailscale's log service, as tailscaled does by default; off unless given")
	return f
}

func envBool(env *cmdEnv, name string) bool {
	switch strings.ToLower(env.getenv(name)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// afterParse finishes the flags once fs is parsed: it reads the auth key,
// remembers whether the user chose a state directory, and in tailnet mode
// turns the plain listener off unless --listen (or REEL_LISTEN) asked for
// one.
func (f *tailnetFlags) afterParse(fs *flag.FlagSet, env *cmdEnv, sf *serveFlags) error {
	f.userStateDir = sf.stateDir
	if !f.enabled {
		return nil
	}
	if sf.tlsCert != "" {
		// recorder.Server has one TLS setting for every listener, and
		// Tailscale's senders speak cleartext HTTP/2 to :80 (WireGuard
		// already encrypts it).
		return usagef("--tailnet cannot be combined with --tls-cert: the tailnet listener speaks cleartext HTTP (inside WireGuard)")
	}
	listenSet := env.getenv("REEL_LISTEN") != ""
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "listen" {
			listenSet = true
		}
	})
	if !listenSet {
		sf.listen = ""
	}
	return f.readAuthKey(env)
}

// readAuthKey reads the auth key from TS_AUTHKEY, else the file
// TS_AUTHKEY_FILE names.
func (f *tailnetFlags) readAuthKey(env *cmdEnv) error {
	f.authKey = env.getenv("TS_AUTHKEY")
	if file := env.getenv("TS_AUTHKEY_FILE"); file != "" && f.authKey == "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("TS_AUTHKEY_FILE: %w", err)
		}
		f.authKey = strings.TrimSpace(string(b))
	}
	return nil
}

// stateDir is where the tsnet node keeps its files: the --statedir the user
// gave (so tsrecorder's state directory is picked up as it is), else a
// "tailscale" directory under reel's own state directory, else under the
// user's configuration directory (an S3 --dst with no --statedir).
func (f *tailnetFlags) stateDir(serveStateDir string) (string, error) {
	switch {
	case f.userStateDir != "":
		return f.userStateDir, nil
	case serveStateDir != "":
		return filepath.Join(serveStateDir, "tailscale"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("tailnet: no --statedir and no configuration directory: %w", err)
	}
	return filepath.Join(dir, "reel", "tailscale"), nil
}

// tailnetServer is the recording API served on the tailnet.
type tailnetServer struct {
	node *tailnet.Server
	ln   net.Listener
	done chan error
	once sync.Once
}

// startTailnet joins the tailnet (waiting for a login if the node has
// none), makes srv name tailnet senders by WhoIs (others keep srv's
// Identify), and serves srv on the tailnet at :80. It must run before srv
// serves anything else.
func startTailnet(ctx context.Context, env *cmdEnv, f *tailnetFlags, serveStateDir, hostname string, srv *recorder.Server, log *slog.Logger) (*tailnetServer, error) {
	dir, err := f.stateDir(serveStateDir)
	if err != nil {
		return nil, err
	}
	node, err := f.join(ctx, dir, hostname, log)
	if err != nil {
		return nil, err
	}
	ln, err := node.Listen("tcp", ":80")
	if err != nil {
		node.Close()
		return nil, err
	}
	srv.Identify = tailnet.Identify(node, srv.Identify)
	ts := &tailnetServer{node: node, ln: ln, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	for _, a := range node.Addrs() {
		url := "http://" + net.JoinHostPort(a.String(), "80")
		log.Info("recording API on the tailnet at "+url, "url", url)
	}
	return ts, nil
}

// tags returns --advertise-tags as a list, checking each is a tag.
func (f *tailnetFlags) tags() ([]string, error) {
	var tags []string
	for _, t := range strings.Split(f.advertiseTags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			if !strings.HasPrefix(t, "tag:") {
				return nil, usagef("--advertise-tags: %q is not a tag (tags start with tag:)", t)
			}
			tags = append(tags, t)
		}
	}
	return tags, nil
}

// join joins the tailnet as node hostname, keeping its state in dir (or
// where --state says), waiting for a login if the node has none.
func (f *tailnetFlags) join(ctx context.Context, dir, hostname string, log *slog.Logger) (*tailnet.Server, error) {
	tags, err := f.tags()
	if err != nil {
		return nil, err
	}
	log.Info(fmt.Sprintf("joining the tailnet as %q", hostname), "hostname", hostname, "state", firstOf(f.state, dir))
	return tailnet.Start(ctx, tailnet.Config{
		Hostname:      hostname,
		Dir:           dir,
		State:         f.state,
		AuthKey:       f.authKey,
		ControlURL:    f.loginServer,
		AdvertiseTags: tags,
		Logs:          f.logs,
		Log:           log,
	})
}

// serveErr reports how serving on the tailnet ended (after srv.Shutdown,
// nil).
func (ts *tailnetServer) serveErr() <-chan error { return ts.done }

// close leaves the tailnet. Call it after srv.Shutdown, so that live
// recordings are closed out first.
func (ts *tailnetServer) close() error {
	var err error
	ts.once.Do(func() {
		err = ts.node.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}
