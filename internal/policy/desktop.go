package policy

import (
	"fmt"
	"net/netip"

	"github.com/tailscale/hujson"
)

// A DesktopRule admits (accept) or refuses (reject) desktop (VNC)
// sessions through `reel vnc`, and says how they are recorded.
type DesktopRule struct {
	Line int `json:"-"`

	// Action is Accept or Reject.
	Action string `json:"action"`
	// Src is who the rule applies to, as in SSHRule.Src.
	Src []string `json:"src"`
	// Dst lists the desktops the rule applies to: the names `reel vnc`
	// gives its upstream (--host), their tags, or "*".
	Dst []string `json:"dst"`
	// Recorder lists recorder tags; an accept rule that names one asks
	// for the session to be recorded.
	Recorder []string `json:"recorder,omitempty"`
	// EnforceRecorder refuses a session that cannot be recorded, and ends
	// one whose recorder is lost (fail closed).
	EnforceRecorder bool `json:"enforceRecorder,omitempty"`
	// KeyRecording opts in to recording key presses; ClipboardRecording
	// to recording clipboard text. Both are off by default.
	KeyRecording       bool `json:"keyRecording,omitempty"`
	ClipboardRecording bool `json:"clipboardRecording,omitempty"`

	src []principal
}

// A DesktopRequest describes a desktop session asking to start.
type DesktopRequest struct {
	User     string     // the authenticated user, as in SSHRequest.User
	Src      netip.Addr // the client's address
	Host     string     // the desktop's name
	HostTags []string   // the desktop's tags
}

// A DesktopDecision is the outcome of Policy.Desktop.
type DesktopDecision struct {
	Action string // Accept or Reject
	Rule   int    // index in Policy.DesktopRules of the rule that decided, -1 if none
	Line   int

	Record          bool
	RecordRule      int // index of the rule the recording settings come from, -1 if none
	Recorders       []netip.AddrPort
	EnforceRecorder bool
	RecordKeys      bool
	RecordClipboard bool

	Why []string
}

// Desktop decides whether the desktop session r may start and how it is
// recorded, exactly as SSH does for SSH sessions (without local users):
// the first rule whose src and dst match decides accept or reject
// (default deny); an accepted session is recorded when any matching accept
// rule names a recorder, with the recorders, EnforceRecorder, KeyRecording
// and ClipboardRecording of the first such rule; recording "off" records
// nothing and enforces nothing.
func (p *Policy) Desktop(r DesktopRequest) DesktopDecision {
	d := DesktopDecision{Action: Reject, Rule: -1, RecordRule: -1}
	r.Src = r.Src.Unmap()
	who := describeWho(r.User, r.Src)
	for i := range p.DesktopRules {
		rule := &p.DesktopRules[i]
		where := fmt.Sprintf("desktop rule #%d (line %d)", i+1, rule.Line)
		src, ok := p.matchSrc(rule.src, r.User, r.Src)
		if !ok {
			d.Why = append(d.Why, fmt.Sprintf("%s: no match: src %s does not include %s", where, quoteList(rule.Src), who))
			continue
		}
		dst, ok := matchDst(rule.Dst, r.Host, r.HostTags)
		if !ok {
			d.Why = append(d.Why, fmt.Sprintf("%s: no match: dst %s does not include %s", where, quoteList(rule.Dst), describeHost(r.Host, r.HostTags)))
			continue
		}
		why := "src " + src + ", dst " + dst
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
	switch {
	case d.Rule < 0:
		d.Why = append(d.Why, fmt.Sprintf("reject: no desktop rule admits %s to %s (default deny)", who, describeHost(r.Host, r.HostTags)))
		return d
	case d.Action == Reject:
		d.Why = append(d.Why, fmt.Sprintf("reject: by desktop rule #%d (line %d)", d.Rule+1, d.Line))
		return d
	}
	d.Why = append(d.Why, fmt.Sprintf("accept: by desktop rule #%d (line %d)", d.Rule+1, d.Line))
	if d.RecordRule < 0 {
		d.Why = append(d.Why, "not recorded: no rule that admits the session names a recorder")
		return d
	}
	rule := &p.DesktopRules[d.RecordRule]
	if p.Recording == "off" {
		d.Why = append(d.Why, fmt.Sprintf("not recorded: recording is \"off\" for the whole policy (desktop rule #%d would record)", d.RecordRule+1))
		d.RecordRule = -1
		return d
	}
	d.Record = true
	d.Recorders = p.resolve(rule.Recorder)
	d.EnforceRecorder = rule.EnforceRecorder
	d.RecordKeys = rule.KeyRecording
	d.RecordClipboard = rule.ClipboardRecording
	d.Why = append(d.Why, p.recordingWhy("desktop", d.RecordRule, rule.Line, rule.Recorder, d.Recorders, rule.EnforceRecorder))
	d.Why = append(d.Why, fmt.Sprintf("keys recorded: %v; clipboard recorded: %v", d.RecordKeys, d.RecordClipboard))
	return d
}

type rawDesktop struct {
	off                              int
	action                           pstr
	src, dst, recorder               plist
	enforceRecorder, keys, clipboard pbool
}

func (d *decoder) decodeDesktop(i int, v *hujson.Value) rawDesktop {
	what := fmt.Sprintf("desktop rule #%d", i+1)
	r := rawDesktop{off: v.StartOffset}
	d.object(v, what, []field{
		{name: "action", required: true, decode: func(v *hujson.Value) { r.action, _ = d.str(v, what+": action") }},
		{name: "src", required: true, decode: func(v *hujson.Value) { r.src = d.strList(v, what+": src") }},
		{name: "dst", required: true, decode: func(v *hujson.Value) { r.dst = d.strList(v, what+": dst") }},
		{name: "recorder", decode: func(v *hujson.Value) { r.recorder = d.strList(v, what+": recorder") }},
		{name: "enforceRecorder", decode: func(v *hujson.Value) { r.enforceRecorder, _ = d.boolean(v, what+": enforceRecorder") }},
		{name: "keyRecording", decode: func(v *hujson.Value) { r.keys, _ = d.boolean(v, what+": keyRecording") }},
		{name: "clipboardRecording", decode: func(v *hujson.Value) { r.clipboard, _ = d.boolean(v, what+": clipboardRecording") }},
	})
	return r
}

func (d *decoder) validateDesktop(p *Policy, i int, r rawDesktop) DesktopRule {
	what := fmt.Sprintf("desktop rule #%d", i+1)
	rule := DesktopRule{
		Line:               d.line(r.off),
		Action:             r.action.s,
		Src:                pstrings(r.src.items),
		Dst:                pstrings(r.dst.items),
		Recorder:           pstrings(r.recorder.items),
		EnforceRecorder:    r.enforceRecorder.v,
		KeyRecording:       r.keys.v,
		ClipboardRecording: r.clipboard.v,
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
	if r.recorder.set {
		d.checkNonEmpty(what, "recorder", r.recorder, false)
		d.checkRecorders(p, what, r.recorder.items)
	}
	opts := []struct {
		name string
		b    pbool
	}{{"enforceRecorder", r.enforceRecorder}, {"keyRecording", r.keys}, {"clipboardRecording", r.clipboard}}
	for _, o := range opts {
		switch {
		case r.action.s == Reject && (o.b.set || r.recorder.set):
			if o.b.set {
				d.errorf(o.b.off, "%s: a reject rule records nothing: remove %q", what, o.name)
			}
		case o.b.v && len(r.recorder.items) == 0:
			d.errorf(o.b.off, "%s: %s needs a \"recorder\"", what, o.name)
		}
	}
	if r.action.s == Reject && r.recorder.set {
		d.errorf(r.recorder.off, "%s: a reject rule records nothing: remove \"recorder\"", what)
	}
	return rule
}
