package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// A publisher whose uplink loses a tenth of its audio: its own Quality
// shows that loss; its subscriber's does not, although the subscriber's
// receiver reports count the same gaps (the server forwards them), since
// the loss was not on the subscriber's link. The test clients send no
// transport-cc feedback, so the subscriber is judged from its reports.
func TestQualityBlamesTheLinkThatLost(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	b := joinPeer(t, s, "r", "b")
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "stream-a")
	if err != nil {
		t.Fatal(err)
	}
	a.publishTrack(tr)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	lossy := make(chan bool, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		drop := false
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case drop = <-lossy:
			case <-tick.C:
			}
			if drop && seq%10 == 5 {
				continue // lost on the publisher's uplink
			}
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
				Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, byte(seq)}})
		}
	}()
	remote := b.awaitTrack(5 * time.Second)
	go func() { // pion's receiver reports count what is read
		for {
			if _, _, err := remote.ReadRTP(); err != nil {
				return
			}
		}
	}()
	waitFor(t, "a clean link both ways", 10*time.Second, func() bool {
		qa, qb := a.p.Quality(), b.p.Quality()
		return qa.Known && qa.LossUp == 0 && qb.Known && qb.LossDown == 0 && !qa.Relay && !qb.Relay
	})

	lossy <- true
	var qa, qb Quality
	waitFor(t, "the publisher's loss, and the subscriber's reports of it", 10*time.Second, func() bool {
		qa = a.p.Quality()
		if qa.LossUp < 0.05 {
			return false
		}
		for _, l := range b.p.Links() {
			if l.Loss > 0.05 { // the gaps reach the subscriber
				return true
			}
		}
		return false
	})
	reports := func() uint64 {
		var n uint64
		for _, l := range b.p.Links() {
			n += l.Reports
		}
		return n
	}
	for i := 0; i < 3; i++ {
		n := reports()
		waitFor(t, "another receiver report", 5*time.Second, func() bool { return reports() > n })
		if qb = b.p.Quality(); qb.LossDown != 0 {
			t.Fatalf("the subscriber's clean downlink shows the publisher's loss: %+v", qb)
		}
	}
	if qa.LossUp > 0.15 {
		t.Fatalf("publisher's loss %+v, want about 0.1", qa)
	}
}

// A downlink that carries nothing sends no transport-cc feedback; its
// receiver reports, coming over the uplink, show the loss: their highest
// sequence number stands still while the server keeps sending. A stream
// the server stopped sending (paused, muted) is no such evidence.
func TestAReportThatSawNothingOfWhatWasSentIsTotalLoss(t *testing.T) {
	var l linkState
	at := time.Unix(1000, 0)
	steps := []struct {
		after time.Duration
		seq   uint32
		sent  uint64
		want  bool
	}{
		{0, 100, 50, false},                       // the first report
		{time.Second, 150, 100, false},            // packets arrived
		{time.Second, 150, 150, true},             // 50 sent, none arrived
		{time.Second, 150, 150, false},            // none sent: quiet, not lost
		{time.Second, 150, 155, false},            // too few sent to tell
		{100 * time.Millisecond, 150, 180, false}, // too short a span to tell
		{time.Second, 200, 230, false},            // flowing again
	}
	for i, s := range steps {
		at = at.Add(s.after)
		l.update(rtcp.ReceptionReport{LastSequenceNumber: s.seq}, at, 48000)
		l.sentBy(s.sent)
		if got := l.isStarved(); got != s.want {
			t.Fatalf("step %d: starved %v, want %v", i, got, s.want)
		}
	}
}
