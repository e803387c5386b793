package policy

import (
	"net/netip"
	"strings"
)

// ParsePrefix parses an IP address or CIDR as a policy file's src entries
// are parsed, with the same errors: a CIDR with host bits set (10.0.0.5/8)
// is refused as a likely typo. Other flags that take networks (reel serve
// --allow-from) use it so that both say the same about a bad entry.
func ParsePrefix(s string) (netip.Prefix, error) { return parsePrefix(s) }

// ParsePrefixes parses a comma-separated list of addresses and CIDRs
// (--allow-from, --ui-trusted-proxy), each as ParsePrefix does. Empty
// entries are skipped; an empty list gives nil.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := parsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
