package main

// reel serve's viewer access: the policy file (viewers rules, admins),
// the web UI's local accounts or trusted proxy, and the audit log. The UI
// (--ui) gets them from openAccess.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/tailnet"
)

type accessFlags struct {
	policyFile   string
	trustedProxy string
	proxyHeader  string
}

func addAccessFlags(fs *flag.FlagSet, env *cmdEnv) *accessFlags {
	f := &accessFlags{}
	fs.StringVar(&f.policyFile, "policy", envOr(env, "", "REEL_POLICY"), "the policy file whose viewers rules and admins decide who sees which recordings in the web UI, and whose retention rules say how long recordings are kept; reloaded on SIGHUP and when it changes (see docs/access.md, docs/retention.md) (env REEL_POLICY)")
	fs.StringVar(&f.trustedProxy, "ui-trusted-proxy", envOr(env, "", "REEL_UI_TRUSTED_PROXY"), "web UI, plain mode: comma-separated addresses and CIDRs of a reverse proxy that authenticates viewers and names them in --ui-proxy-header; the header is refused from anywhere else (env REEL_UI_TRUSTED_PROXY)")
	fs.StringVar(&f.proxyHeader, "ui-proxy-header", envOr(env, auth.DefaultProxyHeader, "REEL_UI_PROXY_HEADER"), "web UI: the header in which --ui-trusted-proxy names the viewer (env REEL_UI_PROXY_HEADER)")
	return f
}

// check validates the flags before anything starts.
func (f *accessFlags) check(tailnetMode bool) error {
	if !auth.ValidHeaderName(f.proxyHeader) {
		return usagef("--ui-proxy-header %q: want a header name such as X-Forwarded-User (not Cookie, Authorization, Host...)", f.proxyHeader)
	}
	if f.trustedProxy == "" {
		return nil
	}
	if tailnetMode {
		return usagef("--ui-trusted-proxy is for plain mode: on the tailnet, viewers are the tailnet's users")
	}
	if _, err := auth.ParseProxies(f.trustedProxy); err != nil {
		return usagef("--ui-trusted-proxy: %v", err)
	}
	return nil
}

// loadPolicy loads --policy, if given, and keeps it current until ctx
// ends (SIGHUP, file changes). A bad file fails the start.
func (f *accessFlags) loadPolicy(ctx context.Context, log *slog.Logger) (*policy.Holder, error) {
	if f.policyFile == "" {
		return nil, nil
	}
	h, err := policy.Load(f.policyFile)
	if err != nil {
		return nil, err
	}
	go h.Watch(ctx, log, 0)
	p := h.Get()
	log.Info("policy loaded", "path", f.policyFile, "viewers_rules", len(p.ViewerRules), "admins", len(p.Admins))
	return h, nil
}

// accessBackend is who may see what in the web UI, and the audit log.
type accessBackend struct {
	Auth   *auth.Authenticator
	Access *auth.Access
	Audit  *audit.Log
	// Tags learns the nodes' tags from the index's rows (Learn), so that
	// viewers rules that name tags narrow lists.
	Tags *auth.TagMap
	// FirstLogin, when not "", tells how to log in the first time: the
	// first admin's one-time password, made now. Print it once.
	FirstLogin string
}

// Close closes the audit log.
func (b *accessBackend) Close() error { return b.Audit.Close() }

// openAccess makes the UI's viewer identity, access and audit log: in
// tailnet mode (tn not nil) viewers are tailnet users; else local
// accounts in the state directory (the first admin made on the first
// start) and, with --ui-trusted-proxy, the proxy's header.
func (f *accessFlags) openAccess(ctx context.Context, holder *policy.Holder, stateDir string, tn tailnet.Node, secure bool, log *slog.Logger) (*accessBackend, error) {
	if stateDir == "" {
		return nil, errors.New("the web UI keeps its accounts and audit log in the state directory: give --statedir")
	}
	al, err := audit.Open(filepath.Join(stateDir, "audit"))
	if err != nil {
		return nil, err
	}
	tags := &auth.TagMap{}
	access := &auth.Access{Tags: tags}
	if holder != nil {
		access.Policy = holder.Get
	}
	a := &auth.Authenticator{Access: access, Audit: al, Log: log.With("part", "auth"), SecureCookies: secure}
	b := &accessBackend{Auth: a, Access: access, Audit: al, Tags: tags}
	switch {
	case tn != nil:
		a.Tailnet = auth.WhoIsFunc(func(ctx context.Context, addr string) (auth.TailnetPeer, error) {
			id, err := tn.WhoIs(ctx, addr)
			return auth.TailnetPeer{User: id.User, Node: id.Name, Caps: id.Caps}, err
		})
	default:
		if f.trustedProxy != "" {
			trusted, _ := auth.ParseProxies(f.trustedProxy) // checked
			a.Proxy = &auth.Proxy{Trusted: trusted, Header: f.proxyHeader}
			break
		}
		accts, err := auth.OpenAccounts(filepath.Join(stateDir, auth.DefaultAccountsFile))
		if err != nil {
			al.Close()
			return nil, err
		}
		a.Accounts = accts
		otp, err := accts.Bootstrap(ctx, "admin")
		if err != nil {
			al.Close()
			return nil, fmt.Errorf("making the first admin account: %w", err)
		}
		if otp != "" {
			if err := al.Append(audit.Entry{User: osUserName(), Auth: "cli", From: "cli", Action: audit.ActionUserAdd, Target: "admin",
				Args: map[string]string{"role": "admin", "one_time_password": "true", "first_start": "true"}, Result: audit.ResultOK}); err != nil {
				al.Close()
				return nil, err
			}
			b.FirstLogin = fmt.Sprintf("first start: log in to the web UI as \"admin\" with the one-time password %s\n"+
				"(shown only now; you will choose your own at the first login; lost it? reel user passwd admin --statedir %s)", otp, stateDir)
		}
	}
	if holder == nil {
		log.Warn("no --policy: only admins see recordings in the web UI")
	}
	return b, nil
}

// tagLearner is an index.Index that tells a TagMap the tags of every
// recording row written to it, so that viewers rules by tag narrow lists
// (auth.Access.IndexNodes). A recording's tags are the srcNodeTags its
// sender wrote: a sender can share its own recordings with the viewers of
// a tag, and no one else's.
type tagLearner struct {
	index.Index
	tags *auth.TagMap
}

func (t tagLearner) PutRecording(ctx context.Context, r index.Recording) error {
	t.tags.Learn(r.Node, r.Tags)
	return t.Index.PutRecording(ctx, r)
}

// PutRecordings keeps the index's batches (index.Batcher), if it has
// them: a rebuild puts rows many at a time.
func (t tagLearner) PutRecordings(ctx context.Context, rs []index.Recording) error {
	for _, r := range rs {
		t.tags.Learn(r.Node, r.Tags)
	}
	if b, ok := t.Index.(index.Batcher); ok {
		return b.PutRecordings(ctx, rs)
	}
	for _, r := range rs {
		if err := t.Index.PutRecording(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// learnTags reads every recording row of idx once and tells tags theirs:
// at start, for the rows written before. Until it is done, nodes granted
// only by tag may be missing from lists (never added to them).
func learnTags(ctx context.Context, idx index.Index, tags *auth.TagMap) error {
	after := ""
	for {
		rows, next, err := idx.List(ctx, index.Filter{}, index.Page{Limit: 1000, After: after})
		if err != nil {
			return err
		}
		for _, r := range rows {
			tags.Learn(r.Node, r.Tags)
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// osUserName names the user running reel, for the audit log.
func osUserName() string {
	return osUser(&cmdEnv{getenv: os.Getenv})
}
