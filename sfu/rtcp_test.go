package sfu

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
)

// rtcpKinds collects the RTCP packet types read from a sender or receiver.
type rtcpKinds struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (k *rtcpKinds) add(pkts []rtcp.Packet) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.ReceiverReport:
			k.seen["RR"] = true
		case *rtcp.SenderReport:
			k.seen["SR"] = true
		case *rtcp.TransportLayerCC:
			k.seen["TWCC"] = true
		}
	}
}

func (k *rtcpKinds) kinds() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for kind := range k.seen {
		out = append(out, kind)
	}
	return out
}

func (k *rtcpKinds) has(kind string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seen[kind]
}

func TestReportsFlowBothWays(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	b := joinPeer(t, s, "r", "b")
	tr := a.publish(webrtc.MimeTypeVP8, "cam")
	stop, key := make(chan struct{}), make(chan struct{}, 1)
	defer close(stop)
	toPublisher := &rtcpKinds{seen: map[string]bool{}}
	go func() {
		for {
			pkts, _, err := a.published[webrtc.RTPCodecTypeVideo].ReadRTCP()
			if err != nil {
				return
			}
			toPublisher.add(pkts)
			select {
			case key <- struct{}{}:
			default:
			}
		}
	}()
	go sendVideo(tr, key, stop)
	remote := b.awaitTrack(5 * time.Second)
	toSubscriber := &rtcpKinds{seen: map[string]bool{}}
	go func() {
		for {
			if _, _, err := remote.ReadRTP(); err != nil {
				return
			}
		}
	}()
	go func() {
		for _, r := range b.sub.GetReceivers() {
			go func() {
				for {
					pkts, _, err := r.ReadRTCP()
					if err != nil {
						return
					}
					toSubscriber.add(pkts)
				}
			}()
		}
	}()
	deadline := time.Now().Add(testenv.Scale(15 * time.Second))
	for !(toPublisher.has("RR") && toPublisher.has("TWCC") && toSubscriber.has("SR")) {
		if time.Now().After(deadline) {
			t.Fatalf("publisher got %v, subscriber got %v", toPublisher.kinds(), toSubscriber.kinds())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

func TestHostileRTCPIsBoundedAndHarmless(t *testing.T) {
	vc := startVideoCall(t)
	s, b, remote := vc.s, vc.b, vc.remote
	count := 0
	go func() {
		for {
			if _, _, err := remote.ReadRTP(); err != nil {
				return
			}
		}
	}()
	ssrc := uint32(remote.SSRC())
	// Garbage, then a NACK flood asking for every sequence number, many
	// times over.
	_ = b.sub.WriteRTCP([]rtcp.Packet{&rtcp.RawPacket{0x80, 0xcd, 0x00, 0x09, 1, 2, 3}})
	start := time.Now()
	for round := 0; round < 20; round++ {
		var nacks []rtcp.NackPair
		for seq := 0; seq < 65536; seq += 17 {
			nacks = append(nacks, rtcp.NackPair{PacketID: uint16(seq), LostPackets: 0xffff})
		}
		for i := 0; i < len(nacks); i += 200 {
			_ = b.sub.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: nacks[i:min(i+200, len(nacks))]}})
			count++
		}
	}
	elapsed := time.Since(start)
	before := s.Stats().PacketsOut
	waitFor(t, "forwarding to go on", 5*time.Second, func() bool { return s.Stats().PacketsOut > before+20 })
	st := s.Stats()
	limit := uint64(nackBurst + nackRate*(elapsed+time.Second).Seconds())
	if st.Retransmits > limit {
		t.Fatalf("%d NACK packets caused %d retransmissions in %v; budget %d", count, st.Retransmits, elapsed, limit)
	}
	t.Logf("%d hostile NACK packets (%d sequence numbers each) → %d retransmissions", count, 200*17, st.Retransmits)
}
