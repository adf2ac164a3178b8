package sfu

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
)

// A REMB is kept bounded, a figure that is not a number is ignored, and
// one that stops coming leaves the estimate starved; once transport-cc
// feedback has come, GCC's estimate is the one, whatever REMB says.
func TestREMBIsTheEstimateUntilTransportCCComes(t *testing.T) {
	now := time.Now()
	e := &twccOnly{}
	if _, _, ok := e.target(now); ok {
		t.Fatal("an estimate with neither transport-cc nor REMB")
	}
	for _, c := range []struct {
		bitrate float32
		want    float64
	}{
		{300_000, 300_000},
		{0, estimateMin},
		{1e20, estimateMax},
		{float32(math.NaN()), estimateMax}, // ignored: the last one stands
		{float32(math.Inf(1)), estimateMax},
		{float32(math.Inf(-1)), estimateMin},
	} {
		e.remb.note(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: c.bitrate}, now)
		bps, starved, ok := e.target(now)
		if !ok || starved || bps != c.want {
			t.Errorf("after a REMB of %v: %v (starved %v, ok %v), want %v", c.bitrate, bps, starved, ok, c.want)
		}
	}
	if _, starved, _ := e.target(now.Add(starvedAfter + time.Millisecond)); !starved {
		t.Error("REMBs stopped, and the estimate is not starved")
	}

	e, err := newTWCCOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	bwe := e.SendSideBWE
	e.remb.note(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 100_000}, now)
	e.fed.Store(true)
	e.lastFeed.Store(now.UnixNano())
	if bps, _, ok := e.target(now); !ok || bps != float64(bwe.GetTargetBitrate()) {
		t.Errorf("with transport-cc feedback the estimate is %v, want GCC's %d", bps, bwe.GetTargetBitrate())
	}
}

// A subscriber that sends no transport-cc feedback, only REMB, as older
// and non-browser clients do: its REMB is its downlink's estimate, and
// with a REMB below what the video needs and loss in its reports, its
// video is paused (audio first), as a browser's would be on GCC's word.
// Without the fallback nothing judged such a client: it was sent
// everything, whatever its link.
func TestASubscriberWithREMBAloneIsJudgedByIt(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	b := joinPeerOn(t, s, "r", "b", newClientAPI(t, false)) // no transport-cc, no reports of pion's
	tr := a.publish(webrtc.MimeTypeVP8, "cam")
	stop, key := make(chan struct{}), make(chan struct{}, 1)
	t.Cleanup(func() { close(stop) })
	watchFeedback(a.published[webrtc.RTPCodecTypeVideo], key)
	go sendVideo(tr, key, stop) // about 320 kbit/s
	remote := b.awaitTrack(5 * time.Second)
	ssrc := uint32(remote.SSRC())

	var seq atomic.Uint32
	go func() {
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			seq.Store(uint32(pkt.SequenceNumber))
		}
	}()
	// The client's reports, four a second: its REMB, and a receiver
	// report with the loss it sees.
	var remb, lost atomic.Uint32
	remb.Store(math.Float32bits(150_000))
	lost.Store(100) // of 256: two fifths
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = b.sub.WriteRTCP([]rtcp.Packet{
				&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ssrc,
					FractionLost: uint8(lost.Load()), LastSequenceNumber: seq.Load()}}},
				&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: math.Float32frombits(remb.Load()), SSRCs: []uint32{ssrc}},
			})
		}
	}()

	// The transport settles for 5 s before anything is paused.
	deadline := testenv.After(20 * time.Second)
	await := func(what string, ok func(Downlink) bool) {
		t.Helper()
		for {
			d := b.p.Downlink()
			if ok(d) {
				return
			}
			select {
			case <-deadline:
				t.Fatalf("%s: the downlink is %+v", what, d)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	videoPaused := func(d Downlink) bool {
		for _, l := range d.Tracks {
			if l.Kind == "video" {
				return l.Paused
			}
		}
		return false
	}
	await("the REMB as the estimate, and the video paused", func(d Downlink) bool { return d.EstimateKbps == 150 && videoPaused(d) })

	remb.Store(math.Float32bits(3_000_000))
	lost.Store(0)
	await("the estimate following the REMB up", func(d Downlink) bool { return d.EstimateKbps == 3000 })
}
