package main

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/pion/transport/v5/stdnet"
)

// The harness's sockets send to loopback alone, and a relay socket is
// opened only for a capped subscriber's stack, held to loopback too.
func TestGuardedSocketsSendToLoopbackOnly(t *testing.T) {
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Uint64
	far := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	g := guardedNet{Net: std, refused: &refused}
	c, err := g.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("x"), far); !errors.Is(err, errNotLoopback) {
		t.Errorf("WriteTo a far address: %v", err)
	}
	if _, err := c.WriteToUDP([]byte("x"), nil); !errors.Is(err, errNotLoopback) {
		t.Errorf("WriteToUDP to no address: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), peer.LocalAddr()); err != nil {
		t.Errorf("WriteTo loopback: %v", err)
	}
	if _, err := g.ListenPacket("udp4", "127.0.0.1:0"); !errors.Is(err, errNoRelay) {
		t.Errorf("a relay socket without relays allowed: %v", err)
	}

	g.relay = true
	pc, err := g.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteTo([]byte("x"), far); !errors.Is(err, errNotLoopback) {
		t.Errorf("relay socket WriteTo a far address: %v", err)
	}
	if _, err := pc.WriteTo([]byte("x"), peer.LocalAddr()); err != nil {
		t.Errorf("relay socket WriteTo loopback: %v", err)
	}
	if n := refused.Load(); n != 3 {
		t.Errorf("%d refusals counted, want 3", n)
	}
}
