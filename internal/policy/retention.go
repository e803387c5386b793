package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Recording kinds a retention rule can name.
const (
	KindTerminal   = "terminal"   // an SSH (or other terminal) session
	KindKubernetes = "kubernetes" // a kubectl exec/attach session (its header has a kubernetes object)
	KindDesktop    = "desktop"    // a VNC desktop session
)

// Statuses a retention rule can name (as store.Status spells them).
var retentionStatuses = []string{"complete", "interrupted", "malformed", "failed"}

// A RetentionRule says how long the recordings it matches are kept.
// Recordings are matched against the rules in file order; the first rule
// that matches decides. A recording no rule matches is kept for ever.
type RetentionRule struct {
	Line int `json:"-"`

	// Nodes lists sender node ids, node tags ("tag:prod", matched against
	// the tags the recording's header names), or "*". Absent means any.
	Nodes []string `json:"nodes,omitempty"`
	// Users lists users and groups, matched against the recording's SSH
	// user, local user and tailnet user (whole, or the part before '@'),
	// or "*". Absent means any.
	Users []string `json:"users,omitempty"`
	// Kinds lists KindTerminal, KindKubernetes, KindDesktop. Absent means
	// any.
	Kinds []string `json:"kinds,omitempty"`
	// Statuses lists complete, interrupted, malformed, failed. Absent
	// means any.
	Statuses []string `json:"statuses,omitempty"`
	// Keep is how long after its start a recording is kept: "400d",
	// "6w", "18m" (months), "7y", or "forever".
	Keep string `json:"keep"`

	keep Keep
}

// Keep is a retention period in calendar units: a recording that started
// at t is due for deletion at t.AddDate(Years, Months, Days).
type Keep struct {
	Years, Months, Days int
	Forever             bool
}

// Until returns when a recording that started at start is due for
// deletion; ok is false for Forever.
func (k Keep) Until(start time.Time) (due time.Time, ok bool) {
	if k.Forever {
		return time.Time{}, false
	}
	return start.AddDate(k.Years, k.Months, k.Days), true
}

// ParseKeep parses a retention period: a positive count and a unit (d
// days, w weeks, m months, y years), or "forever".
func ParseKeep(s string) (Keep, error) {
	if s == "forever" {
		return Keep{Forever: true}, nil
	}
	if len(s) < 2 {
		return Keep{}, fmt.Errorf("keep %q: want a count and a unit (400d, 6w, 18m, 7y) or \"forever\"", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 || n > 1000*366 || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "0") {
		return Keep{}, fmt.Errorf("keep %q: want a positive count and a unit (400d, 6w, 18m, 7y) or \"forever\"", s)
	}
	switch s[len(s)-1] {
	case 'd':
		return Keep{Days: n}, nil
	case 'w':
		return Keep{Days: 7 * n}, nil
	case 'm':
		return Keep{Months: n}, nil
	case 'y':
		return Keep{Years: n}, nil
	}
	return Keep{}, fmt.Errorf("keep %q: unknown unit %q: want d, w, m or y (or \"forever\")", s, s[len(s)-1:])
}

// RetentionSubject describes a stored recording for Retention.
type RetentionSubject struct {
	Node   string   // the sender's node id
	Tags   []string // the sender's tags, from the recording's header
	Users  []string // the SSH user, local user and tailnet user, where known
	Kind   string   // KindTerminal, KindKubernetes or KindDesktop
	Status string   // complete, interrupted, malformed or failed
}

// Retention returns how long the recording s describes is kept, and the
// index of the rule that says so (-1 when no rule matches: kept for ever),
// with the reason.
func (p *Policy) Retention(s RetentionSubject) (keep Keep, rule int, why string) {
	if p == nil {
		return Keep{Forever: true}, -1, "no policy: kept for ever"
	}
	for i, r := range p.RetentionRules {
		if p.retentionMatch(r, s) {
			return r.keep, i, fmt.Sprintf("retention rule #%d (line %d): keep %s", i+1, r.Line, r.Keep)
		}
	}
	return Keep{Forever: true}, -1, "no retention rule matches: kept for ever"
}

// NeedsHeader reports whether a retention decision can depend on what a
// recording's header says (users, tags, Kubernetes), so that the caller
// must read it.
func (p *Policy) NeedsHeader() bool {
	if p == nil {
		return false
	}
	for _, r := range p.RetentionRules {
		if len(r.Users) > 0 || slices.ContainsFunc(r.Nodes, func(n string) bool { return strings.HasPrefix(n, "tag:") }) || slices.Contains(r.Kinds, KindKubernetes) || slices.Contains(r.Kinds, KindTerminal) {
			return true
		}
	}
	return false
}

func (p *Policy) retentionMatch(r RetentionRule, s RetentionSubject) bool {
	if len(r.Nodes) > 0 && !slices.ContainsFunc(r.Nodes, func(n string) bool {
		return n == "*" || n == s.Node || strings.HasPrefix(n, "tag:") && slices.Contains(s.Tags, n)
	}) {
		return false
	}
	if len(r.Users) > 0 && !slices.ContainsFunc(r.Users, func(u string) bool {
		if u == "*" {
			return true
		}
		for _, who := range s.Users {
			local, _, _ := strings.Cut(who, "@")
			if strings.HasPrefix(u, "group:") {
				if p.members[u][who] || p.members[u][local] {
					return true
				}
			} else if strings.EqualFold(u, who) || strings.EqualFold(u, local) {
				return true
			}
		}
		return false
	}) {
		return false
	}
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, s.Kind) {
		return false
	}
	return len(r.Statuses) == 0 || slices.Contains(r.Statuses, s.Status)
}

type rawRetention struct {
	off                           int
	nodes, users, kinds, statuses plist
	keep                          pstr
}

func (d *decoder) decodeRetention(i int, v *hujson.Value) rawRetention {
	what := fmt.Sprintf("retention rule #%d", i+1)
	r := rawRetention{off: v.StartOffset}
	d.object(v, what, []field{
		{name: "nodes", decode: func(v *hujson.Value) { r.nodes = d.strList(v, what+": nodes") }},
		{name: "users", decode: func(v *hujson.Value) { r.users = d.strList(v, what+": users") }},
		{name: "kinds", decode: func(v *hujson.Value) { r.kinds = d.strList(v, what+": kinds") }},
		{name: "statuses", decode: func(v *hujson.Value) { r.statuses = d.strList(v, what+": statuses") }},
		{name: "keep", required: true, decode: func(v *hujson.Value) { r.keep, _ = d.str(v, what+": keep") }},
	})
	return r
}

func (d *decoder) validateRetention(p *Policy, i int, r rawRetention) RetentionRule {
	what := fmt.Sprintf("retention rule #%d", i+1)
	rule := RetentionRule{
		Line:     d.line(r.off),
		Nodes:    pstrings(r.nodes.items),
		Users:    pstrings(r.users.items),
		Kinds:    pstrings(r.kinds.items),
		Statuses: pstrings(r.statuses.items),
		Keep:     r.keep.s,
	}
	if r.keep.off != 0 {
		k, err := ParseKeep(r.keep.s)
		if err != nil {
			d.errorf(r.keep.off, "%s: %v", what, err)
		}
		rule.keep = k
	}
	for _, l := range []struct {
		name string
		list plist
	}{{"nodes", r.nodes}, {"users", r.users}, {"kinds", r.kinds}, {"statuses", r.statuses}} {
		if l.list.set {
			d.checkNonEmpty(what, l.name, l.list, true)
		}
	}
	for _, n := range r.nodes.items {
		if n.s == "" {
			d.errorf(n.off, "%s: nodes: empty node", what)
		} else if strings.HasPrefix(n.s, "tag:") && !tagRE.MatchString(n.s) {
			d.errorf(n.off, "%s: nodes: bad tag %q", what, n.s)
		}
	}
	for _, u := range r.users.items {
		switch {
		case u.s == "":
			d.errorf(u.off, "%s: users: empty user", what)
		case strings.HasPrefix(u.s, "group:"):
			if _, ok := p.Groups[u.s]; !ok {
				d.errorf(u.off, "%s: users: undefined group %q", what, u.s)
			}
		}
	}
	kinds := []string{KindTerminal, KindKubernetes, KindDesktop}
	for _, k := range r.kinds.items {
		if !slices.Contains(kinds, k.s) {
			d.errorf(k.off, "%s: unknown kind %q%s", what, k.s, suggest(k.s, kinds))
		}
	}
	for _, s := range r.statuses.items {
		if !slices.Contains(retentionStatuses, s.s) {
			d.errorf(s.off, "%s: unknown status %q%s (a live recording is never deleted)", what, s.s, suggest(s.s, retentionStatuses))
		}
	}
	if !r.nodes.set {
		rule.Nodes = nil
	}
	if !r.users.set {
		rule.Users = nil
	}
	if !r.kinds.set {
		rule.Kinds = nil
	}
	if !r.statuses.set {
		rule.Statuses = nil
	}
	return rule
}
