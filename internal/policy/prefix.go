package policy

import "net/netip"

// ParsePrefix parses an IP address or CIDR as a policy file's src entries
// are parsed, with the same errors: a CIDR with host bits set (10.0.0.5/8)
// is refused as a likely typo. Other flags that take networks (reel serve
// --allow-from) use it so that both say the same about a bad entry.
func ParsePrefix(s string) (netip.Prefix, error) { return parsePrefix(s) }
