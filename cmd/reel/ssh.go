package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/policy"
	recclient "github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/sshserver"
)

func init() {
	register(&command{name: "ssh", summary: "run an SSH server that records its sessions", run: runSSH})
}

const sshUsage = `
Usage: reel ssh --policy FILE --statedir DIR [flags]

Runs an SSH server whose sessions are recorded, as the policy file says,
by "reel serve" or Tailscale's tsrecorder (see docs/ssh.md and
docs/policy.md).

Users log in with public keys only: from their own ~/.ssh/authorized_keys,
or from --authorized-keys, a file of lines

    LOCALUSER [OPTIONS] KEYTYPE BASE64 [comment]

Key options from=, command=, no-pty, restrict, pty and expiry-time= are
honoured; a key with an option reel does not support is not used (it is
logged). Keys files must be regular files that nobody but their owner (the
user, or root) can change, as with OpenSSH's StrictModes.

The login name is the local user the session runs as (and the user the
policy's "src" and "users" see). Run as root, reel switches to that user;
run as anyone else, it serves only its own user.

Host keys are generated on first start and kept in --statedir. The policy
is reloaded on SIGHUP and when the file changes; a bad new policy is
logged and the old one stays.

Examples:
    reel ssh --listen 0.0.0.0:22 --policy /etc/reel/policy.hujson --statedir /var/lib/reel-ssh
    reel ssh --listen 127.0.0.1:2222 --policy p.hujson --statedir st --authorized-keys keys
`

func runSSH(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "ssh", sshUsage)
	var (
		listen, policyFile, stateDir, keysFile string
		hostname, sftpServer, recordBuffer     string
		logFormat, logLevel                    string
		tags                                   listFlag
		noUserKeys                             bool
		policyInterval, finishTimeout          time.Duration
	)
	fs.StringVar(&listen, "listen", envOr(env, "127.0.0.1:2222", "REEL_SSH_LISTEN"), "address to accept SSH connections on (env REEL_SSH_LISTEN)")
	fs.StringVar(&policyFile, "policy", envOr(env, "", "REEL_POLICY"), "the policy file (HuJSON; see docs/policy.md) (env REEL_POLICY)")
	fs.StringVar(&stateDir, "statedir", envOr(env, "", "REEL_SSH_STATE_DIR"), "directory for the host keys (env REEL_SSH_STATE_DIR)")
	// --state-dir is the old spelling, kept working but not shown.
	oldStateDir := &stringFlag{}
	fs.Var(oldStateDir, "state-dir", "deprecated spelling of --statedir")
	hideFlags(env, fs, sshUsage, "state-dir")
	fs.StringVar(&keysFile, "authorized-keys", "", `central authorized keys: lines "LOCALUSER [OPTIONS] KEYTYPE BASE64 [comment]"`)
	fs.BoolVar(&noUserKeys, "no-user-keys", false, "do not read users' ~/.ssh/authorized_keys")
	fs.StringVar(&hostname, "hostname", "", "this host's name for the policy's dst and in recordings (default: the system's)")
	fs.Var(&tags, "tag", `a tag of this host for the policy's dst ("tag:prod"); repeat or separate with commas`)
	fs.StringVar(&sftpServer, "sftp-server", "", `the sftp-server program (default: the system's, if installed); "-" disables sftp`)
	fs.StringVar(&recordBuffer, "record-buffer", "8MiB", "per session, how much output may wait for a slow recorder; past half of it the session is slowed to the recorder's pace; it fills only when the recorder takes nothing for 10s, and then the session ends (enforceRecorder) or goes on unrecorded")
	fs.DurationVar(&policyInterval, "policy-interval", 2*time.Second, "how often to check the policy file for changes")
	fs.DurationVar(&finishTimeout, "finish-timeout", sshserver.DefaultFinishTimeout, "how long to wait at the end of a session for the recorder to confirm the recording")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if policyFile == "" {
		return usagef("--policy is required")
	}
	if oldStateDir.set {
		if isSet(fs, "statedir") {
			return usagef("--state-dir is the old spelling of --statedir: give only one of them")
		}
		stateDir = oldStateDir.v
		fmt.Fprintln(env.stderr, "reel ssh: --state-dir is deprecated; use --statedir")
	}
	if stateDir == "" {
		return usagef("--statedir is required (the host keys live there)")
	}
	hostTags, err := tags.tags()
	if err != nil {
		return err
	}
	buf, err := parseBytes(recordBuffer)
	if err != nil || buf < 64<<10 {
		return usagef("--record-buffer %q: want a size of at least 64KiB, such as 8MiB", recordBuffer)
	}
	log, err := newLogger(env.stderr, logFormat, logLevel)
	if err != nil {
		return usageError{err.Error()}
	}

	if hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	holder, err := policy.Load(policyFile)
	if err != nil {
		return err
	}
	keys, err := sshserver.LoadHostKeys(stateDir)
	if err != nil {
		return err
	}
	srv := &sshserver.Server{
		HostKeys:           keys,
		Policy:             holder.Get,
		AuthorizedKeysFile: keysFile,
		NoUserKeys:         noUserKeys,
		Hostname:           hostname,
		HostTags:           hostTags,
		Recording:          &recclient.Client{BufferSize: int(buf)},
		SFTPServer:         sftpServer,
		Log:                log,
		FinishTimeout:      finishTimeout,
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
	log.Info("reel ssh listening", "addr", ln.Addr().String(), "policy", policyFile, "state_dir", stateDir,
		"authorized_keys", keysFile, "user_keys", !noUserKeys, "hostname", hostname, "tags", hostTags)
	select {
	case err := <-serveErr:
		if errors.Is(err, sshserver.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for sessions to end", "grace", "10s")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-serveErr
	return nil
}

// stringFlag is a string flag that knows whether it was given.
type stringFlag struct {
	v   string
	set bool
}

func (f *stringFlag) String() string     { return f.v }
func (f *stringFlag) Set(v string) error { f.v, f.set = v, true; return nil }

// hideFlags leaves the named flags (old spellings that keep working) out
// of --help, which prints usage and then the other flags.
func hideFlags(env *cmdEnv, fs *flag.FlagSet, usage string, names ...string) {
	fs.Usage = func() {
		shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(names, f.Name) {
				shown.Var(f.Value, f.Name, f.Usage)
				shown.Lookup(f.Name).DefValue = f.DefValue
			}
		})
		fmt.Fprintln(env.stdout, strings.TrimSpace(usage))
		fmt.Fprintln(env.stdout, "\nFlags:")
		printFlags(env.stdout, shown)
	}
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
