package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/zap"
)

// layerRig is a subscriber receiving audio and a three-layer camera
// (150 kbit/s, 600 kbit/s, 1.2 Mbit/s), ticked by hand.
type layerRig struct {
	a            *allocator
	p            *Participant
	audio, video *DownTrack
	now          time.Time
	seq          uint32
}

func newLayerRig() *layerRig {
	r := &layerRig{a: newAllocator(nil), now: time.Now()}
	r.p = &Participant{log: zap.NewNop()}
	r.p.subUpAt.Store(r.now.Add(-time.Minute).UnixNano())
	au := testUpTrack(TrackInfo{ID: "pub:mic", Kind: "audio"}, 1)
	r.a.rates[au] = &rateMeter{bps: 40_000, at: r.now}
	r.audio = newDownTrack(au, func(*DownTrack) {}, false)
	cam := testUpTrack(TrackInfo{ID: "pub:cam", Kind: "video", Codec: "video/VP8"}, 3)
	for i, bps := range []float64{150_000, 600_000, 1_200_000} {
		r.a.lrates[cam.layer(uint8(i))] = &rateMeter{bps: bps, at: r.now}
	}
	r.video = newDownTrack(cam, func(*DownTrack) {}, false)
	return r
}

// tick runs one allocator tick at the estimate, the subscriber reporting
// loss (a fraction) on the camera; every layer is flowing.
func (r *layerRig) tick(estimate, loss float64) {
	r.now = r.now.Add(allocEvery)
	for i := range r.video.up.layers {
		r.video.up.layers[i].Load().lastAt.Store(r.now.UnixNano())
	}
	r.seq += 25
	r.video.link.update(rtcp.ReceptionReport{FractionLost: uint8(loss * 256), LastSequenceNumber: r.seq}, r.now, videoClock)
	r.a.allocate(r.p, estimate, false, []*DownTrack{r.audio, r.video}, r.now)
}

func (r *layerRig) target() uint8 { _, t := r.video.Layer(); return t }

// Up a layer only through a probe the link carried; down at once on a
// bottleneck the subscriber reports, never on a low estimate alone.
func TestLayersMoveUpThroughAProbeAndDownOnEvidence(t *testing.T) {
	r := newLayerRig()
	if r.target() != 1 {
		t.Fatalf("started on layer %d, want the middle one", r.target())
	}
	// Room to spare: a probe pads towards the top layer's rate, then the
	// move follows.
	r.tick(2_000_000, 0)
	r.tick(2_000_000, 0)
	if r.video.probeBps.Load() == 0 || r.target() != 1 {
		t.Fatalf("no probe before moving up (padding %d, layer %d)", r.video.probeBps.Load(), r.target())
	}
	for i := 0; i < int(probeFor/allocEvery)+1 && r.target() == 1; i++ {
		r.tick(2_000_000, 0)
	}
	if r.target() != 2 || r.video.probeBps.Load() != 0 {
		t.Fatalf("after the probe: layer %d, padding %d", r.target(), r.video.probeBps.Load())
	}

	// A low estimate on a clean link moves nothing.
	for i := 0; i < 20; i++ {
		r.tick(300_000, 0)
	}
	if r.target() != 2 {
		t.Fatalf("moved to layer %d on a low estimate alone", r.target())
	}
	// A bottleneck the subscriber reports: down at once, to what fits.
	r.tick(300_000, 0.3)
	if r.target() != 0 {
		t.Fatalf("on a reported bottleneck at 300 kbit/s: layer %d, want 0", r.target())
	}
}

// A probe the link does not carry stops, and the next waits out a
// back-off, whatever the estimate says.
func TestAFailedProbeBacksOff(t *testing.T) {
	r := newLayerRig()
	r.tick(2_000_000, 0)
	r.tick(2_000_000, 0)
	if r.video.probeBps.Load() == 0 {
		t.Fatal("no probe")
	}
	r.tick(2_000_000, 0.3) // the probe's queue overflows
	if r.video.probeBps.Load() != 0 || r.target() != 1 {
		t.Fatalf("after a failed probe: padding %d, layer %d", r.video.probeBps.Load(), r.target())
	}
	// Within the back-off (and the probe's aftermath), no new probe.
	for i := 0; i < int(probeRetryFirst/allocEvery)-1; i++ {
		r.tick(200_000, 0)
		if r.video.probeBps.Load() != 0 {
			t.Fatalf("probed again %v after a failed probe", time.Duration(i+1)*allocEvery)
		}
	}
	// Then again, though the estimate is still low after the failure.
	for i := 0; i < 4 && r.video.probeBps.Load() == 0; i++ {
		r.tick(200_000, 0)
	}
	if r.video.probeBps.Load() == 0 {
		t.Fatal("no probe once the back-off ended")
	}
}

// Probes that fail far short of the padding a layer needs (a link far
// from it) wait ever longer, to probeRetryFar; probes that fail with
// more than probeFar of it keep the short back-off, probeRetryMax.
func TestProbesFailingFarFromTheLayerWaitLonger(t *testing.T) {
	// waits fails n probes, each after ticks clean ticks of padding, and
	// returns the time from each failure to the next probe.
	waits := func(n, ticks int) []time.Duration {
		r := newLayerRig()
		var out []time.Duration
		for len(out) < n {
			for i := 0; i < 100 && r.video.probeBps.Load() == 0; i++ {
				r.tick(2_000_000, 0)
			}
			if r.video.probeBps.Load() == 0 {
				t.Fatal("no probe")
			}
			for i := 0; i < ticks; i++ {
				r.tick(2_000_000, 0)
			}
			r.tick(2_000_000, 0.3) // fails it
			if r.video.probeBps.Load() != 0 || r.target() != 1 {
				t.Fatalf("after a failed probe: padding %d, layer %d", r.video.probeBps.Load(), r.target())
			}
			failed := r.now
			for i := 0; i < 100 && r.video.probeBps.Load() == 0; i++ {
				r.tick(2_000_000, 0)
			}
			out = append(out, r.now.Sub(failed))
		}
		return out
	}
	far, near := waits(6, 0), waits(6, 3)
	t.Logf("after failing far from the layer: %v; near it: %v", far, near)
	last := func(w []time.Duration) time.Duration { return w[len(w)-1] }
	if last(far) < probeRetryFar || last(far) > probeRetryFar+2*time.Second {
		t.Errorf("far failures: the wait reached %v, want about %v", last(far), probeRetryFar)
	}
	if last(near) > probeRetryMax+2*time.Second {
		t.Errorf("near failures: the wait reached %v, want about %v", last(near), probeRetryMax)
	}
	for i := 1; i < len(far); i++ {
		if far[i] < far[i-1] {
			t.Errorf("the wait shrank after a far failure: %v", far)
		}
	}
}
