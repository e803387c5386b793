package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/reel-rec/reel/internal/policy"
)

// How a viewer was identified (Viewer.Via).
const (
	ViaAccount = "account" // a local account, logged in with a password
	ViaProxy   = "proxy"   // a trusted reverse proxy's identity header
	ViaTailnet = "tailnet" // the tailnet user, from WhoIs
)

// A Viewer is an authenticated person using the UI.
type Viewer struct {
	// Name is the identity the policy's viewers rules and admins match:
	// the account name, the proxy header's value, the tailnet login name.
	Name string
	// Via says how Name was established: ViaAccount, ViaProxy, ViaTailnet.
	Via string
	// Addr is the client's IP address (behind a trusted proxy, the one the
	// proxy names).
	Addr string
	// Role is the account's role; "" for proxy and tailnet viewers.
	Role Role
	// Admin: sees every recording and the audit log (an admin account, a
	// policy admin, or a tailnet grant with "admin").
	Admin bool
	// MustChangePassword: logged in with a one-time password; nothing is
	// shown until a new password is set.
	MustChangePassword bool
	// Grants are what the tailnet policy grants the viewer (app capability
	// ViewerCapability), besides the viewers rules.
	Grants []Grant
}

// A Grant is one value of the tailnet app capability ViewerCapability, as
// a tailnet policy file's grants give it:
//
//	"app": {"github.com/reel-rec/reel/cap/viewer": [{"nodes": ["tag:prod"], "actions": ["view"]}]}
//
// Nodes and Actions mean what they mean in a viewers rule; Admin makes
// the viewer an admin.
type Grant struct {
	Nodes   []string `json:"nodes,omitempty"`
	Actions []string `json:"actions,omitempty"`
	Admin   bool     `json:"admin,omitempty"`
}

// Access decides what viewers may see: admins everything, others what
// the policy's viewers rules (and their tailnet grants) give them; with
// no policy, only admins see recordings. Its methods are safe for
// concurrent use.
type Access struct {
	// Policy returns the current policy (policy.Holder.Get), or nil.
	// A nil Policy func means no policy.
	Policy func() *policy.Policy
	// Tags resolves node tags to the nodes that carry them, for lists
	// (IndexNodes). Nil: a grant by tag lets the viewer open such a
	// node's recordings, but lists and searches show them only if the
	// node is also granted by id.
	Tags TagSource
}

func (a *Access) policy() *policy.Policy {
	if a == nil || a.Policy == nil {
		return nil
	}
	return a.Policy()
}

// IsAdmin reports whether v is an admin, and why. A Viewer the
// Authenticator found to be an admin (v.Admin) is one.
func (a *Access) IsAdmin(v Viewer) (bool, string) {
	if v.Admin {
		return true, "admin: found so when identified"
	}
	if v.Role == RoleAdmin {
		return true, "admin: an admin account"
	}
	for _, g := range v.Grants {
		if g.Admin {
			return true, "admin: a tailnet grant"
		}
	}
	return a.policy().IsAdmin(v.Name)
}

// A Scope is what one viewer may do one action on: every recording
// (All), or those of the nodes in Nodes and of nodes carrying one of
// Tags; Why explains it.
type Scope = policy.ViewerScope

// UIAction maps what the UI does to the policy action it needs: list,
// search, view and live need policy.ActionView, download needs
// policy.ActionDownload.
func UIAction(what string) string {
	if what == "download" {
		return policy.ActionDownload
	}
	return policy.ActionView
}

// Scope returns what v may do action (policy.ActionView or
// policy.ActionDownload) on.
func (a *Access) Scope(v Viewer, action string) Scope {
	if ok, why := a.IsAdmin(v); ok && v.Name != "" && !v.MustChangePassword {
		return Scope{Viewer: v.Name, Action: action, All: true, Why: []string{why, v.Name + " may " + action + " every recording"}}
	}
	if v.MustChangePassword {
		return Scope{Viewer: v.Name, Action: action, Why: []string{"nothing until the one-time password is changed"}}
	}
	s := a.policy().ViewerScope(v.Name, action)
	if v.Name == "" {
		return s
	}
	for i, g := range v.Grants {
		if len(g.Actions) > 0 && !slices.Contains(g.Actions, action) {
			continue
		}
		s.Why = append(s.Why, fmt.Sprintf("tailnet grant #%d: nodes %q", i+1, g.Nodes))
		s.Grant(g.Nodes)
	}
	return s
}

// Can reports whether v may do action on a recording sent by node, which
// carries tags, and why.
func (a *Access) Can(v Viewer, node string, tags []string, action string) (bool, []string) {
	s := a.Scope(v, action)
	ok := s.Allows(node, tags)
	verdict := "deny"
	if ok {
		verdict = "allow"
	}
	return ok, append(s.Why, fmt.Sprintf("%s: %s %s of node %q", verdict, action, "recordings", node))
}

// IndexNodes returns the nodes whose recordings v may see for action, for
// index.Filter.Nodes: nil means every node, an empty non-nil slice none.
// Nodes granted by tag come from Tags. A list filtered by it must still
// be checked row by row with Can (a node's recordings may carry different
// tags), which drops nothing a viewer may see.
func (a *Access) IndexNodes(ctx context.Context, v Viewer, action string) ([]string, error) {
	s := a.Scope(v, action)
	if s.All {
		return nil, nil
	}
	nodes := slices.Clone(s.Nodes)
	if len(s.Tags) > 0 && a.Tags != nil {
		tagged, err := a.Tags.NodesTagged(ctx, s.Tags)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, tagged...)
	}
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	if nodes == nil {
		nodes = []string{}
	}
	return nodes, nil
}

// TagSource names the nodes that carry tags.
type TagSource interface {
	// NodesTagged returns the nodes that carry at least one of tags.
	NodesTagged(ctx context.Context, tags []string) ([]string, error)
}

// TagMap is a TagSource in memory, told each node's tags as recordings
// arrive (Learn): a node carries a tag once any of its recordings did.
// Safe for concurrent use.
type TagMap struct {
	mu sync.RWMutex
	m  map[string]map[string]bool // tag -> nodes
}

var _ TagSource = (*TagMap)(nil)

// Learn records that node's recordings carry tags.
func (t *TagMap) Learn(node string, tags []string) {
	if node == "" || len(tags) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]map[string]bool{}
	}
	for _, tag := range tags {
		if t.m[tag] == nil {
			t.m[tag] = map[string]bool{}
		}
		t.m[tag][node] = true
	}
}

// NodesTagged returns the nodes that carry any of tags, sorted.
func (t *TagMap) NodesTagged(_ context.Context, tags []string) ([]string, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for _, tag := range tags {
		for n := range t.m[tag] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
