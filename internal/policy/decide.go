package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// An SSHRequest describes an SSH session asking to start.
type SSHRequest struct {
	// User is the identity of the connecting user, as authenticated
	// ("alice" or "alice@example.com"). src user entries and group
	// members are compared with it exactly.
	User string
	// Src is the client's address; IPv4-mapped IPv6 addresses are
	// unmapped. The zero Addr matches no address or CIDR entry.
	Src netip.Addr
	// LocalUser is the local account the session asks to run as.
	// Required: an empty LocalUser is rejected.
	LocalUser string
	// Host is this host's name, matched case-insensitively against the
	// host names in dst.
	Host string
	// HostTags are this host's tags ("tag:prod"), matched against the
	// tags in dst.
	HostTags []string
}

// An SSHDecision is the outcome of Policy.SSH.
type SSHDecision struct {
	Action    string // Accept or Reject
	Rule      int    // index in Policy.SSHRules of the rule that decided, -1 if none
	Line      int    // line of that rule, 0 if none
	LocalUser string // the local user the session runs as (when accepted)

	// Record is true when the session must be recorded to Recorders.
	Record bool
	// RecordRule is the index of the rule the recording settings come
	// from, -1 if none; RecordLine is its line.
	RecordRule int
	RecordLine int
	// Recorders are the addresses to try, in order.
	Recorders []netip.AddrPort
	// EnforceRecorder: refuse the session if it cannot be recorded.
	EnforceRecorder bool
	// RecordInput: record the user's keystrokes too (never while the
	// terminal's echo is off).
	RecordInput bool

	// Why explains the decision, one reason per line.
	Why []string
}

// SSH decides whether the session r may start, and how it is recorded.
//
// Rules are tried in file order; the first rule that matches r (src
// admits r.User or r.Src, dst admits r.Host or one of r.HostTags, users
// admits r.LocalUser) decides: accept or reject. When no rule matches,
// the session is rejected (default deny).
//
// An accepted session is recorded when any accept rule that matches it
// names a recorder, even a rule after the one that decided. The
// recorders, EnforceRecorder and RecordInput come from the first such
// rule in file order. With recording "off" nothing is recorded and
// nothing is enforced.
func (p *Policy) SSH(r SSHRequest) SSHDecision {
	d := SSHDecision{Action: Reject, Rule: -1, RecordRule: -1, LocalUser: r.LocalUser}
	r.Src = r.Src.Unmap()
	who := describeWho(r.User, r.Src)
	if r.LocalUser == "" {
		d.Why = append(d.Why, "reject: no local user requested")
		return d
	}
	for i := range p.SSHRules {
		rule := &p.SSHRules[i]
		where := fmt.Sprintf("ssh rule #%d (line %d)", i+1, rule.Line)
		why, ok := p.matchSSH(rule, r, who)
		if !ok {
			d.Why = append(d.Why, where+": no match: "+why)
			continue
		}
		if d.Rule < 0 {
			d.Rule, d.Line, d.Action = i, rule.Line, rule.Action
			d.Why = append(d.Why, where+": "+rule.Action+": "+why)
			if rule.Action == Reject {
				break
			}
			if len(rule.Recorder) > 0 {
				d.RecordRule = i
				break
			}
			continue
		}
		if rule.Action == Reject {
			d.Why = append(d.Why, where+": matches too, but an earlier rule decided")
			continue
		}
		if len(rule.Recorder) > 0 {
			d.Why = append(d.Why, where+": also admits the session and names a recorder: "+why)
			d.RecordRule = i
			break
		}
		d.Why = append(d.Why, where+": also admits the session, names no recorder")
	}
	if d.Rule < 0 {
		d.Why = append(d.Why, fmt.Sprintf("reject: no rule admits %s as local user %q on %s (default deny)", who, r.LocalUser, describeHost(r.Host, r.HostTags)))
		return d
	}
	if d.Action == Reject {
		d.Why = append(d.Why, fmt.Sprintf("reject: by ssh rule #%d (line %d)", d.Rule+1, d.Line))
		return d
	}
	d.Why = append(d.Why, fmt.Sprintf("accept: by ssh rule #%d (line %d), as local user %q", d.Rule+1, d.Line, r.LocalUser))
	if d.RecordRule < 0 {
		d.Why = append(d.Why, "not recorded: no rule that admits the session names a recorder")
		return d
	}
	rule := &p.SSHRules[d.RecordRule]
	d.RecordLine = rule.Line
	if p.Recording == "off" {
		d.Why = append(d.Why, fmt.Sprintf("not recorded: recording is \"off\" for the whole policy (ssh rule #%d would record)", d.RecordRule+1))
		d.RecordRule, d.RecordLine = -1, 0
		return d
	}
	d.Record = true
	d.Recorders = p.resolve(rule.Recorder)
	d.EnforceRecorder = rule.EnforceRecorder
	d.RecordInput = rule.InputRecording
	d.Why = append(d.Why, p.recordingWhy("ssh", d.RecordRule, rule.Line, rule.Recorder, d.Recorders, rule.EnforceRecorder))
	if rule.InputRecording {
		d.Why = append(d.Why, "input recorded (inputRecording), except while the terminal's echo is off")
	} else {
		d.Why = append(d.Why, "input not recorded")
	}
	return d
}

// matchSSH reports whether rule matches r, and says why or why not.
func (p *Policy) matchSSH(rule *SSHRule, r SSHRequest, who string) (string, bool) {
	src, ok := p.matchSrc(rule.src, r.User, r.Src)
	if !ok {
		return fmt.Sprintf("src %s does not include %s", quoteList(rule.Src), who), false
	}
	dst, ok := matchDst(rule.Dst, r.Host, r.HostTags)
	if !ok {
		return fmt.Sprintf("dst %s does not include %s", quoteList(rule.Dst), describeHost(r.Host, r.HostTags)), false
	}
	users, ok := matchLocalUser(rule.Users, r.User, r.LocalUser)
	if !ok {
		return fmt.Sprintf("users %s does not admit local user %q", quoteList(rule.Users), r.LocalUser), false
	}
	return "src " + src + ", dst " + dst + ", users " + users, true
}

// matchSrc returns a description of the first entry of src that admits
// the user or address.
func (p *Policy) matchSrc(src []principal, who string, addr netip.Addr) (string, bool) {
	for _, pr := range src {
		switch pr.kind {
		case anyone:
			return `"*"`, true
		case user:
			if who != "" && pr.raw == who {
				return fmt.Sprintf("%q", pr.raw), true
			}
		case group:
			if who != "" && p.members[pr.raw][who] {
				return fmt.Sprintf("%q (%s is a member)", pr.raw, who), true
			}
		case prefix:
			if addr.IsValid() && pr.prefix.Contains(addr) {
				return fmt.Sprintf("%q (%s)", pr.raw, addr), true
			}
		}
	}
	return "", false
}

func matchDst(dst []string, host string, tags []string) (string, bool) {
	host = strings.TrimSuffix(host, ".")
	for _, h := range dst {
		switch {
		case h == "*":
			return `"*"`, true
		case strings.HasPrefix(h, "tag:"):
			if slices.Contains(tags, h) {
				return fmt.Sprintf("%q", h), true
			}
		case host != "" && strings.EqualFold(h, host):
			return fmt.Sprintf("%q", h), true
		}
	}
	return "", false
}

// matchLocalUser matches the local user against a rule's users; nil
// users (a reject rule without the field) admits everyone.
func matchLocalUser(users []string, who, local string) (string, bool) {
	if users == nil {
		return "(any)", true
	}
	for _, u := range users {
		switch u {
		case "*":
			if local == who || local == localPart(who) {
				return fmt.Sprintf(`"*" (same name as %s)`, who), true
			}
		case AutogroupNonroot:
			if local != "root" {
				return fmt.Sprintf("%q (%s)", u, local), true
			}
		default:
			if u == local {
				return fmt.Sprintf("%q", u), true
			}
		}
	}
	return "", false
}

// localPart returns the part of an identity before "@", or "" if it has
// none.
func localPart(who string) string {
	if i := strings.LastIndexByte(who, '@'); i > 0 {
		return who[:i]
	}
	return ""
}

// resolve returns the addresses of the recorder tags, in order, without
// duplicates.
func (p *Policy) resolve(tags []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, t := range tags {
		for _, a := range p.Recorders[t] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func (p *Policy) recordingWhy(kind string, i, line int, tags []string, addrs []netip.AddrPort, enforce bool) string {
	as := make([]string, len(addrs))
	for j, a := range addrs {
		as[j] = a.String()
	}
	mode := "fail open: the session runs unrecorded if no recorder is reachable"
	if enforce {
		mode = "enforceRecorder: the session is refused if no recorder is reachable"
	}
	return fmt.Sprintf("recorded: %s rule #%d (line %d) names recorder %s -> %s; %s",
		kind, i+1, line, quoteList(tags), strings.Join(as, ", "), mode)
}

// A KubeRequest describes a request through the Kubernetes API proxy: an
// API request, or the start of an exec / attach session.
type KubeRequest struct {
	User      string     // identity of the user, as in SSHRequest.User
	Groups    []string   // the user's Kubernetes groups, matched by "k8s-group:" entries
	Src       netip.Addr // client address
	Namespace string     // "" for requests that have no namespace
	Pod       string     // the pod the request is about, "" if none
}

// A KubeDecision says whether a Kubernetes request may go on, and whether
// and how it is recorded. Who may do what in the cluster is Kubernetes'
// own RBAC; the policy only refuses users outright (reject rules).
type KubeDecision struct {
	// Action is Accept or Reject. A request no rule matches is accepted:
	// the API server's RBAC decides, as it would without the proxy.
	Action          string
	Rule            int // index in Policy.KubeRules of the rule that decided, -1 if none
	Line            int
	Record          bool
	RecordRule      int // index of the rule the recording settings come from, -1 if none
	RecordLine      int
	Recorders       []netip.AddrPort
	EnforceRecorder bool
	EnableEvents    bool
	Why             []string
}

// Kubernetes decides about the request r.
//
// A rule matches r when its src admits r.User, one of r.Groups (through
// "k8s-group:" entries) or r.Src, its namespaces hold r.Namespace (or
// "*"), and its pods, if any, match r.Pod. The first rule that matches
// decides: accept or reject. No matching rule means accept, unrecorded.
//
// An accepted request is recorded when any accept rule that matches it
// names a recorder, even a rule after the one that decided; the recorders,
// EnforceRecorder and EnableEvents come from the first such rule in file
// order. With recording "off" nothing is recorded and nothing enforced.
func (p *Policy) Kubernetes(r KubeRequest) KubeDecision {
	d := KubeDecision{Action: Accept, Rule: -1, RecordRule: -1}
	r.Src = r.Src.Unmap()
	who := describeWho(r.User, r.Src)
	if len(r.Groups) > 0 {
		who += " (groups " + strings.Join(r.Groups, ", ") + ")"
	}
	ns := fmt.Sprintf("namespace %q", r.Namespace)
	if r.Namespace == "" {
		ns = "no namespace"
	}
	if r.Pod != "" {
		ns += fmt.Sprintf(", pod %q", r.Pod)
	}
	decided := false
	for i := range p.KubeRules {
		rule := &p.KubeRules[i]
		where := fmt.Sprintf("kubernetes rule #%d (line %d)", i+1, rule.Line)
		why, ok := p.matchKube(rule, r, who, ns)
		if !ok {
			d.Why = append(d.Why, where+": no match: "+why)
			continue
		}
		action := rule.Action
		if action == "" {
			action = Accept
		}
		if !decided {
			decided = true
			d.Rule, d.Line, d.Action = i, rule.Line, action
			d.Why = append(d.Why, where+": "+action+": "+why)
			if action == Reject {
				break
			}
			if len(rule.Recorder) > 0 {
				d.RecordRule = i
				break
			}
			continue
		}
		if action == Reject {
			d.Why = append(d.Why, where+": matches too, but an earlier rule decided")
			continue
		}
		if len(rule.Recorder) > 0 {
			d.Why = append(d.Why, where+": also admits the request and names a recorder: "+why)
			d.RecordRule = i
			break
		}
		d.Why = append(d.Why, where+": also admits the request, names no recorder")
	}
	switch {
	case !decided:
		d.Why = append(d.Why, fmt.Sprintf("accept: no kubernetes rule covers %s in %s (Kubernetes RBAC decides)", who, ns))
	case d.Action == Reject:
		d.Why = append(d.Why, fmt.Sprintf("reject: by kubernetes rule #%d (line %d)", d.Rule+1, d.Line))
		return d
	default:
		d.Why = append(d.Why, fmt.Sprintf("accept: by kubernetes rule #%d (line %d)", d.Rule+1, d.Line))
	}
	if d.RecordRule < 0 {
		d.Why = append(d.Why, "not recorded: no rule that admits the request names a recorder")
		return d
	}
	rule := &p.KubeRules[d.RecordRule]
	d.RecordLine = rule.Line
	if p.Recording == "off" {
		d.Why = append(d.Why, fmt.Sprintf("not recorded: recording is \"off\" for the whole policy (kubernetes rule #%d would record)", d.RecordRule+1))
		d.RecordRule, d.RecordLine = -1, 0
		return d
	}
	d.Record = true
	d.Recorders = p.resolve(rule.Recorder)
	d.EnforceRecorder = rule.EnforceRecorder
	d.EnableEvents = rule.EnableEvents
	d.Why = append(d.Why, p.recordingWhy("kubernetes", d.RecordRule, rule.Line, rule.Recorder, d.Recorders, rule.EnforceRecorder))
	if rule.EnableEvents {
		d.Why = append(d.Why, "events: every API request is sent to the recorder (enableEvents)")
	} else {
		d.Why = append(d.Why, "events: off")
	}
	return d
}

// matchKube reports whether rule matches r, and says why or why not.
func (p *Policy) matchKube(rule *KubeRule, r KubeRequest, who, ns string) (string, bool) {
	src, ok := p.matchSrc(rule.src, r.User, r.Src)
	if !ok {
		src, ok = matchKubeGroups(rule.src, r.Groups)
	}
	if !ok {
		return fmt.Sprintf("src %s does not include %s", quoteList(rule.Src), who), false
	}
	if !slices.Contains(rule.Namespaces, "*") && (r.Namespace == "" || !slices.Contains(rule.Namespaces, r.Namespace)) {
		return fmt.Sprintf("namespaces %s do not include %s", quoteList(rule.Namespaces), ns), false
	}
	why := "src " + src + ", " + ns
	if rule.Pods != nil {
		pod, ok := matchPod(rule.Pods, r.Pod)
		if !ok {
			if r.Pod == "" {
				return fmt.Sprintf("pods %s, and the request names no pod", quoteList(rule.Pods)), false
			}
			return fmt.Sprintf("pods %s do not include pod %q", quoteList(rule.Pods), r.Pod), false
		}
		why += ", pods " + pod
	}
	return why, true
}

func matchKubeGroups(src []principal, groups []string) (string, bool) {
	for _, pr := range src {
		if pr.kind == kubeGroup && slices.Contains(groups, strings.TrimPrefix(pr.raw, KubeGroupPrefix)) {
			return fmt.Sprintf("%q", pr.raw), true
		}
	}
	return "", false
}

// matchPod matches a pod name against patterns in which '*' matches any
// run of characters.
func matchPod(patterns []string, pod string) (string, bool) {
	if pod == "" {
		return "", false
	}
	for _, pat := range patterns {
		if globMatch(pat, pod) {
			return fmt.Sprintf("%q", pat), true
		}
	}
	return "", false
}

// globMatch reports whether s matches pattern, where '*' matches any run
// of characters (including none) and every other character itself.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// CanView reports whether viewer may perform action (ActionView or
// ActionDownload) on the recordings sent by node, which carries nodeTags.
// A viewers rule grants it when its src admits the viewer (by name,
// group, or "*"), its nodes hold node, one of nodeTags, or "*", and its
// actions hold action (or are absent). Anything else is denied. The
// strings explain the answer, one reason per line.
func (p *Policy) CanView(viewer, node string, nodeTags []string, action string) (bool, []string) {
	var why []string
	if action != ActionView && action != ActionDownload {
		return false, []string{fmt.Sprintf("deny: unknown action %q", action)}
	}
	if viewer == "" {
		return false, []string{"deny: no viewer identity"}
	}
	target := describeNode(node, nodeTags)
	for i := range p.ViewerRules {
		rule := &p.ViewerRules[i]
		where := fmt.Sprintf("viewers rule #%d (line %d)", i+1, rule.Line)
		src, ok := p.matchSrc(rule.src, viewer, netip.Addr{})
		if !ok {
			why = append(why, fmt.Sprintf("%s: no match: src %s does not include %s", where, quoteList(rule.Src), viewer))
			continue
		}
		nodes, ok := matchNode(rule.Nodes, node, nodeTags)
		if !ok {
			why = append(why, fmt.Sprintf("%s: no match: nodes %s do not include %s", where, quoteList(rule.Nodes), target))
			continue
		}
		if rule.Actions != nil && !slices.Contains(rule.Actions, action) {
			why = append(why, fmt.Sprintf("%s: no match: actions %s do not include %q", where, quoteList(rule.Actions), action))
			continue
		}
		acts := "all actions"
		if rule.Actions != nil {
			acts = "actions " + quoteList(rule.Actions)
		}
		why = append(why, fmt.Sprintf("%s: allow: src %s, nodes %s, %s", where, src, nodes, acts))
		return true, why
	}
	why = append(why, fmt.Sprintf("deny: no viewers rule lets %s %s recordings of %s (default deny)", viewer, action, target))
	return false, why
}

func matchNode(nodes []string, node string, tags []string) (string, bool) {
	for _, n := range nodes {
		switch {
		case n == "*":
			return `"*"`, true
		case strings.HasPrefix(n, "tag:"):
			if slices.Contains(tags, n) {
				return fmt.Sprintf("%q", n), true
			}
		case node != "" && n == node:
			return fmt.Sprintf("%q", n), true
		}
	}
	return "", false
}

func describeWho(user string, addr netip.Addr) string {
	switch {
	case user != "" && addr.IsValid():
		return fmt.Sprintf("%s from %s", user, addr)
	case user != "":
		return user
	case addr.IsValid():
		return addr.String()
	}
	return "an unknown user"
}

func describeHost(host string, tags []string) string {
	s := "this host"
	if host != "" {
		s = fmt.Sprintf("host %q", host)
	}
	if len(tags) > 0 {
		s += " (tags " + strings.Join(tags, ", ") + ")"
	}
	return s
}

func describeNode(node string, tags []string) string {
	s := fmt.Sprintf("node %q", node)
	if len(tags) > 0 {
		s += " (tags " + strings.Join(tags, ", ") + ")"
	}
	return s
}

// quoteList formats a list as ["a", "b"].
func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
