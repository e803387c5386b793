// Package policy parses, validates and evaluates reel's policy file: a
// HuJSON document (JSON with comments and trailing commas, like a tailnet
// policy file) that says who may open which SSH sessions, which sessions
// and Kubernetes API sessions are recorded and by which recorders, and who
// may view which recordings. Only the SSH rules are enforced today (by reel
// ssh); the kubernetes rules are for reel kube-proxy and the viewers rules
// for the web UI, both planned: they are parsed, checked and explained.
//
// A policy file has these top-level fields, all optional:
//
//	groups      {"group:eng": ["alice", "bob@example.com", "group:sre"]}
//	recorders   {"tag:recorder": ["100.64.0.9:80", "[fd7a:115c::9]:80"]}
//	recording   "on" (the default) or "off"
//	ssh         [ {action, src, dst, users, recorder, enforceRecorder, inputRecording} ]
//	kubernetes  [ {action, src, namespaces, pods, recorder, enforceRecorder, enableEvents} ]
//	viewers     [ {src, nodes, actions} ]
//	admins      ["alice", "group:sre"]
//	desktop     [ {action, src, dst, recorder, enforceRecorder, keyRecording, clipboardRecording} ]
//	retention   [ {nodes, users, kinds, statuses, keep} ]
//
// Parse is strict: a syntax error, an unknown or duplicate field, a value
// of the wrong type, a reference to an undefined group or recorder tag, a
// bad CIDR or address, or a group that contains itself is an error, and
// every error found is reported at its line and column in the original
// text. A typo in a security policy must never be silently ignored.
//
// The decisions (SSH, Kubernetes, CanView, ViewerScope, IsAdmin) are documented on their
// methods and in docs/policy.md. A Holder keeps the current policy of a
// file and reloads it on SIGHUP and when the file changes, keeping the old
// policy when the new one is bad.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

// Actions of an SSH rule.
const (
	Accept = "accept"
	Reject = "reject"
)

// Actions a viewers rule can grant.
const (
	ActionView     = "view"
	ActionDownload = "download"
)

// AutogroupNonroot in an SSH rule's users admits every local user but root.
const AutogroupNonroot = "autogroup:nonroot"

// A Policy is a parsed and validated policy file. It is immutable: its
// fields are for reading (the CLI prints them, tests compare them) and
// must not be modified, since Parse also derives private indexes from
// them. Encoding a Policy with encoding/json gives a standard JSON policy
// file that parses to the same Policy.
type Policy struct {
	// Name is the file name given to Parse, used in messages.
	Name string `json:"-"`
	// Groups maps "group:name" to its members: users and other groups.
	Groups map[string][]string `json:"groups,omitempty"`
	// Recorders maps a recorder tag ("tag:name") to the addresses of the
	// recorders that carry it, in the order senders try them.
	Recorders map[string][]netip.AddrPort `json:"recorders,omitempty"`
	// Recording is "", "on" or "off"; "off" disables recording everywhere.
	Recording string `json:"recording,omitempty"`
	// SSHRules are the "ssh" rules, in file order.
	SSHRules []SSHRule `json:"ssh,omitempty"`
	// KubeRules are the "kubernetes" rules, in file order.
	KubeRules []KubeRule `json:"kubernetes,omitempty"`
	// ViewerRules are the "viewers" rules, in file order.
	ViewerRules []ViewerRule `json:"viewers,omitempty"`
	// Admins are the UI's administrators: users and groups, as in a
	// viewers rule's src ("*" is refused: everyone an admin is a
	// mistake). An admin sees every recording and the audit log.
	Admins []string `json:"admins,omitempty"`
	// DesktopRules are the "desktop" rules, in file order (desktop.go).
	DesktopRules []DesktopRule `json:"desktop,omitempty"`
	// RetentionRules are the "retention" rules, in file order
	// (retention.go).
	RetentionRules []RetentionRule `json:"retention,omitempty"`

	// members maps each group to the set of users in it, nested groups
	// expanded.
	members map[string]map[string]bool
	// admins is Admins compiled.
	admins []principal
}

// An SSHRule admits (accept) or refuses (reject) SSH sessions.
type SSHRule struct {
	Line int `json:"-"` // line of the rule's opening brace

	// Action is Accept or Reject.
	Action string `json:"action"`
	// Src lists who the rule applies to: user names ("alice",
	// "alice@example.com"), groups ("group:eng"), IP addresses or CIDRs
	// ("10.0.0.0/8") matched against the client address, or "*" for
	// everyone. Any one entry matching is enough.
	Src []string `json:"src"`
	// Dst lists the hosts the rule applies to: host names, tags of this
	// host ("tag:prod"), or "*".
	Dst []string `json:"dst"`
	// Users lists the local users a session may run as: names, "root",
	// AutogroupNonroot, or "*" meaning the local user with the same name
	// as the SSH user (or its part before "@"). Required for accept
	// rules; a reject rule without users applies to every local user.
	Users []string `json:"users,omitempty"`
	// Recorder lists recorder tags; an accept rule that names one asks
	// for the session to be recorded.
	Recorder []string `json:"recorder,omitempty"`
	// EnforceRecorder refuses a session that cannot be recorded (fail
	// closed) instead of letting it run unrecorded (fail open).
	EnforceRecorder bool `json:"enforceRecorder,omitempty"`
	// InputRecording opts in to recording what the user types (never
	// while the terminal's echo is off). Off by default.
	InputRecording bool `json:"inputRecording,omitempty"`

	src []principal
}

// A KubeRule admits or refuses requests through reel kube-proxy, and asks
// for the sessions (exec, attach) and API requests it admits to be
// recorded.
type KubeRule struct {
	Line int `json:"-"`

	// Action is Accept (also when absent) or Reject.
	Action string `json:"action,omitempty"`
	// Src is who the rule applies to, as in SSHRule.Src, and also
	// Kubernetes groups ("k8s-group:system:masters") and Kubernetes user
	// names with ':' ("system:serviceaccount:ci:deployer").
	Src []string `json:"src"`
	// Namespaces lists namespace names, or "*" for all (including
	// requests that have no namespace).
	Namespaces []string `json:"namespaces"`
	// Pods, if set, limits the rule to requests about these pods: names,
	// in which '*' matches any run of characters ("web-*"). A request
	// that names no pod does not match a rule with Pods.
	Pods []string `json:"pods,omitempty"`
	// Recorder lists recorder tags; an accept rule that names one asks
	// for recording.
	Recorder []string `json:"recorder,omitempty"`
	// EnforceRecorder refuses a session that cannot be recorded.
	EnforceRecorder bool `json:"enforceRecorder,omitempty"`
	// EnableEvents sends every API request to the recorder as an event.
	EnableEvents bool `json:"enableEvents,omitempty"`

	src []principal
}

// A ViewerRule lets users view recordings in the (planned) web UI.
type ViewerRule struct {
	Line int `json:"-"`

	// Src lists users, groups, or "*" (every authenticated viewer).
	Src []string `json:"src"`
	// Nodes lists the recordings the rule covers, by the node that sent
	// them: node ids, node tags ("tag:prod"), or "*".
	Nodes []string `json:"nodes"`
	// Actions lists what the rule grants: ActionView, ActionDownload.
	// Absent means every action.
	Actions []string `json:"actions,omitempty"`

	src []principal
}

// principalKind says what a src entry is.
type principalKind uint8

const (
	anyone principalKind = iota
	user
	group
	prefix
	kubeGroup // a Kubernetes group, "k8s-group:NAME" (kubernetes rules only)
)

// KubeGroupPrefix starts a src entry that names a Kubernetes group.
const KubeGroupPrefix = "k8s-group:"

// principal is one compiled src entry.
type principal struct {
	raw    string
	kind   principalKind
	prefix netip.Prefix
}

// Parse parses and validates the HuJSON policy src. name is the file name
// used in error messages. The error, if any, joins one *Error per problem,
// sorted by position, each printed as "NAME:LINE:COL: message".
func Parse(name string, src []byte) (*Policy, error) {
	d := &decoder{name: name, src: src}
	// hujson.Parse aliases its input; work on a copy so that the caller's
	// buffer is never referenced by the result.
	root, err := hujson.Parse(slices.Clone(src))
	if err != nil {
		d.syntaxError(err)
		return nil, d.err()
	}
	raw := d.decode(&root)
	p := d.validate(raw)
	p.Name = name
	if err := d.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// err returns the errors found so far, sorted by position, or nil.
func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.off - b.off })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// validate runs the semantic checks on raw and builds the Policy. Errors
// go to d.errs; the Policy it returns is only meaningful without errors.
func (d *decoder) validate(raw *rawPolicy) *Policy {
	p := &Policy{}
	if raw.recording.off != 0 || raw.recording.s != "" {
		switch raw.recording.s {
		case "on", "off":
			p.Recording = raw.recording.s
		default:
			d.errorf(raw.recording.off, "recording: want \"on\" or \"off\", got %q", raw.recording.s)
		}
	}

	// Groups first: src entries refer to them.
	p.Groups = map[string][]string{}
	for _, g := range raw.groups {
		if !groupRE.MatchString(g.name.s) {
			d.errorf(g.name.off, "groups: bad group name %q: want \"group:\" and a name of letters, digits, '.', '_' or '-'", g.name.s)
		}
		p.Groups[g.name.s] = pstrings(g.members.items)
	}
	for _, g := range raw.groups {
		for _, m := range g.members.items {
			d.checkGroupMember(p, g.name.s, m)
		}
	}
	d.checkGroupCycles(p, raw)
	p.members = expandGroups(p.Groups)

	p.Recorders = map[string][]netip.AddrPort{}
	for _, r := range raw.recorders {
		if !tagRE.MatchString(r.tag.s) {
			d.errorf(r.tag.off, "recorders: bad tag %q: want \"tag:\" and a name of letters, digits and '-', starting with a letter", r.tag.s)
		}
		if r.addrs.set && len(r.addrs.items) == 0 {
			d.errorf(r.addrs.off, "recorders: %q has no addresses", r.tag.s)
		}
		addrs := []netip.AddrPort{}
		for _, a := range r.addrs.items {
			ap, err := netip.ParseAddrPort(a.s)
			switch {
			case err != nil:
				d.errorf(a.off, "recorders: %q: bad address %q: want IP:port such as \"100.64.0.9:80\" or \"[fd7a:115c::9]:80\" (host names are not resolved)", r.tag.s, a.s)
			case ap.Port() == 0:
				d.errorf(a.off, "recorders: %q: address %q has port 0", r.tag.s, a.s)
			case ap.Addr().Zone() != "":
				d.errorf(a.off, "recorders: %q: address %q has a zone", r.tag.s, a.s)
			case slices.Contains(addrs, ap):
				d.errorf(a.off, "recorders: %q: duplicate address %q", r.tag.s, a.s)
			default:
				addrs = append(addrs, ap)
			}
		}
		p.Recorders[r.tag.s] = addrs
	}

	for i, r := range raw.ssh {
		p.SSHRules = append(p.SSHRules, d.validateSSH(p, i, r))
	}
	for i, r := range raw.kube {
		p.KubeRules = append(p.KubeRules, d.validateKube(p, i, r))
	}
	for i, r := range raw.viewers {
		p.ViewerRules = append(p.ViewerRules, d.validateViewer(p, i, r))
	}
	if raw.admins.set {
		p.Admins = pstrings(raw.admins.items)
		for _, a := range raw.admins.items {
			if a.s == "*" {
				d.errorf(a.off, "admins: \"*\" would make every viewer an admin; list users and groups")
			}
		}
		p.admins = d.checkSrc(p, "admins", raw.admins, false)
	}
	for i, r := range raw.desktop {
		p.DesktopRules = append(p.DesktopRules, d.validateDesktop(p, i, r))
	}
	for i, r := range raw.retention {
		p.RetentionRules = append(p.RetentionRules, d.validateRetention(p, i, r))
	}
	if len(p.Groups) == 0 {
		p.Groups = nil
	}
	if len(p.Recorders) == 0 {
		p.Recorders = nil
	}
	return p
}

func (d *decoder) line(off int) int {
	line, _ := lineCol(d.src, off)
	return line
}

func (d *decoder) validateSSH(p *Policy, i int, r rawSSH) SSHRule {
	what := fmt.Sprintf("ssh rule #%d", i+1)
	rule := SSHRule{
		Line:            d.line(r.off),
		Action:          r.action.s,
		Src:             pstrings(r.src.items),
		Dst:             pstrings(r.dst.items),
		Users:           pstrings(r.users.items),
		Recorder:        pstrings(r.recorder.items),
		EnforceRecorder: r.enforceRecorder.v,
		InputRecording:  r.inputRecording.v,
	}
	if !r.users.set {
		rule.Users = nil
	}
	if !r.recorder.set {
		rule.Recorder = nil
	}
	d.checkAction(what, r.action)
	rule.src = d.checkSrc(p, what, r.src, true)
	d.checkNonEmpty(what, "dst", r.dst, true)
	for _, h := range r.dst.items {
		d.checkDst(what, h)
	}
	switch {
	case r.users.set:
		d.checkNonEmpty(what, "users", r.users, true)
		for _, u := range r.users.items {
			d.checkLocalUser(what, u)
		}
	case r.action.s == Accept:
		d.errorf(r.off, "%s: an accept rule needs \"users\": the local users it admits", what)
	}
	if r.recorder.set {
		d.checkNonEmpty(what, "recorder", r.recorder, false)
		d.checkRecorders(p, what, r.recorder.items)
	}
	if r.action.s == Reject {
		if r.recorder.set {
			d.errorf(r.recorder.off, "%s: a reject rule records nothing: remove \"recorder\"", what)
		}
		if r.enforceRecorder.set {
			d.errorf(r.enforceRecorder.off, "%s: a reject rule records nothing: remove \"enforceRecorder\"", what)
		}
		if r.inputRecording.set {
			d.errorf(r.inputRecording.off, "%s: a reject rule records nothing: remove \"inputRecording\"", what)
		}
	} else {
		if r.enforceRecorder.v && len(r.recorder.items) == 0 {
			d.errorf(r.enforceRecorder.off, "%s: enforceRecorder needs a \"recorder\"", what)
		}
		if r.inputRecording.v && len(r.recorder.items) == 0 {
			d.errorf(r.inputRecording.off, "%s: inputRecording needs a \"recorder\"", what)
		}
	}
	return rule
}

func (d *decoder) validateKube(p *Policy, i int, r rawKube) KubeRule {
	what := fmt.Sprintf("kubernetes rule #%d", i+1)
	rule := KubeRule{
		Line:            d.line(r.off),
		Action:          r.action.s,
		Src:             pstrings(r.src.items),
		Namespaces:      pstrings(r.namespaces.items),
		Pods:            pstrings(r.pods.items),
		Recorder:        pstrings(r.recorder.items),
		EnforceRecorder: r.enforceRecorder.v,
		EnableEvents:    r.enableEvents.v,
	}
	if !r.pods.set {
		rule.Pods = nil
	}
	if !r.recorder.set {
		rule.Recorder = nil
	}
	d.checkAction(what, r.action)
	rule.src = d.checkSrcKube(p, what, r.src)
	d.checkNonEmpty(what, "namespaces", r.namespaces, true)
	for _, ns := range r.namespaces.items {
		if ns.s != "*" && !namespaceRE.MatchString(ns.s) {
			d.errorf(ns.off, "%s: bad namespace %q: want a Kubernetes namespace name (lowercase letters, digits, '-') or \"*\"", what, ns.s)
		}
	}
	if r.pods.set {
		d.checkNonEmpty(what, "pods", r.pods, true)
		for _, pod := range r.pods.items {
			if pod.s != "*" && !podPatternRE.MatchString(pod.s) {
				d.errorf(pod.off, "%s: bad pod %q: want a pod name (lowercase letters, digits, '-', '.'), in which '*' matches anything", what, pod.s)
			}
		}
	}
	if r.recorder.set {
		d.checkNonEmpty(what, "recorder", r.recorder, false)
		d.checkRecorders(p, what, r.recorder.items)
	}
	if r.action.s == Reject {
		for _, f := range []struct {
			name string
			set  bool
			off  int
		}{{"recorder", r.recorder.set, r.recorder.off}, {"enforceRecorder", r.enforceRecorder.set, r.enforceRecorder.off}, {"enableEvents", r.enableEvents.set, r.enableEvents.off}} {
			if f.set {
				d.errorf(f.off, "%s: a reject rule records nothing: remove %q", what, f.name)
			}
		}
	} else {
		if r.enforceRecorder.v && len(r.recorder.items) == 0 {
			d.errorf(r.enforceRecorder.off, "%s: enforceRecorder needs a \"recorder\"", what)
		}
		if r.enableEvents.v && len(r.recorder.items) == 0 {
			d.errorf(r.enableEvents.off, "%s: enableEvents needs a \"recorder\"", what)
		}
	}
	return rule
}

func (d *decoder) validateViewer(p *Policy, i int, r rawViewer) ViewerRule {
	what := fmt.Sprintf("viewers rule #%d", i+1)
	rule := ViewerRule{
		Line:    d.line(r.off),
		Src:     pstrings(r.src.items),
		Nodes:   pstrings(r.nodes.items),
		Actions: pstrings(r.actions.items),
	}
	if !r.actions.set {
		rule.Actions = nil
	}
	rule.src = d.checkSrc(p, what, r.src, false)
	d.checkNonEmpty(what, "nodes", r.nodes, true)
	for _, n := range r.nodes.items {
		switch {
		case n.s == "*":
		case strings.HasPrefix(n.s, "tag:"):
			if !tagRE.MatchString(n.s) {
				d.errorf(n.off, "%s: bad tag %q", what, n.s)
			}
		case !nodeRE.MatchString(n.s):
			d.errorf(n.off, "%s: bad node %q: want a node id (letters, digits, '.', '_', '-'), a tag, or \"*\"", what, n.s)
		}
	}
	if r.actions.set {
		d.checkNonEmpty(what, "actions", r.actions, false)
		for _, a := range r.actions.items {
			if a.s != ActionView && a.s != ActionDownload {
				d.errorf(a.off, "%s: unknown action %q%s", what, a.s, suggest(a.s, []string{ActionView, ActionDownload}))
			}
		}
	}
	return rule
}

// checkAction reports an action that is neither accept nor reject.
func (d *decoder) checkAction(what string, action pstr) {
	switch action.s {
	case Accept, Reject:
	case "":
		if action.off != 0 {
			d.errorf(action.off, "%s: action: want %q or %q", what, Accept, Reject)
		}
	default:
		d.errorf(action.off, "%s: unknown action %q%s", what, action.s, suggest(action.s, []string{Accept, Reject}))
	}
}

// checkNonEmpty reports an empty list. Lists that were absent or of the
// wrong type have already been reported by the decoder; an empty list
// here is one written as [].
func (d *decoder) checkNonEmpty(what, field string, list plist, starHint bool) {
	if list.set && len(list.items) == 0 {
		hint := ""
		if starHint {
			hint = ` (use ["*"] for all)`
		}
		d.errorf(list.off, "%s: %s is empty%s", what, field, hint)
	}
}

// checkSrc validates and compiles the src entries of a rule. allowAddr
// says whether IP addresses and CIDRs may appear (not in viewers rules,
// where the viewer is an identity without an address).
func (d *decoder) checkSrc(p *Policy, what string, src plist, allowAddr bool) []principal {
	d.checkNonEmpty(what, "src", src, true)
	var out []principal
	for _, s := range src.items {
		pr, ok := d.principal(p, what, s, allowAddr)
		if ok {
			out = append(out, pr)
		}
	}
	return out
}

// checkSrcKube is checkSrc for a kubernetes rule: its src may also name
// Kubernetes groups ("k8s-group:NAME") and Kubernetes users whose names
// hold ':' ("system:serviceaccount:ns:name"); an entry with ':' that is
// not an IP address or CIDR is such a user.
func (d *decoder) checkSrcKube(p *Policy, what string, src plist) []principal {
	d.checkNonEmpty(what, "src", src, true)
	var out []principal
	for _, s := range src.items {
		v := s.s
		switch {
		case strings.HasPrefix(v, KubeGroupPrefix):
			if name := strings.TrimPrefix(v, KubeGroupPrefix); name == "" || !kubeUserRE.MatchString(name) {
				d.errorf(s.off, "%s: src: bad Kubernetes group %q", what, v)
				continue
			}
			out = append(out, principal{raw: v, kind: kubeGroup})
			continue
		case strings.Contains(v, ":") && !strings.Contains(v, "/") && kubeUserRE.MatchString(v) &&
			!strings.HasPrefix(v, "group:") && !strings.HasPrefix(v, "tag:") && !strings.HasPrefix(v, "autogroup:"):
			if _, err := netip.ParseAddr(v); err != nil {
				out = append(out, principal{raw: v, kind: user})
				continue
			}
		}
		if pr, ok := d.principal(p, what, s, true); ok {
			out = append(out, pr)
		}
	}
	return out
}

func (d *decoder) principal(p *Policy, what string, s pstr, allowAddr bool) (principal, bool) {
	v := s.s
	pr := principal{raw: v}
	switch {
	case strings.HasPrefix(v, KubeGroupPrefix):
		d.errorf(s.off, "%s: src: %q: Kubernetes groups can only be a source in kubernetes rules", what, v)
	case v == "":
		d.errorf(s.off, "%s: src: empty string", what)
	case v == "*":
		pr.kind = anyone
		return pr, true
	case strings.HasPrefix(v, "group:"):
		if _, ok := p.Groups[v]; !ok {
			d.errorf(s.off, "%s: src: unknown group %q%s", what, v, suggestGroup(p, v))
			return pr, false
		}
		pr.kind = group
		return pr, true
	case strings.HasPrefix(v, "tag:"):
		d.errorf(s.off, "%s: src: %q: tags cannot be a source; src takes users, groups, addresses and \"*\"", what, v)
	case strings.HasPrefix(v, "autogroup:"):
		d.errorf(s.off, "%s: src: unknown autogroup %q", what, v)
	case looksLikeAddr(v):
		if !allowAddr {
			d.errorf(s.off, "%s: src: %q: addresses are not identities here; src takes users, groups and \"*\"", what, v)
			return pr, false
		}
		pfx, err := parsePrefix(v)
		if err != nil {
			d.errorf(s.off, "%s: src: %v", what, err)
			return pr, false
		}
		pr.kind, pr.prefix = prefix, pfx
		return pr, true
	case !userRE.MatchString(v):
		d.errorf(s.off, "%s: src: bad user name %q", what, v)
	default:
		pr.kind = user
		return pr, true
	}
	return pr, false
}

// looksLikeAddr reports whether s is meant as an IP address or CIDR: it
// has a '/' or ':', or only digits and dots.
func looksLikeAddr(s string) bool {
	if strings.ContainsAny(s, "/:") {
		return true
	}
	return strings.Trim(s, "0123456789.") == ""
}

// parsePrefix parses an IP address or CIDR. A CIDR with host bits set
// (10.0.0.5/8) is an error: it is more likely a typo than a wish.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		if pfx.Masked() != pfx {
			return netip.Prefix{}, fmt.Errorf("CIDR %q has bits set after the prefix length (did you mean %q?)", s, pfx.Masked().String())
		}
		return pfx, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad IP address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (d *decoder) checkDst(what string, h pstr) {
	switch {
	case h.s == "*":
	case strings.HasPrefix(h.s, "tag:"):
		if !tagRE.MatchString(h.s) {
			d.errorf(h.off, "%s: dst: bad tag %q", what, h.s)
		}
	case strings.HasPrefix(h.s, "group:"), strings.HasPrefix(h.s, "autogroup:"):
		d.errorf(h.off, "%s: dst: %q: dst takes host names, tags and \"*\"", what, h.s)
	case !hostRE.MatchString(h.s):
		d.errorf(h.off, "%s: dst: bad host name %q", what, h.s)
	}
}

func (d *decoder) checkLocalUser(what string, u pstr) {
	switch {
	case u.s == "*", u.s == AutogroupNonroot:
	case strings.HasPrefix(u.s, "autogroup:"):
		d.errorf(u.off, "%s: users: unknown autogroup %q%s", what, u.s, suggest(u.s, []string{AutogroupNonroot}))
	case strings.HasPrefix(u.s, "group:"):
		d.errorf(u.off, "%s: users: %q: users takes local user names, %q and \"*\"", what, u.s, AutogroupNonroot)
	case !localUserRE.MatchString(u.s):
		d.errorf(u.off, "%s: users: bad local user name %q", what, u.s)
	}
}

func (d *decoder) checkRecorders(p *Policy, what string, tags []pstr) {
	for _, t := range tags {
		switch {
		case !strings.HasPrefix(t.s, "tag:"):
			d.errorf(t.off, "%s: recorder: %q: want a recorder tag such as \"tag:recorder\"", what, t.s)
		case p.Recorders[t.s] == nil:
			known := make([]string, 0, len(p.Recorders))
			for k := range p.Recorders {
				known = append(known, k)
			}
			slices.Sort(known)
			hint := ` (define it in "recorders")`
			if s := suggest(t.s, known); strings.HasPrefix(s, " (did") {
				hint = s
			}
			d.errorf(t.off, "%s: recorder: unknown recorder tag %q%s", what, t.s, hint)
		}
	}
}

func (d *decoder) checkGroupMember(p *Policy, g string, m pstr) {
	what := "group " + strconv.Quote(g)
	switch {
	case strings.HasPrefix(m.s, "group:"):
		if _, ok := p.Groups[m.s]; !ok {
			d.errorf(m.off, "%s: unknown group %q%s", what, m.s, suggestGroup(p, m.s))
		}
	case m.s == "*" || strings.HasPrefix(m.s, "tag:") || strings.HasPrefix(m.s, "autogroup:") || looksLikeAddr(m.s):
		d.errorf(m.off, "%s: %q: a group holds users and groups", what, m.s)
	case !userRE.MatchString(m.s):
		d.errorf(m.off, "%s: bad user name %q", what, m.s)
	}
}

// checkGroupCycles reports every group that contains itself, directly or
// through other groups, at the member that closes the loop.
func (d *decoder) checkGroupCycles(p *Policy, raw *rawPolicy) {
	pos := map[string][]pstr{}
	for _, g := range raw.groups {
		pos[g.name.s] = g.members.items
	}
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(g string)
	visit = func(g string) {
		state[g] = active
		path = append(path, g)
		for _, m := range pos[g] {
			if _, ok := p.Groups[m.s]; !ok {
				continue
			}
			switch state[m.s] {
			case active:
				i := slices.Index(path, m.s)
				loop := strings.Join(append(slices.Clone(path[i:]), m.s), " -> ")
				d.errorf(m.off, "group %q: %q contains itself (%s)", g, m.s, loop)
			case unseen:
				visit(m.s)
			}
		}
		path = path[:len(path)-1]
		state[g] = done
	}
	for _, g := range raw.groups {
		if state[g.name.s] == unseen {
			visit(g.name.s)
		}
	}
}

// expandGroups maps each group to the users it holds, nested groups
// expanded. It tolerates cycles (they have been reported).
func expandGroups(groups map[string][]string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for g := range groups {
		users := map[string]bool{}
		seen := map[string]bool{g: true}
		stack := []string{g}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, m := range groups[cur] {
				if _, isGroup := groups[m]; isGroup {
					if !seen[m] {
						seen[m] = true
						stack = append(stack, m)
					}
					continue
				}
				users[m] = true
			}
		}
		out[g] = users
	}
	return out
}

func suggestGroup(p *Policy, g string) string {
	known := make([]string, 0, len(p.Groups))
	for k := range p.Groups {
		known = append(known, k)
	}
	slices.Sort(known)
	if s := suggest(g, known); strings.HasPrefix(s, " (did") {
		return s
	}
	return ` (define it in "groups")`
}

func pstrings(list []pstr) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.s
	}
	return out
}
