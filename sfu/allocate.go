package sfu

import (
	"sort"
	"time"

	"go.uber.org/zap"
)

// Audio first. Twice a second the allocator compares each subscriber's
// downlink estimate (estimate.go) with what its tracks need, measured as
// the publishers' rates. When the estimate stays well below audio plus
// video, the subscriber's video tracks are paused for it, most expensive
// first, and its audio goes on whole: a consult survives a frozen
// picture, not broken speech. A paused track is retried when a back-off
// ends (8 s, doubling up to 32 s each time a retry meets the bottleneck
// again and is cut short), unless the subscriber still reports loss or
// queueing; the retry pads the link up to the track's rate first, and
// resumes the picture only if the link carried the padding. Tracks
// resume at a keyframe with no gap in their numbering (DownTrack.paused). Only a subscriber that sends transport-cc feedback
// or REMB is judged: without either there is no estimate. With one layer per track
// (no simulcast yet) pausing is all the allocator can do; choosing layers
// will take its place for video that has them.
const (
	allocEvery = 500 * time.Millisecond
	// A track is paused after pauseTicks ticks in a row in which the
	// estimate was below pauseBelow of what the tracks need: a dip of
	// GCC's (to 0.85 of the rate received, on a delay spike, even two in
	// a row) does not pause anything; a link that carries less than half
	// the video does.
	pauseTicks = 4
	pauseBelow = 0.5
	headroom   = 1.15 // a track needs its rate times this
	retryFirst = 8 * time.Second
	retryMax   = 32 * time.Second
	// A resume that holds this long was a success: the next back-off
	// starts again from retryFirst.
	resumeHolds = 20 * time.Second
	// Nothing is paused until the subscriber's transport has been up this
	// long: after an outage GCC's estimate is low for a while (the lost
	// packets counted as loss) on a link that is fine.
	settleAfterUp = 5 * time.Second
	// A retry is judged within retryVerdict, with half the ticks.
	retryVerdict = 5 * time.Second
	// With no transport-cc feedback (or REMB) for starvedAfter, a paused track is
	// retried when its back-off ends, whatever the (frozen) estimate.
	starvedAfter = 3 * time.Second
)

type allocator struct {
	s      *SFU
	rates  map[*UpTrack]*rateMeter
	lrates map[*layer]*rateMeter // of simulcast layers (layers.go)
	state  map[*DownTrack]*pauseState
	trend  map[*Participant]*trend
	// probedAt is when a subscriber's last probe ended (probe.go): its
	// reports just after are the probe's doing.
	probedAt map[*Participant]time.Time
	done     chan struct{}
}

// trend holds a subscriber's last estimates, to tell a link that is
// congested now (the estimate falls or stays) from one recovering (it
// climbs: after an outage, or from GCC's start below a large video).
type trend struct {
	last [pauseTicks + 1]float64
	n    int
}

func (t *trend) push(v float64) {
	copy(t.last[:], t.last[1:])
	t.last[len(t.last)-1] = v
	t.n++
}

// rising reports whether the estimate climbed over the window.
func (t *trend) rising() bool {
	return t.n <= pauseTicks || t.last[len(t.last)-1] > t.last[0]*1.02
}

type rateMeter struct {
	bytes uint64
	at    time.Time
	bps   float64
}

type pauseState struct {
	over      int // ticks in a row below pauseBelow
	pausedAt  time.Time
	resumedAt time.Time
	retry     time.Duration
	layers    layerState // a simulcast track's (layers.go)
	// probe is the retry of a paused track under way: padding up to what
	// it needs, until probeUntil (probe.go).
	probe      *probe
	probeUntil time.Time
}

func newAllocator(s *SFU) *allocator {
	return &allocator{s: s, rates: map[*UpTrack]*rateMeter{}, lrates: map[*layer]*rateMeter{}, state: map[*DownTrack]*pauseState{},
		trend: map[*Participant]*trend{}, probedAt: map[*Participant]time.Time{}, done: make(chan struct{})}
}

func (a *allocator) run() {
	tick := time.NewTicker(allocEvery)
	defer tick.Stop()
	for {
		select {
		case <-a.done:
			return
		case now := <-tick.C:
			a.tick(now)
		}
	}
}

func (a *allocator) tick(now time.Time) {
	rooms := a.s.roomList()
	seenUp, seenDown, seenP := map[*UpTrack]bool{}, map[*DownTrack]bool{}, map[*Participant]bool{}
	for _, r := range rooms {
		for _, up := range r.trackList() {
			seenUp[up] = true
			a.measure(up, now)
			a.followTop(up, now)
		}
		for _, p := range r.snapshot() {
			est := p.estimate.Load()
			downs := p.downTracks()
			for _, d := range downs {
				seenDown[d] = true
			}
			if est == nil {
				continue
			}
			if bps, starved, ok := est.target(now); ok {
				seenP[p] = true
				a.allocate(p, bps, starved, downs, now)
			}
		}
	}
	for up := range a.rates {
		if !seenUp[up] {
			delete(a.rates, up)
			for i := range up.layers {
				delete(a.lrates, up.layers[i].Load())
			}
		}
	}
	for d, st := range a.state {
		if !seenDown[d] {
			if st.layers.probe != nil {
				st.layers.probe.stop()
			}
			if st.probe != nil {
				st.probe.stop()
			}
			delete(a.state, d)
		}
	}
	for p := range a.trend {
		if !seenP[p] {
			delete(a.trend, p)
			delete(a.probedAt, p)
		}
	}
}

// measure updates an up-track's rate, and its layers', smoothed over
// about a second.
func (a *allocator) measure(up *UpTrack, now time.Time) {
	if a.rates[up] == nil {
		a.rates[up] = &rateMeter{}
	}
	a.rates[up].update(up.bytes.Load(), now)
	if !up.simulcast {
		return
	}
	for i := range up.layers {
		if l := up.layers[i].Load(); l != nil {
			if a.lrates[l] == nil {
				a.lrates[l] = &rateMeter{}
			}
			a.lrates[l].update(l.bytes.Load(), now)
		}
	}
}

func (m *rateMeter) update(bytes uint64, now time.Time) {
	if m.at.IsZero() {
		m.bytes, m.at = bytes, now
		return
	}
	if dt := now.Sub(m.at).Seconds(); dt >= allocEvery.Seconds()/2 {
		bps := float64(bytes-m.bytes) * 8 / dt
		if m.bps == 0 {
			m.bps = bps
		} else {
			m.bps += (bps - m.bps) / 2
		}
		m.bytes, m.at = bytes, now
	}
}

// minRate is what a track costs at the least: its lowest layer's rate.
func (a *allocator) minRate(up *UpTrack) float64 {
	if up.simulcast {
		for i := range up.layers {
			if r := a.layerRate(up, uint8(i)); r > 0 {
				return r
			}
		}
	}
	return a.rate(up)
}

// sending is the rate of what d forwards now.
func (a *allocator) sending(d *DownTrack) float64 {
	if !d.up.simulcast {
		return a.rate(d.up)
	}
	cur, _ := d.Layer()
	return a.layerRate(d.up, cur)
}

func (a *allocator) rate(up *UpTrack) float64 {
	if m := a.rates[up]; m != nil {
		return m.bps
	}
	return 0
}

// allocate decides which of p's video tracks its estimate carries.
// starved says transport-cc feedback stopped: nothing carrying it is sent
// (the paused video was all there was), so the estimate cannot recover.
func (a *allocator) allocate(p *Participant, estimate float64, starved bool, downs []*DownTrack, now time.Time) {
	tr := a.trend[p]
	if tr == nil {
		tr = &trend{}
		a.trend[p] = tr
	}
	tr.push(estimate)
	var audio float64
	var video []*DownTrack
	for _, d := range downs {
		if d.up.info.Kind == "audio" {
			audio += a.rate(d.up) * redShare(d)
		} else {
			video = append(video, d)
		}
	}
	// Screens first (layers.go), then the cheapest, so that as many
	// pictures as fit go on.
	sort.Slice(video, func(i, j int) bool {
		si, sj := video[i].up.info.Source == SourceScreen, video[j].up.info.Source == SourceScreen
		if si != sj {
			return si
		}
		return a.minRate(video[i].up) < a.minRate(video[j].up)
	})
	sent := audio
	for _, d := range video {
		if !d.paused.Load() {
			sent += a.sending(d)
		}
	}
	budget := estimate - audio*headroom
	// A pause needs a settled transport, an estimate that is not
	// climbing, and a bottleneck the subscriber itself reports (loss or
	// queueing on some track, in a report that began after the transport
	// came up), not a low estimate alone.
	upAt := p.subUpAt.Load()
	settled := upAt != 0 && now.Sub(time.Unix(0, upAt)) >= settleAfterUp && !tr.rising()
	// lossy is the stricter sign, loss alone: what moves a subscriber
	// down a layer (layers.go).
	congested, lossy := false, false
	aftermath := now.Sub(a.probedAt[p]) < probeAftermath
	for _, d := range downs {
		if aftermath {
			break
		}
		l, q := d.link.congested(now.Add(-3*time.Second), time.Unix(0, upAt))
		lossy = lossy || l
		congested = congested || l || q && d.up.info.Kind == "audio" // queueing, on audio alone
	}
	resumed := false
	for _, d := range video {
		st := a.state[d]
		if st == nil {
			st = &pauseState{retry: retryFirst}
			a.state[d] = st
		}
		need := a.minRate(d.up) * headroom
		if d.up.simulcast && !d.paused.Load() {
			need = a.chooseLayer(p, d, st, budget, estimate, sent, congested, lossy, now)
			// Held to a low layer by its view, the stream is small, and
			// GCC's estimate of a small stream sinks to its floor: then
			// only loss shows that the link cannot carry it.
			viewHeld := d.maxLayer() < d.up.top(now) && !lossy
			if _, target := d.Layer(); target > 0 || budget >= need*pauseBelow || viewHeld {
				st.over = 0
				budget -= need
				continue
			}
			// Not even the lowest layer fits: audio first decides.
		}
		if !d.paused.Load() {
			if budget >= need*pauseBelow || !settled || !congested {
				st.over = 0
				budget -= need
				continue
			}
			// A retry that meets congestion at once is cut short.
			ticks := pauseTicks
			if !st.resumedAt.IsZero() && now.Sub(st.resumedAt) < retryVerdict {
				ticks = pauseTicks / 2
			}
			if st.over++; st.over < ticks {
				budget -= need
				continue
			}
			// Back off further after a retry that did not hold.
			if !st.resumedAt.IsZero() && now.Sub(st.resumedAt) < resumeHolds {
				st.retry = min(2*st.retry, retryMax)
			} else {
				st.retry = retryFirst
			}
			st.over, st.pausedAt = 0, now
			a.setPaused(p, d, true, estimate, need)
			continue
		}
		// A retry: nothing else tells whether a link that carries audio
		// well would carry the video again (GCC climbs about 8 % a second
		// unprobed, and sits at its floor after a pause). A link still
		// reporting a bottleneck is not retried. One retry at a time: two
		// pictures back at once on a link that carried neither would
		// break the voice again.
		if st.probe != nil {
			resumed = true
			a.judgeRetry(p, d, st, estimate, budget, need, congested, now)
			budget -= need
			continue
		}
		if !resumed && now.Sub(st.pausedAt) >= st.retry && (budget >= need || starved || !congested) {
			resumed = true
			budget -= need
			a.retry(p, d, st, estimate, need, starved, now)
		}
	}
}

// retry tries a paused track again. It probes first (probe.go): padding
// rises to what the track needs, so that the link shows whether it
// carries it before the picture comes back. Padding stops within a third
// of a second of a growing queue, where a picture resumed on a link too
// narrow for it broke the voice for 1–2 s (a keyframe, then video at its
// lowest rate, until the next pause). A subscriber whose feedback has
// stopped cannot judge a probe: its track resumes at once.
func (a *allocator) retry(p *Participant, d *DownTrack, st *pauseState, estimate, need float64, starved bool, now time.Time) {
	if starved {
		a.resume(p, d, st, estimate, need, now)
		return
	}
	est := p.estimate.Load()
	if est != nil && est.probe.Load() != nil {
		return // another track's probe is on: its feedback judges that one
	}
	st.probe, st.probeUntil = startProbe(est, d, need, now), now.Add(probeFor)
	p.log.Debug("probing before a resume", zap.String("track", d.up.info.ID), zap.Int("needKbps", int(need/1000)))
}

// judgeRetry follows a paused track's probe: a queue growing, or loss
// reported with the estimate below what the track needs, ends it, and
// the track waits out a back-off twice as long; a probe the link carried
// to its end resumes the track. Loss alone is no verdict: a link that
// loses a few percent at random (a weak cell) loses them with or without
// the padding, and its estimate shows whether it has the room.
func (a *allocator) judgeRetry(p *Participant, d *DownTrack, st *pauseState, estimate, budget, need float64, congested bool, now time.Time) {
	pr := st.probe
	switch {
	case pr.failed.Load() || congested && budget < need:
		pr.stop()
		st.probe, st.pausedAt = nil, now
		st.retry = min(2*st.retry, retryMax)
		a.probedAt[p] = now
		p.log.Debug("probe failed: video stays paused", zap.String("track", d.up.info.ID),
			zap.String("why", failure(pr)), zap.Duration("retryIn", st.retry))
	case now.Before(st.probeUntil):
		pr.ramp(now)
	default:
		// Not a probe's aftermath (probeAftermath): the link carried the
		// padding, so loss once the picture is back is the picture's.
		pr.stop()
		st.probe = nil
		a.resume(p, d, st, estimate, need, now)
	}
}

func (a *allocator) resume(p *Participant, d *DownTrack, st *pauseState, estimate, need float64, now time.Time) {
	st.resumedAt = now
	if d.up.simulcast {
		a.setLayer(p, d, 0, "resume")
	}
	a.setPaused(p, d, false, estimate, need)
}

func (a *allocator) setPaused(p *Participant, d *DownTrack, paused bool, estimate, need float64) {
	d.paused.Store(paused)
	msg := "video resumed for this subscriber"
	if paused {
		msg = "video paused for this subscriber: its downlink cannot carry it"
	}
	p.log.Info(msg, zap.String("track", d.up.info.ID),
		zap.Int("estimateKbps", int(estimate/1000)), zap.Int("needKbps", int(need/1000)))
	if f := p.params.Events.TrackPaused; f != nil {
		f(d.up.info, paused)
	}
}

// Paused reports whether the track is paused for this subscriber.
func (d *DownTrack) Paused() bool { return d.paused.Load() }
