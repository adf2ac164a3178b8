package turn

import (
	"net"
	"net/netip"
	"testing"
)

func TestPeerPolicy(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("fd12::/16")}
	for _, tc := range []struct {
		peer    string
		allowed []netip.Prefix
		want    bool
	}{
		// Public addresses are relayed.
		{peer: "8.8.8.8", want: true},
		{peer: "1.1.1.1", want: true},
		{peer: "2606:4700:4700::1111", want: true},
		{peer: "2a00:1450:4001::1", want: true},
		{peer: "2001:4860:4860::8888", want: true}, // near, but outside, 2001::/23

		// IPv4 special ranges.
		{peer: "0.0.0.0"},
		{peer: "0.1.2.3"},
		{peer: "10.0.0.1"},
		{peer: "100.64.0.1"},
		{peer: "100.100.100.200"}, // Alibaba metadata
		{peer: "127.0.0.1"},
		{peer: "127.255.255.254"},
		{peer: "169.254.169.254"}, // AWS/GCP/Azure metadata
		{peer: "172.16.0.1"},
		{peer: "172.31.255.255"},
		{peer: "172.32.0.1", want: true}, // just outside RFC 1918
		{peer: "192.0.0.192"},            // OCI metadata
		{peer: "192.168.0.1"},
		{peer: "198.18.0.1"},
		{peer: "224.0.0.1"},
		{peer: "239.255.255.250"},
		{peer: "240.0.0.1"},
		{peer: "255.255.255.255"},

		// IPv6 special ranges.
		{peer: "::"},
		{peer: "::1"},
		{peer: "::127.0.0.1"}, // deprecated IPv4-compatible
		{peer: "fc00::1"},
		{peer: "fd00:ec2::254"}, // AWS metadata over IPv6
		{peer: "fe80::1"},
		{peer: "fe80::1%eth0"}, // a zone must not hide the address from the prefixes
		{peer: "fec0::1"},
		{peer: "ff02::1"},
		{peer: "2001:db8::1"},
		{peer: "100::1"},

		// IPv4-mapped IPv6 is judged as the IPv4 address it carries.
		{peer: "::ffff:127.0.0.1"},
		{peer: "::ffff:10.0.0.1"},
		{peer: "::ffff:169.254.169.254"},
		{peer: "::ffff:8.8.8.8", want: true},

		// NAT64 and 6to4 are judged by the embedded IPv4 address.
		{peer: "64:ff9b::7f00:1"},              // 127.0.0.1
		{peer: "64:ff9b::a00:1"},               // 10.0.0.1
		{peer: "64:ff9b::a9fe:a9fe"},           // 169.254.169.254
		{peer: "64:ff9b::808:808", want: true}, // 8.8.8.8
		{peer: "64:ff9b:1::808:808"},           // local-use NAT64 prefix: refused outright
		{peer: "2002:c0a8:101::1"},             // 6to4 of 192.168.1.1
		{peer: "2002:808:808::1", want: true},  // 6to4 of 8.8.8.8

		// The allow-list overrides the deny list, and only for what it lists.
		{peer: "192.168.1.20", allowed: lan, want: true},
		{peer: "::ffff:192.168.1.20", allowed: lan, want: true},
		{peer: "64:ff9b::c0a8:114", allowed: lan, want: true}, // NAT64 of 192.168.1.20
		{peer: "192.168.2.20", allowed: lan},
		{peer: "fd12::5", allowed: lan, want: true},
		{peer: "fd13::5", allowed: lan},
		{peer: "127.0.0.1", allowed: lan},
		{peer: "8.8.8.8", allowed: lan, want: true}, // allowing a LAN does not deny the internet
	} {
		peer := netip.MustParseAddr(tc.peer)
		if got := peerAllowed(peer, normalizePrefixes(tc.allowed)); got != tc.want {
			t.Errorf("peerAllowed(%s, %v) = %v, want %v", tc.peer, tc.allowed, got, tc.want)
		}
	}
}

func TestPeerPolicyInvalidAddressRefused(t *testing.T) {
	if peerAllowed(netip.Addr{}, nil) {
		t.Error("zero Addr allowed")
	}
	srv := &Server{stats: &counters{}, log: nopLogger()}
	for _, ip := range []net.IP{nil, {1, 2, 3}, make(net.IP, 17)} {
		if srv.permit(&net.UDPAddr{}, ip) {
			t.Errorf("permit(%v) = true for a malformed IP", ip)
		}
	}
	// pion hands over IPv4 peers in 16-byte form: the mapped case.
	if srv.permit(&net.UDPAddr{}, net.IPv4(127, 0, 0, 1).To16()) {
		t.Error("16-byte 127.0.0.1 allowed")
	}
	if !srv.permit(&net.UDPAddr{}, net.IPv4(8, 8, 8, 8).To16()) {
		t.Error("16-byte 8.8.8.8 refused")
	}
}

func TestNormalizePrefixes(t *testing.T) {
	in := []netip.Prefix{
		netip.MustParsePrefix("::ffff:10.0.0.0/104"),
		netip.MustParsePrefix("192.168.1.77/24"),
		{},
	}
	got := normalizePrefixes(in)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.0/24")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("normalizePrefixes = %v, want %v", got, want)
	}
}

// FuzzPeerPolicyEquivalentForms checks that no spelling of an IPv4 address
// is judged differently from the address itself: the class of bug behind
// relay policy bypasses.
func FuzzPeerPolicyEquivalentForms(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "8.8.8.8", "169.254.169.254", "100.64.1.1", "0.0.0.0"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	allowed := normalizePrefixes([]netip.Prefix{netip.MustParsePrefix("192.168.7.0/24")})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(b[:4]))
		want := peerAllowed(v4, allowed)
		mapped := netip.AddrFrom16(v4.As16())
		var nat64 [16]byte
		copy(nat64[:], []byte{0, 0x64, 0xff, 0x9b})
		copy(nat64[12:], b[:4])
		for _, form := range []netip.Addr{mapped, netip.AddrFrom16(nat64)} {
			if got := peerAllowed(form, allowed); got != want {
				t.Fatalf("peerAllowed(%s) = %v but peerAllowed(%s) = %v", form, got, v4, want)
			}
		}
	})
}
