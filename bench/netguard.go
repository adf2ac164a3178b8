package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"consult/client"
)

// A load generator must never spray traffic at an address nobody meant:
// by default every client gathers loopback host candidates only, ignores
// the server's other candidates (a server whose UDP mux listens on all
// interfaces advertises them all), opens no TURN relay (a relay's address
// is the machine's own, not loopback), and its sockets refuse to send a
// datagram anywhere but 127.0.0.0/8 or ::1 should anything slip through.
// A refused datagram is counted and reported. -allow-remote lifts all this.

// guardedNet is the standard network with loopback-only UDP sends.
type guardedNet struct {
	transport.Net
	refused *atomic.Uint64
	relay   bool // UDP sockets for a TURN relay on loopback are allowed
}

func (g guardedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := g.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return guardedConn{UDPConn: c, guard: guard{g.refused}}, nil
}

// pion's ICE agent opens these only for TURN relays (UDP, TCP, DTLS, TLS):
// refused, so a server that hands out TURN URLs gets no relay candidates.
// A capped subscriber (-subscriber-kbps) talks UDP to the harness's own
// shaping relay on loopback, through a socket held to loopback too.
func (g guardedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	if !g.relay {
		return nil, errNoRelay
	}
	c, err := g.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return guardedPacketConn{PacketConn: c, guard: guard{g.refused}}, nil
}

func (g guardedNet) DialUDP(string, *net.UDPAddr, *net.UDPAddr) (transport.UDPConn, error) {
	return nil, errNoRelay
}
func (g guardedNet) DialTCP(string, *net.TCPAddr, *net.TCPAddr) (transport.TCPConn, error) {
	return nil, errNoRelay
}
func (g guardedNet) Dial(string, string) (net.Conn, error) { return nil, errNoRelay }

var (
	errNotLoopback = errors.New("bench: refusing to send to a non-loopback address (see -allow-remote)")
	errNoRelay     = errors.New("bench: TURN relays are off while traffic is held to loopback (see -allow-remote)")
)

func loopbackAddr(a net.Addr) bool {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a != nil && a.IP.IsLoopback()
	case *net.TCPAddr:
		return a != nil && a.IP.IsLoopback()
	}
	return false
}

// guard counts and refuses sends to an address that is not loopback.
type guard struct{ refused *atomic.Uint64 }

func (g guard) check(a net.Addr) error {
	if loopbackAddr(a) {
		return nil
	}
	g.refused.Add(1)
	return errNotLoopback
}

type guardedConn struct {
	transport.UDPConn
	guard
}

func (c guardedConn) WriteTo(p []byte, a net.Addr) (int, error) {
	if err := c.check(a); err != nil {
		return 0, err
	}
	return c.UDPConn.WriteTo(p, a)
}

func (c guardedConn) WriteToUDP(p []byte, a *net.UDPAddr) (int, error) {
	if err := c.check(a); err != nil {
		return 0, err
	}
	return c.UDPConn.WriteToUDP(p, a)
}

func (c guardedConn) WriteMsgUDP(p, oob []byte, a *net.UDPAddr) (int, int, error) {
	if err := c.check(a); err != nil {
		return 0, 0, err
	}
	return c.UDPConn.WriteMsgUDP(p, oob, a)
}

// guardedPacketConn is a relay client's socket, held to loopback.
type guardedPacketConn struct {
	net.PacketConn
	guard
}

func (c guardedPacketConn) WriteTo(p []byte, a net.Addr) (int, error) {
	if err := c.check(a); err != nil {
		return 0, err
	}
	return c.PacketConn.WriteTo(p, a)
}

// checkLoopbackURL refuses a signaling URL whose host is not a loopback
// address (names are resolved: "localhost" is fine).
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("resolve %q: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address: pass -allow-remote to load another machine", host, ip)
		}
	}
	return nil
}

// apis builds the two kinds of client stacks the harness uses.
type apis struct {
	allowRemote bool
	nack        bool
	twcc        bool
	refused     atomic.Uint64
}

func (a *apis) settingEngine(relay bool) (*webrtc.SettingEngine, error) {
	se := &webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if a.allowRemote {
		return se, nil
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	se.SetNet(guardedNet{Net: std, refused: &a.refused, relay: relay})
	return se, nil
}

// publisher is pion's default stack, as a browser has: NACK answers,
// sender and receiver reports, transport-wide congestion control.
func (a *apis) publisher() (*webrtc.API, error) {
	se, err := a.settingEngine(false)
	if err != nil {
		return nil, err
	}
	return client.DefaultAPI(se)
}

// subscriber is a lean receive stack: receiver reports only (and NACKs
// with -nack, transport-cc feedback with -twcc). A hundred subscribers live in this one process, so each
// interceptor costs the harness a hundredfold; without NACKs the loss
// measured is the forwarding path's raw loss, not what retransmission
// repaired.
//
// A capped subscriber's stack (relay true) may reach a TURN relay on
// loopback: the harness's shaper, which caps its downlink.
func (a *apis) subscriber(relay bool) (*webrtc.API, error) {
	se, err := a.settingEngine(relay)
	if err != nil {
		return nil, err
	}
	m := &webrtc.MediaEngine{}
	if err := client.RegisterCodecs(m); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(rr)
	if a.nack {
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(gen) // the codecs already offer nack feedback
	}
	if a.twcc {
		// Transport-wide sequence numbers taken and feedback sent, as
		// browsers do: the server then runs its estimator per subscriber.
		if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(*se)), nil
}
