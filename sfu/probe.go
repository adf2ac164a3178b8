package sfu

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Probing. GCC never lets its estimate climb far past 1.5 times the rate
// it sees arrive, so a subscriber on a low layer cannot show that its
// link would carry a higher one. Before a move up (layers.go) the
// down-track adds padding (RTP packets of padding alone, between frames,
// which decoders skip), rising over probeFor to what the higher layer
// would add. If the link carries it the move goes ahead; if the
// subscriber's feedback shows a queue growing (60 ms of it, read
// directly: probequeue.go; or GCC's overuse), the padding stops at that
// feedback, and the move waits out a back-off. The ramp
// finds a link's limit with a small overload rather than a large one: a
// probe costs a weak link a few hundred milliseconds of queueing, where
// moving up blindly would cost it a frozen picture. Loss right after a
// probe is the probe's doing, not evidence that the media does not fit
// (allocate.go).
const (
	probeFor = 2500 * time.Millisecond
	// probeAftermath is how long after a probe the subscriber's reports
	// are not taken as a bottleneck.
	probeAftermath = 3 * time.Second
	// padPayload is one padding packet's padding; maxPadBurst bounds how
	// many follow one frame.
	padPayload  = 255
	maxPadBurst = 24
	// overuseFeedbacks in a row (about a third of a second of feedback)
	// end a probe.
	overuseFeedbacks = 4
)

// probe is a probe in progress on one of a subscriber's down-tracks.
type probe struct {
	d      *DownTrack
	est    *twccOnly // the subscriber's estimator, which watches it (nil in tests)
	bps    float64   // the padding the probe rises to
	start  time.Time
	over   atomic.Int32 // feedbacks in a row that found the queue growing
	failed atomic.Bool
	why    atomic.Pointer[string] // what failed it, from the feedback
	// reached is the padding when the feedback failed it (bits/s).
	reached atomic.Int64
	queue   *queueWatch // of a layer probe, the queue it builds (probequeue.go)
}

// startProbe has d pad up to bps over probeFor, watched by est.
func startProbe(est *twccOnly, d *DownTrack, bps float64, now time.Time) *probe {
	return launch(&probe{d: d, est: est, bps: bps, start: now}, now)
}

// startLayerProbe is startProbe for a move up a layer, which the queue
// watch (probequeue.go) also ends. A paused track's retry is not watched
// so: on a link that carries one picture and not much more, the other
// picture's keyframes alone hold a queue of that size for seconds, and a
// retry stopped by it keeps a picture paused 16–32 s longer, where a
// layer probe stopped by it costs a few seconds' wait.
func startLayerProbe(est *twccOnly, d *DownTrack, bps float64, now time.Time) *probe {
	pr := &probe{d: d, est: est, bps: bps, start: now}
	if est != nil {
		pr.queue = newQueueWatch(now)
	}
	return launch(pr, now)
}

// launch starts pr's padding and hands it to its estimator's feedback,
// once it is complete.
func launch(pr *probe, now time.Time) *probe {
	pr.ramp(now)
	if pr.est != nil {
		pr.est.probe.Store(pr)
	}
	return pr
}

// ramp sets the padding for now: a quarter of the whole at first, all of
// it for the last tick.
func (pr *probe) ramp(now time.Time) {
	if pr.failed.Load() {
		return
	}
	f := min(1, 0.25+float64(now.Sub(pr.start))/float64(probeFor-allocEvery))
	pr.d.probeBps.Store(int64(f * pr.bps))
}

// stop ends the probe.
func (pr *probe) stop() {
	pr.d.probeBps.Store(0)
	if pr.est != nil {
		pr.est.probe.CompareAndSwap(pr, nil)
	}
}

// fail ends the probe's padding at once, for the reason why (the first
// one given stands).
func (pr *probe) fail(why string) {
	if pr.failed.CompareAndSwap(false, true) {
		pr.why.Store(&why)
		pr.reached.Store(pr.d.probeBps.Load())
	}
	pr.d.probeBps.Store(0)
}

// share is how much of its padding the probe had reached when it failed
// (or by now, if its feedback did not fail it), 0..1.
func (pr *probe) share() float64 {
	if pr.bps <= 0 {
		return 1
	}
	bps := pr.d.probeBps.Load()
	if pr.failed.Load() {
		bps = pr.reached.Load()
	}
	return float64(bps) / pr.bps
}

// failure names why a probe ended early: what its feedback showed, or,
// when that did not fail it, the subscriber's reports.
func failure(pr *probe) string {
	if w := pr.why.Load(); w != nil {
		return *w
	}
	return "reports"
}

// heed reads one transport-cc feedback while a probe is on: a queue the
// padding built ends it (probequeue.go).
func (e *twccOnly) heed(fb *rtcp.TransportLayerCC) {
	if pr := e.probe.Load(); pr != nil && !pr.failed.Load() && pr.queue != nil && pr.queue.feedback(fb) {
		pr.fail("queue")
	}
}

// watch runs on each RTCP read while a probe is on: GCC's overuse ends
// it, once overuseFeedbacks in a row say so (a few alone are as often a
// busy machine's scheduling as a queue: a real one goes on growing while
// the probe lasts).
func (e *twccOnly) watch() {
	pr := e.probe.Load()
	if pr == nil {
		return
	}
	if st := e.SendSideBWE.GetStats(); st["usage"] != "overuse" {
		pr.over.Store(0)
	} else if pr.over.Add(1) >= overuseFeedbacks {
		pr.fail("overuse")
	}
}

// pad sends the padding due after a frame while a probe is on. It runs
// on the writer goroutine, after layer li's packet numbered lastOut. On
// the RTX stream if the subscriber has one (rtx.go); on the media stream
// the padding takes the numbers after lastOut, so the layer's next packet
// starts a new segment of the sequence map.
func (d *DownTrack) pad(b *binding, li uint8) {
	rate := d.probeBps.Load()
	now := nanotime()
	last := d.padAt
	d.padAt = now
	if rate <= 0 {
		d.padTokens = 0
		return
	}
	if last != 0 {
		d.padTokens += float64(rate) / 8 * float64(now-last) / float64(time.Second)
	}
	d.padTokens = min(d.padTokens, float64(rate)/8/10) // no more than 100 ms of it at once
	ssrc, pt, seq := b.ssrc, b.byCodec[d.outCodec], &d.lastOut
	rtx, onRTX := b.rtxFor(d.outCodec)
	if onRTX {
		ssrc, pt, seq = b.rtxSSRC, rtx, &d.rtxSeq
	}
	sent := 0
	for d.padTokens >= padPayload && sent < maxPadBurst {
		d.hdr = rtp.Header{Version: 2, Padding: true, PaddingSize: padPayload, PayloadType: pt,
			SequenceNumber: *seq + 1, Timestamp: d.lastTS, SSRC: ssrc}
		n, err := b.writer.WriteRTP(&d.hdr, d.buf[:0])
		if err != nil || n == 0 {
			break
		}
		*seq++
		d.padTokens -= float64(n)
		d.bytesOut.Add(uint64(n))
		d.padded.Add(1)
		sent++
	}
	if sent > 0 && !onRTX {
		d.offset -= uint16(sent)
		d.segStart = d.lastOut + 1
		d.seqs.add(li, d.offset, d.segStart, uint8(sent))
	}
}
