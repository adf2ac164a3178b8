package sfu

import (
	"time"
)

// Layer choice. For each subscriber and simulcast track the allocator
// (allocate.go) picks the layer its downlink carries, each tick:
//
//   - Down at once, on evidence, to the lowest layer: the estimate no
//     longer covers the layer and the subscriber reports loss. A low estimate alone moves
//     nothing, nor does jitter: on a busy machine GCC's delay detector
//     and the subscriber's jitter take the scheduler's hiccups for
//     queues, and a link really too narrow soon overflows its queue.
//   - Up one layer at a time, carefully: when the link shows no
//     bottleneck for upTicks in a row, and either the estimate is well
//     above what is sent or the last move up was a probe that the link
//     carried (GCC climbs about 8 % a second, far slower than a probe
//     shows what a link can do), a probe (probe.go) pads the stream to the
//     higher layer's rate; the move follows if the link carried it. A
//     probe that fails makes the next wait (probeRetryFirst, doubling to
//     probeRetryMax: a probe stops at the first sign of a queue, so it
//     costs little, and a link that got better is found soon; to
//     probeRetryFar when it failed far short of the layer), whatever
//     the estimate, which the failed probe itself brought down; a move up
//     that meets a bottleneck within upVerdict costs a frozen moment, so
//     the next try waits longer (upRetryFirst, doubling to retryMax). A
//     move that holds resets both. Moves up are upSettle apart, so that
//     each is judged before the next.
//   - Screen shares are served before cameras: in a consult the shared
//     document is what everyone is looking at.
//
// Below the lowest layer, audio first's pause takes over (allocate.go).
const (
	upTicks      = 2
	upSettle     = 1500 * time.Millisecond
	upClear      = 1.25 // estimate over what is sent, for a move up
	upVerdict    = 6 * time.Second
	upRetryFirst = 8 * time.Second

	probeRetryFirst = 3 * time.Second
	probeRetryMax   = 4 * time.Second
	// A probe that failed before probeFar of its padding doubles the wait
	// up to probeRetryFar instead. Behind Chromium's shaper at 300 kbit/s
	// (two pictures on q, a probe towards h wanting 440 kbit/s more) the
	// probes failed at a quarter to a half of it, every 6 s, and now and
	// then one froze the pictures.
	probeFar      = 0.5
	probeRetryFar = 16 * time.Second
)

// layerState is a simulcast down-track's history for the allocator.
type layerState struct {
	clear      int       // ticks in a row fit for a move up
	upAt       time.Time // the last move up
	noUpBefore time.Time
	upRetry    time.Duration
	probeRetry time.Duration
	proven     bool   // the last move up was a probe the link carried
	retrying   bool   // a probe failed since the last move: probe again on the back-off
	probe      *probe // on now, towards layer probeTo, until probeUntil
	probeTo    uint8
	probeUntil time.Time
}

// layerRate is layer i's rate (0 if not measured or absent).
func (a *allocator) layerRate(up *UpTrack, i uint8) float64 {
	if l := up.layer(i); l != nil {
		if m := a.lrates[l]; m != nil {
			return m.bps
		}
	}
	return 0
}

// chooseLayer sets d's target layer given the budget left for it, and
// returns the target's need. sent is what the subscriber receives now;
// congested, whether its reports show a bottleneck (loss, or queueing on
// audio); lossy, whether they show loss.
func (a *allocator) chooseLayer(p *Participant, d *DownTrack, st *pauseState, budget, estimate, sent float64,
	congested, lossy bool, now time.Time) float64 {
	ls := &st.layers
	if ls.upRetry == 0 {
		ls.upRetry, ls.probeRetry = upRetryFirst, probeRetryFirst
	}
	_, target := d.Layer()
	// No higher than the subscriber's view needs (dynacast.go).
	limit := d.maxLayer()
	top := d.up.top(now)
	if limit < top {
		// Held down by the view, not by the link: when the view grows,
		// probe on the back-off rather than wait for the estimate, which
		// a stream held small does not raise (GCC's stays near what is
		// sent, or sinks to its floor).
		top, ls.retrying = limit, true
	}
	if !d.up.live(target, now) || target > top {
		// The publisher stopped sending it (its own uplink, or nobody
		// else needed it), or the subscriber shows the picture smaller:
		// the best below it that is there.
		why := "layer gone"
		if target > limit {
			why = "view"
		}
		if ls.probe != nil {
			ls.probe.stop()
			ls.probe = nil
		}
		next := uint8(0)
		for i := int(min(target, top)); i >= 0; i-- {
			if d.up.live(uint8(i), now) {
				next = uint8(i)
				break
			}
		}
		a.setLayer(p, d, next, why)
		return a.layerRate(d.up, next) * headroom
	}
	need := a.layerRate(d.up, target) * headroom
	est := p.estimate.Load()
	if pr := ls.probe; pr != nil {
		switch {
		case pr.failed.Load() || congested:
			// A probe that failed short of half its padding shows a link
			// far from the next layer: probing it again every few seconds
			// would cost it more than it could find.
			limit := probeRetryMax
			if pr.share() < probeFar {
				limit = probeRetryFar
			}
			pr.stop()
			ls.probe, ls.clear, ls.proven, ls.retrying = nil, 0, false, true
			a.probedAt[p] = now
			ls.noUpBefore = now.Add(ls.probeRetry)
			ls.probeRetry = min(2*ls.probeRetry, limit)
			d.logSwitch(p.log, target, ls.probeTo, "probe failed: "+failure(pr))
		case now.Before(ls.probeUntil):
			pr.ramp(now)
			return need
		default:
			pr.stop()
			ls.probe = nil
			a.probedAt[p] = now
			if d.up.live(ls.probeTo, now) {
				ls.upAt, ls.proven, ls.retrying = now, true, false
				a.setLayer(p, d, ls.probeTo, "probed")
				return a.layerRate(d.up, ls.probeTo) * headroom
			}
		}
	}
	if target > 0 && budget < need && lossy {
		// Straight to the lowest layer: while the link loses packets the
		// estimate lags behind it, and a layer chosen by it can be as
		// much too big (seen: from 1 Mbit/s to 600 kbit/s on a
		// 60 kbit/s link). From the lowest, audio first can pause, and
		// probes find the way back up.
		next := uint8(0)
		if !ls.upAt.IsZero() && now.Sub(ls.upAt) < upVerdict {
			ls.upRetry = min(2*ls.upRetry, retryMax) // that move up did not hold
		}
		ls.noUpBefore, ls.clear, ls.upAt, ls.proven, ls.retrying = now.Add(ls.upRetry), 0, time.Time{}, false, false
		a.setLayer(p, d, next, "downlink")
		return a.layerRate(d.up, next) * headroom
	}
	if !ls.upAt.IsZero() && now.Sub(ls.upAt) >= 2*upVerdict {
		ls.upRetry, ls.probeRetry, ls.upAt = upRetryFirst, probeRetryFirst, time.Time{} // it held
	}
	next := target + 1
	for next <= top && !d.up.live(next, now) {
		next++
	}
	if congested {
		ls.proven = false
	}
	// One probe at a time per subscriber: its feedback judges one.
	busy := est != nil && est.probe.Load() != nil
	// After a failed probe the estimate sits low for a while (GCC cut it
	// for the probe's queue): the back-off alone says when to try again.
	if next > top || congested || busy || (estimate < upClear*sent && !ls.proven && !ls.retrying) || now.Before(ls.noUpBefore) {
		ls.clear = 0
		return need
	}
	// Room for the next layer, it seems: make sure with a probe.
	if ls.clear++; ls.clear < upTicks || (!ls.upAt.IsZero() && now.Sub(ls.upAt) < upSettle) {
		return need
	}
	ls.clear = 0
	extra := (a.layerRate(d.up, next) - a.layerRate(d.up, target)) * headroom
	if extra <= 0 {
		ls.upAt = now
		a.setLayer(p, d, next, "headroom")
		return a.layerRate(d.up, next) * headroom
	}
	ls.probe, ls.probeTo, ls.probeUntil = startLayerProbe(est, d, extra, now), next, now.Add(probeFor)
	return need
}

func (a *allocator) setLayer(p *Participant, d *DownTrack, i uint8, why string) {
	_, from := d.Layer()
	if d.setTarget(i) {
		d.logSwitch(p.log, from, i, why)
	}
}

// followTop keeps the taps of simulcast tracks on the best layer there is.
func (a *allocator) followTop(up *UpTrack, now time.Time) {
	if !up.simulcast {
		return
	}
	top := up.top(now)
	for _, d := range *up.downs.Load() {
		if d.tap {
			d.setTarget(top)
		}
	}
}
