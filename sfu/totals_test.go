package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// The SFU's counters only grow: a subscriber that leaves and a publisher
// whose track ends take nothing away from them, as a monitoring system
// reading them as counters needs. Bytes and subscribers' PLIs count too.
func TestStatsNeverGoBackWhenTracksEnd(t *testing.T) {
	vc := startVideoCall(t)
	s := vc.s
	drain := func(r *webrtc.TrackRemote) {
		go func() {
			for {
				if _, _, err := r.ReadRTP(); err != nil {
					return
				}
			}
		}()
	}
	drain(vc.remote)
	c := joinPeer(t, s, "r", "c")
	drain(c.awaitTrack(5 * time.Second))
	waitFor(t, "both subscribers to receive", 5*time.Second, func() bool { return s.Stats().PacketsOut > 40 })
	_ = vc.b.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(vc.remote.SSRC())}})
	waitFor(t, "the subscriber's PLI to count", 5*time.Second, func() bool { return s.Stats().PLIsIn >= 1 })

	prev := s.Stats()
	if prev.BytesIn == 0 || prev.BytesOut < prev.PacketsOut*12 {
		t.Fatalf("bytes not counted: %+v", prev)
	}
	check := func(when string) {
		t.Helper()
		st := s.Stats()
		for _, c := range []struct {
			name      string
			was, isto uint64
		}{
			{"PacketsIn", prev.PacketsIn, st.PacketsIn}, {"PacketsOut", prev.PacketsOut, st.PacketsOut},
			{"BytesIn", prev.BytesIn, st.BytesIn}, {"BytesOut", prev.BytesOut, st.BytesOut},
			{"Dropped", prev.Dropped, st.Dropped}, {"Retransmits", prev.Retransmits, st.Retransmits},
			{"KeyframeRequests", prev.KeyframeRequests, st.KeyframeRequests}, {"PLIsIn", prev.PLIsIn, st.PLIsIn},
		} {
			if c.isto < c.was {
				t.Errorf("%s: %s went from %d to %d", when, c.name, c.was, c.isto)
			}
		}
		prev = st
	}
	c.p.Close() // a subscriber's down-track goes
	check("after a subscriber left")
	vc.a.p.Close() // the published track goes, with its last down-track
	check("after the publisher left")
	if st := s.Stats(); st.Tracks != 0 || st.PacketsOut == 0 {
		t.Fatalf("after both left: %+v", st)
	}
}
