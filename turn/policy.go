package turn

import (
	"net/netip"
)

// deniedPeers are the ranges a client may not reach through the relay unless
// the operator lists them in Config.AllowedPeers. An open TURN server relays
// for anyone who holds a credential, and credentials are handed to every
// browser that joins a room, so without this list any participant could use
// the server to reach its loopback services, its private network and the
// cloud metadata endpoint (coturn CVE-2020-26262).
//
// The list is explicit so that it can be reviewed against the IANA special
// purpose registries; peerAllowed additionally refuses anything that is not
// global unicast, as a backstop for ranges missing here.
var deniedPeers = mustPrefixes(
	// IPv4
	"0.0.0.0/8",       // "this network", includes the unspecified address
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // CGNAT, RFC 6598 (also Alibaba's metadata 100.100.100.200)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, includes the metadata 169.254.169.254
	"172.16.0.0/12",   // RFC 1918
	"192.0.0.0/24",    // IETF protocol assignments (includes 192.0.0.192, OCI metadata)
	"192.0.2.0/24",    // documentation
	"192.88.99.0/24",  // deprecated 6to4 relay anycast
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // benchmarking, often used for internal networks
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes broadcast 255.255.255.255
	// IPv6
	"::/96",          // unspecified, loopback and deprecated IPv4-compatible
	"64:ff9b:1::/48", // local-use NAT64, RFC 8215: a gateway into a private network
	"100::/64",       // discard-only
	"2001::/23",      // IETF protocol assignments (Teredo, ORCHID, ...)
	"2001:db8::/32",  // documentation
	"fc00::/7",       // unique local, includes AWS's metadata fd00:ec2::254
	"fe80::/10",      // link-local
	"fec0::/10",      // deprecated site-local
	"ff00::/8",       // multicast
)

// Prefixes whose addresses carry an IPv4 address that the network will
// actually deliver to: a NAT64 gateway translates 64:ff9b::a.b.c.d into
// a.b.c.d, and a 6to4 address is routed towards its embedded IPv4 address.
// For these we judge the embedded address instead of the IPv6 one, so
// 64:ff9b::10.0.0.1 is refused like 10.0.0.1 while 64:ff9b::8.8.8.8 is
// relayed like 8.8.8.8.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// peerAllowed reports whether the relay may send to peer. It is the whole
// relay policy and depends only on its arguments, so it can be tested
// exhaustively; allowed must already be normalised by normalizePrefixes.
//
// Order matters: the operator's allow-list wins over the deny list (a LAN
// deployment lists its own private network), IPv4-mapped addresses are
// judged as the IPv4 address they are (netip prefixes never match a mapped
// address against an IPv4 prefix, which would otherwise let ::ffff:127.0.0.1
// through), and zones are dropped because a zoned address never matches any
// prefix at all.
func peerAllowed(peer netip.Addr, allowed []netip.Prefix) bool {
	peer = peer.WithZone("").Unmap()
	if !peer.IsValid() {
		return false
	}
	for _, p := range allowed {
		if p.Contains(peer) {
			return true
		}
	}
	if v4, ok := embeddedIPv4(peer); ok {
		return peerAllowed(v4, allowed)
	}
	for _, p := range deniedPeers {
		if p.Contains(peer) {
			return false
		}
	}
	// Backstop: covers loopback, link-local, multicast and unspecified
	// addresses should the table above ever be edited wrongly.
	return peer.IsGlobalUnicast() && !peer.IsPrivate()
}

// embeddedIPv4 extracts the IPv4 address that a NAT64 (RFC 6052 well-known
// prefix) or 6to4 (RFC 3056) address will be delivered to.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// normalizePrefixes masks the prefixes and rewrites IPv4-mapped IPv6 prefixes
// (::ffff:10.0.0.0/104) as IPv4 ones (10.0.0.0/8), because peerAllowed unmaps
// the peer before matching and a mapped prefix would then never match.
func normalizePrefixes(in []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			continue
		}
		addr, bits := p.Addr().WithZone(""), p.Bits()
		if addr.Is4In6() && bits >= 96 {
			addr, bits = addr.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(addr, bits).Masked())
	}
	return out
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
