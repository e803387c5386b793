package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// IsAdmin reports whether viewer is one of the UI's administrators: named
// in "admins", directly or through a group. The string says why. A nil
// Policy has no admins.
func (p *Policy) IsAdmin(viewer string) (bool, string) {
	if viewer == "" {
		return false, "not an admin: no viewer identity"
	}
	if p == nil || len(p.admins) == 0 {
		return false, "not an admin: the policy names no admins"
	}
	if m, ok := p.matchSrc(p.admins, viewer, netip.Addr{}); ok {
		return true, "admin: admins " + m
	}
	return false, fmt.Sprintf("not an admin: admins %s does not include %s", quoteList(p.Admins), viewer)
}

// A ViewerScope is what one viewer may do one action on, by the viewers
// rules alone: the recordings of every node (All), or of the nodes in
// Nodes and of the nodes carrying one of Tags. Admins are not the
// policy's rules' business: see IsAdmin.
type ViewerScope struct {
	Viewer string
	Action string
	// All is true when a rule grants the action on "*".
	All bool
	// Nodes and Tags are the node ids and node tags granted, sorted,
	// without duplicates; both empty (and All false) means nothing.
	Nodes []string
	Tags  []string
	// Why explains the scope, one rule per line.
	Why []string
}

// ViewerScope returns what viewer may do action (ActionView or
// ActionDownload) on, as CanView decides it for each node: for every
// node and tags, s.Allows(node, tags) == CanView(viewer, node, tags,
// action). A nil Policy grants nothing.
func (p *Policy) ViewerScope(viewer, action string) ViewerScope {
	s := ViewerScope{Viewer: viewer, Action: action}
	switch {
	case action != ActionView && action != ActionDownload:
		s.Why = []string{fmt.Sprintf("nothing: unknown action %q", action)}
		return s
	case viewer == "":
		s.Why = []string{"nothing: no viewer identity"}
		return s
	case p == nil:
		s.Why = []string{"nothing: no policy, so no viewers rules"}
		return s
	}
	for i := range p.ViewerRules {
		rule := &p.ViewerRules[i]
		where := fmt.Sprintf("viewers rule #%d (line %d)", i+1, rule.Line)
		src, ok := p.matchSrc(rule.src, viewer, netip.Addr{})
		if !ok {
			s.Why = append(s.Why, fmt.Sprintf("%s: no match: src %s does not include %s", where, quoteList(rule.Src), viewer))
			continue
		}
		if rule.Actions != nil && !slices.Contains(rule.Actions, action) {
			s.Why = append(s.Why, fmt.Sprintf("%s: no match: actions %s do not include %q", where, quoteList(rule.Actions), action))
			continue
		}
		s.Why = append(s.Why, fmt.Sprintf("%s: grants nodes %s: src %s", where, quoteList(rule.Nodes), src))
		s.Grant(rule.Nodes)
	}
	switch {
	case s.All:
		s.Why = append(s.Why, fmt.Sprintf("%s may %s the recordings of every node", viewer, action))
	case len(s.Nodes) == 0 && len(s.Tags) == 0:
		s.Why = append(s.Why, fmt.Sprintf("%s may %s no recordings (default deny)", viewer, action))
	default:
		var parts []string
		if len(s.Nodes) > 0 {
			parts = append(parts, "of nodes "+quoteList(s.Nodes))
		}
		if len(s.Tags) > 0 {
			parts = append(parts, "of nodes tagged "+quoteList(s.Tags))
		}
		s.Why = append(s.Why, fmt.Sprintf("%s may %s the recordings %s", viewer, action, strings.Join(parts, " and ")))
	}
	return s
}

// Grant adds nodes, as a viewers rule's nodes lists them (node ids,
// tags, "*"), to the scope.
func (s *ViewerScope) Grant(nodes []string) {
	for _, n := range nodes {
		switch {
		case n == "*":
			s.All = true
		case isTag(n):
			s.Tags = append(s.Tags, n)
		default:
			s.Nodes = append(s.Nodes, n)
		}
	}
	slices.Sort(s.Nodes)
	s.Nodes = slices.Compact(s.Nodes)
	slices.Sort(s.Tags)
	s.Tags = slices.Compact(s.Tags)
}

// Allows reports whether the scope covers a recording sent by node,
// which carries tags.
func (s *ViewerScope) Allows(node string, tags []string) bool {
	if s.All {
		return true
	}
	if node != "" {
		if _, ok := slices.BinarySearch(s.Nodes, node); ok {
			return true
		}
	}
	for _, t := range tags {
		if _, ok := slices.BinarySearch(s.Tags, t); ok {
			return true
		}
	}
	return false
}

// Empty reports whether the scope covers no recording at all.
func (s *ViewerScope) Empty() bool { return !s.All && len(s.Nodes) == 0 && len(s.Tags) == 0 }

func isTag(s string) bool { return len(s) > 4 && s[:4] == "tag:" }
