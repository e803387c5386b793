package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/tailnet"
)

// TestOpenAccess: plain mode makes the first admin with a one-time
// password once, audited; a trusted proxy and the tailnet take no
// accounts.
func TestOpenAccess(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	f := &accessFlags{proxyHeader: auth.DefaultProxyHeader}

	b, err := f.openAccess(ctx, nil, dir, nil, false, log)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^first start: log in to the web UI as "admin" with the one-time password ([a-z2-7-]{23})\n`).FindStringSubmatch(b.FirstLogin)
	if m == nil {
		t.Fatalf("FirstLogin %q", b.FirstLogin)
	}
	if b.Auth.Accounts == nil || b.Auth.Proxy != nil || b.Auth.Tailnet != nil || b.Auth.Mode() != "accounts" {
		t.Errorf("plain mode: %s", b.Auth.Mode())
	}
	accts, err := b.Auth.Accounts.List()
	if err != nil || len(accts) != 1 || accts[0].Name != "admin" || accts[0].Role != auth.RoleAdmin || !accts[0].MustChange {
		t.Errorf("accounts after the first start: %+v, %v", accts, err)
	}
	b.Close()
	b, err = f.openAccess(ctx, nil, dir, nil, false, log)
	if err != nil || b.FirstLogin != "" {
		t.Errorf("second start: %q, %v", b.FirstLogin, err)
	}
	b.Close()
	var adds []audit.Entry
	for e, err := range audit.Read(ctx, filepath.Join(dir, "audit"), audit.Query{Action: audit.ActionUserAdd}) {
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, e)
	}
	if len(adds) != 1 || adds[0].Target != "admin" || adds[0].Args["first_start"] != "true" {
		t.Errorf("audit: %+v", adds)
	}

	// A trusted proxy: no accounts at all.
	pdir := t.TempDir()
	pf := &accessFlags{trustedProxy: "10.0.0.1,10.1.0.0/16", proxyHeader: "Remote-User"}
	b, err = pf.openAccess(ctx, nil, pdir, nil, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if b.Auth.Accounts != nil || b.Auth.Proxy == nil || b.Auth.Proxy.Header != "Remote-User" || len(b.Auth.Proxy.Trusted) != 2 || !b.Auth.SecureCookies || b.FirstLogin != "" {
		t.Errorf("proxy mode: %+v", b.Auth)
	}
	b.Close()
	if _, err := os.Stat(filepath.Join(pdir, auth.DefaultAccountsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("proxy mode made an accounts file: %v", err)
	}

	// The tailnet: WhoIs names the viewer.
	b, err = f.openAccess(ctx, nil, t.TempDir(), fakeNode{}, true, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Auth.Mode() != "tailnet" || b.FirstLogin != "" {
		t.Errorf("tailnet mode: %s %q", b.Auth.Mode(), b.FirstLogin)
	}
	peer, err := b.Auth.Tailnet.WhoIs(ctx, "100.64.0.7:1234")
	if err != nil || peer.User != "alice@example.com" || peer.Node != "laptop" || len(peer.Caps[auth.ViewerCapability]) != 1 {
		t.Errorf("WhoIs through the adapter: %+v, %v", peer, err)
	}

	if _, err := f.openAccess(ctx, nil, "", nil, false, log); err == nil || !strings.Contains(err.Error(), "--statedir") {
		t.Errorf("no state directory: %v", err)
	}
}

type fakeNode struct{ tailnet.Node }

func (fakeNode) WhoIs(ctx context.Context, addr string) (tailnet.Identity, error) {
	return tailnet.Identity{NodeID: "nX", Name: "laptop", User: "alice@example.com",
		Caps: map[string][]json.RawMessage{auth.ViewerCapability: {json.RawMessage(`{"nodes":["*"]}`)}}}, nil
}

func (fakeNode) Addrs() []netip.Addr { return nil }

func (fakeNode) Listen(string, string) (net.Listener, error) { return nil, errors.New("no") }

// pagedIndex is an index.Index holding rows, listed in pages of two.
type pagedIndex struct {
	index.Index
	rows []index.Recording
	put  []index.Recording
}

func (p *pagedIndex) List(ctx context.Context, f index.Filter, pg index.Page) ([]index.Recording, string, error) {
	i := 0
	if pg.After != "" {
		i, _ = strconv.Atoi(pg.After)
	}
	j := min(i+2, len(p.rows))
	next := ""
	if j < len(p.rows) {
		next = strconv.Itoa(j)
	}
	return p.rows[i:j], next, nil
}

func (p *pagedIndex) PutRecording(ctx context.Context, r index.Recording) error {
	p.put = append(p.put, r)
	return nil
}

// TestLearnTags: the tags of the rows in the index and of the rows
// written later reach the TagMap that narrows lists.
func TestLearnTags(t *testing.T) {
	ctx := context.Background()
	idx := &pagedIndex{rows: []index.Recording{
		{Node: "db1", Tags: []string{"tag:prod"}}, {Node: "web1"}, {Node: "db2", Tags: []string{"tag:prod", "tag:db"}},
		{Node: "dev1", Tags: []string{"tag:dev"}}, {Node: "db3", Tags: []string{"tag:db"}},
	}}
	tags := &auth.TagMap{}
	if err := learnTags(ctx, idx, tags); err != nil {
		t.Fatal(err)
	}
	li := tagLearner{Index: idx, tags: tags}
	if err := li.PutRecording(ctx, index.Recording{Node: "db4", Tags: []string{"tag:prod"}}); err != nil || len(idx.put) != 1 {
		t.Fatalf("PutRecording through the learner: %v, %d rows written", err, len(idx.put))
	}
	got, _ := tags.NodesTagged(ctx, []string{"tag:prod"})
	if strings.Join(got, ",") != "db1,db2,db4" {
		t.Errorf("nodes tagged prod: %q", got)
	}
	got, _ = tags.NodesTagged(ctx, []string{"tag:db", "tag:dev"})
	if strings.Join(got, ",") != "db2,db3,dev1" {
		t.Errorf("nodes tagged db or dev: %q", got)
	}
}
