package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/zap"
)

// allocRig is a subscriber receiving one audio and one video track whose
// rates, link reports and estimate the test sets, ticked by hand.
type allocRig struct {
	a            *allocator
	p            *Participant
	audio, video *DownTrack
	events       []bool
	now          time.Time
	starved      bool
	seq          uint32 // the video's highest sequence number reported
}

func newAllocRig(t *testing.T) *allocRig {
	r := &allocRig{a: newAllocator(nil), now: time.Now()}
	r.p = &Participant{log: zap.NewNop()}
	r.p.params.Events.TrackPaused = func(_ TrackInfo, paused bool) { r.events = append(r.events, paused) }
	up := func(kind string, bps float64) *DownTrack {
		u := testUpTrack(TrackInfo{ID: "pub:" + kind, Kind: kind}, 1)
		r.a.rates[u] = &rateMeter{bps: bps, at: r.now}
		return newDownTrack(u, func(*DownTrack) {}, false)
	}
	r.audio, r.video = up("audio", 40_000), up("video", 400_000)
	r.up(r.now.Add(-time.Minute))
	return r
}

// up says when the subscribe transport came up.
func (r *allocRig) up(at time.Time) { r.p.subUpAt.Store(at.UnixNano()) }

// report has the subscriber report loss (a fraction) on the video track;
// its highest sequence number moves while the video flows.
func (r *allocRig) report(loss float64) {
	if !r.video.Paused() {
		r.seq += 25
	}
	r.video.link.update(rtcp.ReceptionReport{FractionLost: uint8(loss * 256), LastSequenceNumber: r.seq}, r.now, videoClock)
}

// pause drives the rig into a pause: a bottleneck long enough.
func (r *allocRig) pause(t *testing.T) {
	t.Helper()
	r.ticks(2*pauseTicks+1, 150_000, 0.4)
	if !r.video.Paused() {
		t.Fatal("not paused")
	}
}

// ticks runs n allocator ticks at the given estimate, reporting loss
// before each.
func (r *allocRig) ticks(n int, estimate, loss float64) {
	for i := 0; i < n; i++ {
		r.now = r.now.Add(allocEvery)
		r.report(loss)
		r.a.allocate(r.p, estimate, r.starved, []*DownTrack{r.audio, r.video}, r.now)
	}
}

func TestALowEstimateAloneDoesNotPause(t *testing.T) {
	r := newAllocRig(t)
	r.ticks(20, 100_000, 0) // after an outage: estimate low, link clean
	if r.video.Paused() || len(r.events) > 0 {
		t.Fatal("paused on a clean link")
	}
	r.up(r.now)
	r.ticks(8, 100_000, 0.3) // lossy, but the transport just came back
	if r.video.Paused() {
		t.Fatal("paused within the settling time after the transport came up")
	}
}

func TestAGoodEstimateNeverPauses(t *testing.T) {
	r := newAllocRig(t)
	r.ticks(40, 600_000, 0.1) // a little loss, room enough
	if r.video.Paused() {
		t.Fatal("paused with room for the video")
	}
}

func TestABottleneckPausesVideoThenRetriesWithBackOff(t *testing.T) {
	r := newAllocRig(t)
	r.ticks(pauseTicks+1, 150_000, 0) // the estimate's recent past: low, but no loss yet
	if r.video.Paused() {
		t.Fatal("paused with no loss reported")
	}
	r.ticks(pauseTicks-1, 150_000, 0.4)
	if r.video.Paused() {
		t.Fatal("paused before the bottleneck lasted")
	}
	r.ticks(1, 150_000, 0.4)
	if !r.video.Paused() || r.audio.Paused() || len(r.events) != 1 || !r.events[0] {
		t.Fatalf("after %d ticks: video paused %v, audio paused %v, events %v", pauseTicks, r.video.Paused(), r.audio.Paused(), r.events)
	}
	// The estimate climbs back (the link carries audio alone well): the
	// video is retried once the first back-off has passed, with a probe
	// first.
	r.ticks(int(retryFirst/allocEvery)-1, 600_000, 0)
	if !r.video.Paused() || r.video.probeBps.Load() != 0 {
		t.Fatal("retried before the back-off")
	}
	r.retried(t)
	// The retry fails at once (the estimate falls back): it is judged in
	// half the ticks, and the next back-off is twice as long.
	r.ticks(pauseTicks/2, 150_000, 0.4)
	if !r.video.Paused() {
		t.Fatal("a failed retry not cut short")
	}
	r.ticks(int(2*retryFirst/allocEvery)-1, 600_000, 0)
	if !r.video.Paused() || r.video.probeBps.Load() != 0 {
		t.Fatal("the back-off did not double")
	}
	r.retried(t)
	if len(r.events) != 4 {
		t.Fatalf("events %v", r.events)
	}
}

// retried checks that a retry is under way: a probe pads for probeFor,
// the video still paused, and then the video resumes.
func (r *allocRig) retried(t *testing.T) {
	t.Helper()
	r.ticks(1, 600_000, 0)
	if !r.video.Paused() || r.video.probeBps.Load() == 0 {
		t.Fatalf("the retry did not probe first (paused %v, padding %d)", r.video.Paused(), r.video.probeBps.Load())
	}
	for i := 1; i < int(probeFor/allocEvery); i++ {
		r.ticks(1, 600_000, 0)
		if !r.video.Paused() {
			t.Fatalf("resumed %v into the probe", time.Duration(i)*allocEvery)
		}
	}
	r.ticks(1, 600_000, 0)
	if r.video.Paused() || r.video.probeBps.Load() != 0 {
		t.Fatalf("after the probe: paused %v, padding %d", r.video.Paused(), r.video.probeBps.Load())
	}
}

// A retry whose probe meets the bottleneck (the subscriber reports loss
// again) leaves the video paused, stops the padding at once, and doubles
// the back-off; the link clean again, the next probe resumes it.
func TestAFailedRetryProbeKeepsTheVideoPaused(t *testing.T) {
	r := newAllocRig(t)
	r.pause(t)
	r.ticks(int(retryFirst/allocEvery), 600_000, 0)
	if r.video.probeBps.Load() == 0 {
		t.Fatal("no probe when the back-off ended")
	}
	r.ticks(1, 600_000, 0)
	// The padding fills the link: the audio loses packets.
	for _, seq := range []uint32{1000, 1025} {
		r.now = r.now.Add(allocEvery / 2)
		r.audio.link.update(rtcp.ReceptionReport{FractionLost: 77, LastSequenceNumber: seq}, r.now, 48000)
	}
	r.a.allocate(r.p, 200_000, false, []*DownTrack{r.audio, r.video}, r.now)
	if !r.video.Paused() || r.video.probeBps.Load() != 0 {
		t.Fatalf("after the probe failed: paused %v, padding %d", r.video.Paused(), r.video.probeBps.Load())
	}
	if len(r.events) != 1 {
		t.Fatalf("events %v: the subscriber was told of a resume", r.events)
	}
	r.ticks(int(2*retryFirst/allocEvery)-1, 600_000, 0)
	if r.video.probeBps.Load() != 0 {
		t.Fatal("probed again before twice the back-off")
	}
	r.retried(t)
}

// A climbing estimate is a link recovering (after an outage, or GCC's
// start below a large video), not a bottleneck: nothing is paused.
func TestAClimbingEstimateDoesNotPause(t *testing.T) {
	r := newAllocRig(t)
	e := 50_000.0
	for i := 0; i < 20; i++ {
		e *= 1.04
		r.ticks(1, e, 0.3)
	}
	if r.video.Paused() {
		t.Fatal("paused while the estimate climbed")
	}
}

// Paused video that was the only thing carrying transport-cc feedback
// leaves the estimate frozen: it is retried when its back-off ends.
func TestAStarvedEstimateRetriesOnTheBackOff(t *testing.T) {
	r := newAllocRig(t)
	r.pause(t)
	r.starved = true
	r.ticks(int(retryFirst/allocEvery)+1, 150_000, 0)
	if r.video.Paused() {
		t.Fatal("not retried with the feedback gone")
	}
}

// A paused track's own reports keep the jitter of the congestion that
// paused it (nothing arrives to move it): they are no evidence, and do
// not hold its retry back.
func TestAPausedTracksStaleReportsDoNotBlockItsRetry(t *testing.T) {
	r := newAllocRig(t)
	r.pause(t)
	for i := 0; i <= int((retryFirst+probeFor)/allocEvery) && r.video.Paused(); i++ {
		r.now = r.now.Add(allocEvery)
		r.video.link.update(rtcp.ReceptionReport{Jitter: 90 * 60, LastSequenceNumber: r.seq}, r.now, videoClock) // 60 ms, stale
		r.audio.link.update(rtcp.ReceptionReport{}, r.now, 48000)                                                // clean
		r.a.allocate(r.p, 150_000, false, []*DownTrack{r.audio, r.video}, r.now)
	}
	if r.video.Paused() {
		t.Fatal("the paused track's stale jitter held its retry back")
	}
}

// A link that loses packets at random but has room (its estimate covers
// the video) does not fail a retry's probe: the loss is the link's, not
// the padding's, and the video resumes.
func TestARetryProbeOnALossyWideLinkResumes(t *testing.T) {
	r := newAllocRig(t)
	r.pause(t)
	seq := uint32(5000)
	for i := 0; i <= int((retryFirst+probeFor)/allocEvery)+1 && r.video.Paused(); i++ {
		for j := 0; j < 2; j++ {
			r.now = r.now.Add(allocEvery / 2)
			seq += 25
			r.audio.link.update(rtcp.ReceptionReport{FractionLost: 20, LastSequenceNumber: seq}, r.now, 48000) // 8 %
		}
		r.a.allocate(r.p, 700_000, false, []*DownTrack{r.audio, r.video}, r.now)
	}
	if r.video.Paused() {
		t.Fatal("random loss on a link with room failed the retry")
	}
}
