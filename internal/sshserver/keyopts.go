package sshserver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// keyOptions are the options of an authorized key, as OpenSSH's sshd(8)
// reads them ("AUTHORIZED_KEYS FILE FORMAT"). reel honours those that
// matter for who may do what: from=, command=, no-pty, pty, restrict and
// expiry-time=. Options that only forbid what reel never allows (port,
// agent and X11 forwarding, ~/.ssh/rc) are accepted and change nothing;
// so are the ones that would permit those things, since reel refuses them
// anyway. Any other option makes the key unusable, with the reason.
type keyOptions struct {
	text string // as written, for logs

	from    []fromPattern // from=; nil for none
	hasFrom bool

	command    string // command=: the forced command
	hasCommand bool

	noPTY  bool      // no-pty or restrict, not undone by a later pty
	expiry time.Time // expiry-time=; zero for none
}

// fromPattern is one pattern of a from= list.
type fromPattern struct {
	neg    bool
	prefix netip.Prefix // a CIDR or a single address, if valid
	glob   string       // else a pattern with * and ?, matched against the address
}

// parseKeyOptions parses the options field of an authorized_keys line:
// comma-separated, values in double quotes (\" for a quote), as sshd does.
// Option names are case-insensitive. Whether the key may log in now, from
// where it connects, is for allows to say.
func parseKeyOptions(s string) (keyOptions, error) {
	o := keyOptions{text: s}
	for s != "" {
		name, rest := s, ""
		if i := strings.IndexAny(s, ",="); i >= 0 {
			name, rest = s[:i], s[i:]
		}
		lname := strings.ToLower(name)
		var value string
		hasValue := strings.HasPrefix(rest, "=")
		if hasValue {
			v, after, err := dequote(rest[1:])
			if err != nil {
				return keyOptions{}, fmt.Errorf("option %s: %w", name, err)
			}
			value, rest = v, after
		}
		if err := o.apply(lname, name, value, hasValue); err != nil {
			return keyOptions{}, err
		}
		switch {
		case rest == "":
			s = ""
		case rest[0] == ',' && len(rest) > 1:
			s = rest[1:]
		case rest[0] == ',':
			return keyOptions{}, errors.New("options end with a comma")
		default:
			return keyOptions{}, fmt.Errorf("option %s: unexpected %q", name, rest)
		}
	}
	return o, nil
}

// apply takes one option into o.
func (o *keyOptions) apply(lname, name, value string, hasValue bool) error {
	flag := func() error {
		if hasValue {
			return fmt.Errorf("option %s takes no value", name)
		}
		return nil
	}
	switch lname {
	case "restrict":
		o.noPTY = true // and no forwarding, agent, X11 or rc: never allowed by reel
		return flag()
	case "pty":
		o.noPTY = false
		return flag()
	case "no-pty":
		o.noPTY = true
		return flag()
	case "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding", "no-user-rc",
		"port-forwarding", "agent-forwarding", "x11-forwarding", "user-rc":
		// reel never forwards and never runs ~/.ssh/rc: nothing to do.
		return flag()
	case "permitopen", "permitlisten":
		// They narrow port forwarding, which reel never allows.
		if !hasValue {
			return fmt.Errorf("option %s needs a value", name)
		}
		return nil
	case "command":
		if !hasValue {
			return fmt.Errorf("option %s needs a value", name)
		}
		if o.hasCommand {
			return errors.New(`more than one "command" option`)
		}
		o.command, o.hasCommand = value, true
		return nil
	case "from":
		if !hasValue {
			return fmt.Errorf("option %s needs a value", name)
		}
		if o.hasFrom {
			return errors.New(`more than one "from" option`)
		}
		pats, err := parseFromList(value)
		if err != nil {
			return fmt.Errorf("option from=%q: %w", value, err)
		}
		o.from, o.hasFrom = pats, true
		return nil
	case "expiry-time":
		if !hasValue {
			return fmt.Errorf("option %s needs a value", name)
		}
		t, err := parseExpiry(value)
		if err != nil {
			return fmt.Errorf("option expiry-time=%q: %w", value, err)
		}
		if o.expiry.IsZero() || t.Before(o.expiry) {
			o.expiry = t // the earliest counts, as in sshd
		}
		return nil
	case "environment", "tunnel", "cert-authority", "principals", "no-touch-required", "verify-required":
		return fmt.Errorf("option %s is not supported by reel ssh", name)
	}
	return fmt.Errorf("unknown option %q", name)
}

// dequote reads a double-quoted option value at the start of s and returns
// it and what follows the closing quote. Inside, \" stands for a quote;
// any other character, backslashes included, stands for itself.
func dequote(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", errors.New("the value must be in double quotes")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case s[i] == '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("no closing quote")
}

// parseFromList parses a from= pattern list: comma-separated patterns,
// each an address, a CIDR network or a pattern with * and ?, and each
// negated by a leading '!'. A network with host bits set is an error, as
// in sshd.
func parseFromList(list string) ([]fromPattern, error) {
	var pats []fromPattern
	for _, p := range strings.Split(list, ",") {
		var fp fromPattern
		if fp.neg = strings.HasPrefix(p, "!"); fp.neg {
			p = p[1:]
		}
		if p == "" {
			return nil, errors.New("empty pattern")
		}
		switch {
		case strings.Contains(p, "/"):
			pre, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("%q: not an address/bits network", p)
			}
			if pre.Addr().Is4In6() {
				if pre.Bits() < 96 {
					return nil, fmt.Errorf("%q: a mask of an IPv4-mapped network must be at least 96 bits", p)
				}
				pre = netip.PrefixFrom(pre.Addr().Unmap(), pre.Bits()-96)
			}
			if pre != pre.Masked() {
				return nil, fmt.Errorf("%q: bits set past the mask (did you mean %s?)", p, pre.Masked())
			}
			fp.prefix = pre
		default:
			if a, err := netip.ParseAddr(p); err == nil {
				a = a.Unmap()
				fp.prefix = netip.PrefixFrom(a, a.BitLen())
			} else {
				fp.glob = strings.ToLower(p)
			}
		}
		pats = append(pats, fp)
	}
	return pats, nil
}

// fromAllows reports whether src passes a from= list, as sshd decides
// without DNS (UseDNS no, its default): a negated pattern that matches
// refuses; else a pattern that matches admits; else it is refused.
// Hostname patterns are matched against the address as text, so only
// address patterns such as "10.1.*" can match.
func fromAllows(pats []fromPattern, src netip.Addr) bool {
	src = src.Unmap()
	text := strings.ToLower(src.String())
	ok := false
	for _, p := range pats {
		var m bool
		if p.glob != "" {
			m = globMatch(p.glob, text)
		} else {
			m = p.prefix.Contains(src)
		}
		if m && p.neg {
			return false
		}
		ok = ok || m
	}
	return ok
}

// globMatch matches s against a pattern of literal characters, '*' (any
// run) and '?' (any one character), as OpenSSH's match_pattern does, in
// time proportional to len(pat)×len(s) at worst.
func globMatch(pat, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0 // the last '*' seen, and where its run ends in s
	for i < len(s) {
		switch {
		case p < len(pat) && (pat[p] == '?' || pat[p] == s[i]):
			p++
			i++
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

// parseExpiry parses an expiry-time= value: YYYYMMDD, YYYYMMDDHHMM or
// YYYYMMDDHHMMSS, in the system's time zone or, with a trailing Z, in UTC.
func parseExpiry(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		s, loc = s[:len(s)-1], time.UTC
	}
	layout := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}[len(s)]
	if layout == "" || strings.Trim(s, "0123456789") != "" {
		return time.Time{}, errors.New("want YYYYMMDD[HHMM[SS]][Z]")
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, errors.New("not a valid date and time")
	}
	return t, nil
}

// allows says why a key with these options may not log in from src at
// now, or "" if it may.
func (o *keyOptions) allows(src netip.Addr, now time.Time) string {
	if !o.expiry.IsZero() && now.After(o.expiry) {
		return "the key expired at " + o.expiry.Format(time.RFC3339) + " (expiry-time)"
	}
	if o.hasFrom && !fromAllows(o.from, src) {
		why := fmt.Sprintf("the key may not log in from %s (from=)", src.Unmap())
		for _, p := range o.from {
			if strings.Trim(p.glob, "0123456789abcdef:.*?") != "" {
				why += "; host name patterns never match: reel ssh matches from= against the address only"
				break
			}
		}
		return why
	}
	return ""
}
