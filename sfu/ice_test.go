package sfu

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/internal/testlog"
)

// awaitCandidate joins a participant, makes it answer a client offer, and
// returns the first server candidate that match accepts.
func awaitCandidate(t *testing.T, ice ICEConfig, match func(string) bool) string {
	t.Helper()
	s, err := New(Config{Logger: testlog.New(t), ICE: ice})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cands := make(chan string, 64)
	p, err := s.Join("r", ParticipantParams{ID: "x", CanPublish: true, Events: Events{
		Candidate: func(_ Role, c webrtc.ICECandidateInit) { cands <- c.Candidate },
	}})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	t.Cleanup(func() { _ = client.Close() })
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	offer, _ := client.CreateOffer(nil)
	_ = client.SetLocalDescription(offer)
	if err := p.Offer(offer.SDP); err != nil {
		t.Fatal(err)
	}
	timeout := testenv.After(5 * time.Second)
	for {
		select {
		case c := <-cands:
			if match(c) {
				return c
			}
		case <-timeout:
			t.Fatal("expected candidate never gathered")
			return ""
		}
	}
}

func TestICESettings(t *testing.T) {
	t.Run("public IP replaces IPv4 host addresses", func(t *testing.T) {
		c := awaitCandidate(t, ICEConfig{PublicIPs: []string{"203.0.113.7"}, IncludeLoopback: true}, func(c string) bool {
			f := strings.Fields(c)
			return len(f) > 4 && strings.Contains(c, "typ host") && !strings.Contains(f[4], ":") // IPv4 only
		})
		if !strings.Contains(c, " 203.0.113.7 ") {
			t.Fatalf("host candidate without the public IP: %s", c)
		}
	})
	t.Run("one UDP port for every connection", func(t *testing.T) {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		port := fmt.Sprintf(" %d typ", udp.LocalAddr().(*net.UDPAddr).Port)
		c := awaitCandidate(t, ICEConfig{UDPMux: udp, IncludeLoopback: true}, func(c string) bool {
			return strings.Contains(c, " udp ")
		})
		if !strings.Contains(c, port) {
			t.Fatalf("UDP candidate off the shared port: %s", c)
		}
	})
	t.Run("ICE over TCP offered when a listener is set", func(t *testing.T) {
		tcp, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer tcp.Close()
		port := fmt.Sprintf(" %d typ", tcp.Addr().(*net.TCPAddr).Port)
		c := awaitCandidate(t, ICEConfig{TCPListener: tcp, IncludeLoopback: true}, func(c string) bool {
			return strings.Contains(c, "tcptype passive")
		})
		if !strings.Contains(c, port) {
			t.Fatalf("TCP candidate off the listener's port: %s", c)
		}
	})
}
