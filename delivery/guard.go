package delivery

import (
	"fmt"
	"net/netip"
	"strings"
)

// blockedRange is an address range that deliveries may not reach unless the
// endpoint allows it.
type blockedRange struct {
	prefix netip.Prefix
	kind   string // description of the range, with the RFC that defines it
}

// blockedRanges lists the ranges that are internal to a host or network,
// or that are not unicast. The documentation ranges (192.0.2.0/24,
// 198.51.100.0/24 and 203.0.113.0/24 from RFC 5737, 2001:db8::/32 from
// RFC 3849, 3fff::/20 from RFC 9637) are not listed: no network lives
// there, so they lead nowhere internal. IPv4-mapped IPv6 addresses are
// checked as IPv4, and so are the IPv4 addresses embedded in NAT64 and 6to4
// addresses (see embeddedIPv4). More specific ranges come first, because
// the first match names the range in the error.
var blockedRanges = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "in 0.0.0.0/8, this network (RFC 1122), where 0.0.0.0 reaches the local host"},
	{netip.MustParsePrefix("10.0.0.0/8"), "in 10.0.0.0/8, private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "in 100.64.0.0/10, carrier-grade NAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "in 127.0.0.0/8, loopback (RFC 1122)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "in 169.254.0.0/16, link-local (RFC 3927), where cloud metadata services live"},
	{netip.MustParsePrefix("172.16.0.0/12"), "in 172.16.0.0/12, private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "in 192.0.0.0/24, IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "in 192.168.0.0/16, private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "in 198.18.0.0/15, benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "in 224.0.0.0/4, multicast (RFC 5771)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "in 240.0.0.0/4, reserved (RFC 1112), which includes the broadcast address 255.255.255.255 (RFC 919)"},

	{netip.MustParsePrefix("::/128"), "the unspecified address (RFC 4291), which reaches the local host"},
	{netip.MustParsePrefix("::1/128"), "loopback (RFC 4291)"},
	{netip.MustParsePrefix("::/96"), "in ::/96, IPv4-compatible and deprecated (RFC 4291)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "in 64:ff9b:1::/48, NAT64 for local use (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "in 100::/64, discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/32"), "in 2001::/32, Teredo (RFC 4380), which tunnels to an IPv4 address"},
	{netip.MustParsePrefix("fc00::/7"), "in fc00::/7, unique local (RFC 4193), where cloud metadata services such as fd00:ec2::254 live"},
	{netip.MustParsePrefix("fe80::/10"), "in fe80::/10, link-local (RFC 4291)"},
	{netip.MustParsePrefix("fec0::/10"), "in fec0::/10, site-local and deprecated (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "in ff00::/8, multicast (RFC 4291)"},
}

// Prefixes whose addresses carry an IPv4 address that a gateway connects to.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052, the IPv4 address in the last 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056, the IPv4 address in bits 16 to 47
)

// blockedKind describes the blocked range that addr is in, or returns "" when
// addr is allowed by default.
func blockedKind(addr netip.Addr) string {
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return "not a valid address"
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return r.kind
		}
	}
	if v4, via, ok := embeddedIPv4(addr); ok {
		if kind := blockedKind(v4); kind != "" {
			return fmt.Sprintf("%s for %s, which is %s", via, v4, kind)
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address that a NAT64 or 6to4 address leads
// to, and the name of the translation.
func embeddedIPv4(addr netip.Addr) (netip.Addr, string, bool) {
	b := addr.As16()
	switch {
	case nat64Prefix.Contains(addr):
		return netip.AddrFrom4([4]byte(b[12:16])), "a NAT64 address (RFC 6052)", true
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte(b[2:6])), "a 6to4 address (RFC 3056)", true
	}
	return netip.Addr{}, "", false
}

// guard decides which addresses the deliveries of one endpoint may connect
// to. It is safe for concurrent use because it does not change after
// newGuard.
type guard struct {
	allowPrivate bool
	hosts        map[string]bool // lowercase host names without a final dot
	prefixes     []netip.Prefix
}

// newGuard builds a guard from the allow_private and allow_hosts settings.
func newGuard(allowPrivate bool, allowHosts []string) (*guard, error) {
	g := &guard{allowPrivate: allowPrivate, hosts: make(map[string]bool)}
	for _, entry := range allowHosts {
		host, prefix, err := parseAllowHost(entry)
		if err != nil {
			return nil, err
		}
		if host != "" {
			g.hosts[host] = true
		} else {
			g.prefixes = append(g.prefixes, prefix)
		}
	}
	return g, nil
}

// parseAllowHost reads one allow_hosts entry: a CIDR, an IP address (a
// prefix of one address) or a host name (returned in lowercase).
func parseAllowHost(entry string) (string, netip.Prefix, error) {
	if scheme, rest, found := strings.Cut(entry, "://"); found {
		host, _, _ := strings.Cut(rest, "/")
		return "", netip.Prefix{}, fmt.Errorf("invalid allow_hosts entry %q: list the host without the scheme %s:// and without a path, such as %q", entry, scheme, host)
	}
	if strings.Contains(entry, "/") {
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			return "", netip.Prefix{}, fmt.Errorf("invalid allow_hosts entry %q: use a host name, an IP address or a CIDR such as 10.1.0.0/16", entry)
		}
		if masked := prefix.Masked(); masked != prefix {
			return "", netip.Prefix{}, fmt.Errorf("invalid allow_hosts entry %q: the address has bits set after the prefix length; write %s", entry, masked)
		}
		return "", unmapPrefix(prefix), nil
	}

	literal := strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]")
	if addr, err := netip.ParseAddr(literal); err == nil {
		addr = addr.WithZone("").Unmap()
		return "", netip.PrefixFrom(addr, addr.BitLen()), nil
	}

	host := normalizeHost(entry)
	if !isHostName(host) {
		return "", netip.Prefix{}, fmt.Errorf("invalid allow_hosts entry %q: use a host name without scheme, port or wildcard (such as hooks.internal.example), an IP address or a CIDR", entry)
	}
	return host, netip.Prefix{}, nil
}

// unmapPrefix turns a prefix of IPv4-mapped IPv6 addresses such as
// ::ffff:10.0.0.0/104 into its IPv4 form, because the guard compares
// IPv4-mapped addresses as IPv4.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func normalizeHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// isHostName reports whether s is a DNS name of letters, digits, '-' and
// '_' in dot-separated labels.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// check returns a *blockedError when deliveries may not connect to addr,
// which host resolved to. host is the URL's host name or the address
// itself.
func (g *guard) check(host string, addr netip.Addr) error {
	if g.allowPrivate || g.hosts[normalizeHost(host)] {
		return nil
	}
	plain := addr.WithZone("").Unmap()
	for _, p := range g.prefixes {
		if p.Contains(plain) {
			return nil
		}
	}
	if v4, _, ok := embeddedIPv4(plain); ok {
		for _, p := range g.prefixes {
			if p.Contains(v4) {
				return nil
			}
		}
	}
	if kind := blockedKind(addr); kind != "" {
		return &blockedError{host: host, addr: addr, kind: kind}
	}
	return nil
}

// blockedError reports an address that the guard refused.
type blockedError struct {
	host string
	addr netip.Addr
	kind string
}

func (e *blockedError) Error() string {
	subject := "address " + e.addr.String()
	if plain := strings.Trim(e.host, "[]"); plain != e.addr.String() {
		subject = fmt.Sprintf("address %s of host %q", e.addr, e.host)
	}
	return fmt.Sprintf("%s is blocked because it is %s: if this receiver is meant to be reachable, set allow_private on the endpoint or add the host or a CIDR containing the address to allow_hosts", subject, e.kind)
}

// isAltIPv4Spelling reports whether a host that is not an IP address in
// standard notation would still be read as IPv4 by some resolvers, such as
// "2130706433", "0x7f.1" or "127.1" for 127.0.0.1. No top-level domain is
// all digits (RFC 3696, section 2), so such a host is never a DNS name.
func isAltIPv4Spelling(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	if last == "" {
		return false
	}
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		for _, c := range hex {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return hex != ""
	}
	return isDigits(last)
}
