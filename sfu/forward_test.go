package sfu

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/sfu/internal/keyframe"
)

// publisherFeedback counts the RTCP a publisher receives for a sender.
type publisherFeedback struct {
	plis  atomic.Int64
	nacks chan uint16
}

// watchFeedback also answers each PLI with a keyframe on key, as a browser
// would.
func watchFeedback(sender *webrtc.RTPSender, key chan struct{}) *publisherFeedback {
	fb := &publisherFeedback{nacks: make(chan uint16, 1024)}
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.PictureLossIndication:
					fb.plis.Add(1)
					select {
					case key <- struct{}{}:
					default:
					}
				case *rtcp.TransportLayerNack:
					for _, n := range p.Nacks {
						for _, s := range n.PacketList() {
							select {
							case fb.nacks <- s:
							default:
							}
						}
					}
				}
			}
		}
	}()
	return fb
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond)
}

func TestSubscriberStartsOnKeyframeAndPLIReachesPublisher(t *testing.T) {
	vc := startVideoCall(t)
	b, remote, fb := vc.b, vc.remote, vc.fb
	if remote.ID() != "a:cam" || remote.StreamID() != "a:stream-a" {
		t.Fatalf("track ids %q %q", remote.ID(), remote.StreamID())
	}
	pkt, _, err := remote.ReadRTP()
	if err != nil {
		t.Fatal(err)
	}
	if !keyframe.IsStart(keyframe.VP8, pkt.Payload) {
		t.Fatal("first forwarded packet is not a keyframe start")
	}
	base := fb.plis.Load()
	if err := b.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PLI at the publisher", 3*time.Second, func() bool { return fb.plis.Load() > base })
}

func TestPLIStormIsThrottled(t *testing.T) {
	vc := startVideoCall(t)
	b, remote, fb := vc.b, vc.remote, vc.fb
	if _, _, err := remote.ReadRTP(); err != nil {
		t.Fatal(err)
	}
	go func() { // keep reading so the subscriber's buffers never fill
		for {
			if _, _, err := remote.ReadRTP(); err != nil {
				return
			}
		}
	}()

	// 100 PLIs a second for two seconds.
	base := fb.plis.Load()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < 200; i++ {
		<-tick.C
		_ = b.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}})
	}
	tick.Stop()
	// Let the trailing request, if any, arrive.
	waitFor(t, "throttled PLIs", 2*time.Second, func() bool { return fb.plis.Load()-base >= 2 })
	elapsed := time.Since(start) + 500*time.Millisecond
	got := fb.plis.Load() - base
	limit := int64(elapsed/(500*time.Millisecond)) + 1
	if got > limit {
		t.Fatalf("publisher got %d PLIs in %v; throttle allows %d", got, elapsed, limit)
	}
	t.Logf("200 PLIs from the subscriber became %d at the publisher over %v", got, elapsed)
}

func TestSubscriberNACKAnsweredFromCache(t *testing.T) {
	vc := startVideoCall(t)
	b, remote := vc.b, vc.remote

	first, _, err := remote.ReadRTP()
	if err != nil {
		t.Fatal(err)
	}
	want := first.SequenceNumber
	if err := b.sub.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
		MediaSSRC: uint32(remote.SSRC()), Nacks: []rtcp.NackPair{{PacketID: want}},
	}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testenv.Scale(3 * time.Second))
	for time.Now().Before(deadline) {
		p, _, err := remote.ReadRTP()
		if err != nil {
			t.Fatal(err)
		}
		if p.SequenceNumber == want {
			if string(p.Payload) != string(first.Payload) {
				t.Fatal("retransmission differs from the original")
			}
			return
		}
	}
	t.Fatal("NACKed packet was not retransmitted")
}

func TestServerNACKsPublisherForLostPacket(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	joinPeer(t, s, "r", "b")
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "s")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := a.pub.AddTrack(tr)
	if err != nil {
		t.Fatal(err)
	}
	fb := watchFeedback(sender, make(chan struct{}, 1))
	offer, _ := a.pub.CreateOffer(nil)
	_ = a.pub.SetLocalDescription(offer)
	if err := a.p.Offer(offer.SDP); err != nil {
		t.Fatal(err)
	}
	// Lose a packet only once the server reads the track: packets sent
	// before the connection is up, or before the server's receiver (and
	// its NACK generator) has seen the stream, are no loss it could see.
	lost := -1
	deadline := time.Now().Add(testenv.Scale(10 * time.Second))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(100); time.Now().Before(deadline); seq++ {
		<-tick.C
		if lost < 0 && s.Stats().PacketsIn > 5 {
			lost = int(seq)
			continue
		}
		_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 900}, Payload: vp8Delta})
		select {
		case n := <-fb.nacks:
			if int(n) != lost {
				t.Fatalf("NACK for %d, only %d was lost", n, lost)
			}
			return
		default:
		}
	}
	t.Fatalf("no NACK reached the publisher (lost %d)", lost)
}
