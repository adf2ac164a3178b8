package sfu

import (
	"math"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Quality is the server's view of one participant's network link, for
// the quality mark the others see on its tile and the alert a host gets
// when a patient's connection is poor. Each half of the link is measured
// where the server can see it without the client's help:
//
//   - uplink (participant → server): the up-tracks count what arrives
//     (uplink.go). The worst stream is the link's loss: audio is not
//     repaired, so it shows the loss that video retransmissions hide.
//   - downlink (server → participant): the participant's transport-cc
//     feedback says which of the packets the server sent it arrived.
//     That is its own link's loss, unlike its receiver reports, which
//     also count what the publishers' uplinks lost before the server (the
//     server forwards sequence numbers with their gaps). A client that
//     sends no transport-cc feedback is judged from its receiver reports
//     on the streams whose publisher's uplink is clean. A downlink that
//     carries nothing at all sends no feedback either: reports that saw
//     nothing of what the server kept sending make its loss total.
//   - jitter: the worse of the uplink's (at the server) and the
//     downlink's (the participant's reports, less the publisher's own
//     jitter), of audio when there is audio (jitterOf); round trip: from
//     the participant's receiver reports, or the ICE checks when it
//     receives nothing.
//   - relay: the selected ICE pair's remote candidate is a TURN relay.
//
// The losses are over the time since the last call of Quality: one
// periodic reader (signaling's quality ticker) owns the intervals, and
// a second reader would only shorten them.
type Quality struct {
	LossUp   float64 // fraction of what it sends that did not reach the server, 0..1
	LossDown float64 // fraction of what the server sent it that did not arrive, 0..1
	JitterMS float64
	RTTMS    float64
	Relay    bool
	// DownKbps is what the server estimates the participant's downlink
	// carries (Downlink's EstimateKbps; 0: no estimate).
	DownKbps int
	// Known: something was measured. With nothing (no media yet, a
	// quiet interval) the other fields are zero and mean nothing.
	Known bool
}

// freshReport is how old a receiver report may be and still describe the
// link now: subscribers report about once a second.
const freshReport = 5 * time.Second

// cleanUplink is the most loss a publisher's uplink may have for its
// subscribers' receiver reports to say something of their own downlinks.
const cleanUplink = 0.01

// minDownSample is how many packets' fates the transport-cc feedback of
// an interval must tell before its loss means anything.
const minDownSample = 10

// twccLoss counts, from a subscriber's transport-cc feedback, the
// packets the server sent whose fate it reported, and those received.
// Each transport-wide sequence number counts once as reported. A number
// first reported missing and named received by a later feedback counts
// as received then: it was late, not lost. Packets leave the server out
// of their numbers' order (the forwarding goroutines of a transport race
// between numbering and sending) and the subscriber's tracks are read
// by goroutines of their own, so on a busy machine late packets are
// common, and pion's recorder reports them again once they arrive.
type twccLoss struct {
	mu                 sync.Mutex
	started            bool
	high               uint16 // the newest sequence number counted
	reported, received uint64
	prevRep, prevRecv  uint64 // at the last read
	// missing has a bit set for each number of the last lateWindow
	// reported missing and not (yet) received.
	missing [1 << 16 / 64]uint64
}

// lateWindow is how far behind the newest number a missing packet may
// still turn up late and count as received.
const lateWindow = 4096

func (c *twccLoss) bit(seq uint16) (*uint64, uint64) {
	return &c.missing[seq/64], 1 << (seq % 64)
}

// advance makes seq the newest number, clearing what the bits of the
// numbers skipped over said of their use 65536 numbers ago.
func (c *twccLoss) advance(seq uint16) {
	if d := seq - c.high; !c.started || d > lateWindow {
		c.missing = [len(c.missing)]uint64{}
	} else {
		for s := c.high + 1; s != seq+1; s++ {
			w, b := c.bit(s)
			*w &^= b
		}
	}
	c.started, c.high = true, seq
}

// count takes in one feedback packet. Runs on the subscriber's RTCP
// path, a few times a second.
func (c *twccLoss) count(fb *rtcp.TransportLayerCC) {
	c.mu.Lock()
	defer c.mu.Unlock()
	eachStatus(fb, func(seq, sym uint16) {
		got := sym != rtcp.TypeTCCPacketNotReceived
		switch {
		case !c.started || int16(seq-c.high) > 0:
			c.advance(seq)
			c.reported++
			if got {
				c.received++
			} else {
				w, b := c.bit(seq)
				*w |= b
			}
		case got && c.high-seq < lateWindow:
			if w, b := c.bit(seq); *w&b != 0 {
				*w &^= b
				c.received++
			}
		}
	})
}

// eachStatus calls f with each packet a transport-cc feedback reports
// on: its transport-wide number and status symbol, in order, and no more
// than the feedback's count (chunks can say more: padding, or a forged
// run of thousands).
func eachStatus(fb *rtcp.TransportLayerCC, f func(seq, sym uint16)) {
	seq, left := fb.BaseSequenceNumber, fb.PacketStatusCount
	take := func(sym uint16) {
		if left > 0 {
			f(seq, sym)
			seq++
			left--
		}
	}
	for _, chunk := range fb.PacketChunks {
		switch ch := chunk.(type) {
		case *rtcp.RunLengthChunk:
			for i := uint16(0); i < ch.RunLength && left > 0; i++ {
				take(ch.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range ch.SymbolList {
				take(sym)
			}
		}
	}
}

// read returns the loss since the last read, if enough was reported.
func (c *twccLoss) read() (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dr, dv := c.reported-c.prevRep, c.received-c.prevRecv
	if dr < minDownSample {
		return 0, false
	}
	c.prevRep, c.prevRecv = c.reported, c.received
	if dv >= dr {
		return 0, true
	}
	return float64(dr-dv) / float64(dr), true
}

// Quality measures p's link (see the type). It takes p's lock and the
// down-tracks' briefly, and asks pion for the selected ICE pairs, so the
// caller must hold no lock of its own that pion's goroutines could need.
func (p *Participant) Quality() Quality {
	p.mu.Lock()
	ups := append([]*UpTrack(nil), p.ups...)
	// Only transports that have connected: pion's ICE transport sets its
	// gatherer when it starts, unguarded, and its selected-pair getters
	// read it. Connecting comes after that start, and p.up is written
	// under p.mu when it does, so reading p.up here orders the two.
	var pcs []*webrtc.PeerConnection
	if _, seen := p.up[RoleSubscribe]; seen && p.sub != nil {
		pcs = append(pcs, p.sub)
	}
	if _, seen := p.up[RolePublish]; seen && p.pub != nil {
		pcs = append(pcs, p.pub)
	}
	p.mu.Unlock()
	var q Quality
	var upJitter jitterOf
	for _, t := range ups {
		l := t.base() // every layer crosses the same uplink
		if l == nil {
			continue
		}
		if loss, jit, ok := l.uplink.read(); ok {
			q.LossUp, q.Known = max(q.LossUp, loss), true
			upJitter.add(t.info.Kind, jit)
		}
	}
	down := p.fromReports(p.downTracks(), time.Now())
	q.LossDown, q.RTTMS = down.loss, down.rttMS
	q.JitterMS = max(upJitter.ms(), down.jitterMS)
	q.Known = q.Known || down.known
	if est := p.estimate.Load(); est != nil && est.fed.Load() {
		// The subscriber's own count of what reached it, when it has one
		// for this interval: better than the reports' estimate.
		if loss, ok := est.loss.read(); ok {
			q.LossDown, q.Known = loss, true
		}
	}
	if down.starved {
		q.LossDown = 1
	}
	q.DownKbps = p.estimateKbps()
	for _, pc := range pcs {
		if pc == nil {
			continue
		}
		ice := pc.SCTP().Transport().ICETransport()
		if pair, err := ice.GetSelectedCandidatePair(); err == nil && pair != nil && pair.Remote != nil &&
			pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
			q.Relay = true
		}
		// pion checks a pair that carries media only when it goes quiet,
		// so its round trip can be old: the reports' come first, and it
		// alone is no sign of a link that works (the pair of a dead one
		// keeps its last figure).
		if q.RTTMS == 0 {
			if st, ok := ice.GetSelectedCandidatePairStats(); ok && st.CurrentRoundTripTime > 0 {
				q.RTTMS = st.CurrentRoundTripTime * 1000
			}
		}
	}
	return q
}

// reportView is what the receiver reports of p's down-tracks say of p's
// downlink.
type reportView struct {
	loss, jitterMS, rttMS float64
	known                 bool
	starved               bool // a track received nothing of what was sent
}

// fromReports reads the down-tracks' latest receiver reports (those
// since now-freshReport). A report counts what the publisher's uplink
// lost as well, and the two cannot be told apart (the report's interval
// is not the uplink's), so loss is read only off tracks whose publisher's
// uplink was clean at its last reading (up to 2 s ago). Jitter is taken
// less the up-track's own (jitter adds as variance).
func (p *Participant) fromReports(downs []*DownTrack, now time.Time) reportView {
	var v reportView
	var jitter jitterOf
	for _, d := range downs {
		l, at, moved := d.link.report()
		if l.Reports == 0 || now.Sub(at) > freshReport {
			continue
		}
		v.known = true
		v.rttMS = max(v.rttMS, l.RTTMS)
		if !moved {
			// Nothing arrived: a stream that was quiet (paused, muted)
			// is no evidence, one the server kept sending is.
			v.starved = v.starved || d.link.isStarved()
			continue
		}
		base := d.up.base()
		if base == nil {
			continue
		}
		if base.uplink.lastLoss() < cleanUplink {
			v.loss = max(v.loss, l.Loss)
		}
		up := base.uplink.lastJitterMS()
		jitter.add(d.up.info.Kind, math.Sqrt(max(0, l.JitterMS*l.JitterMS-up*up)))
	}
	v.jitterMS = jitter.ms()
	return v
}

// jitterOf is the worst jitter of a set of streams: audio's when there
// is audio. Video's interarrival jitter counts how a frame's packets are
// paced out and the retransmissions the server asked for, neither of
// which is the link's; audio is one packet every 20 ms, as it was sent.
type jitterOf struct {
	audio, video float64
	haveAudio    bool
}

func (j *jitterOf) add(kind string, ms float64) {
	if kind == "audio" {
		j.audio, j.haveAudio = max(j.audio, ms), true
	} else {
		j.video = max(j.video, ms)
	}
}

func (j *jitterOf) ms() float64 {
	if j.haveAudio {
		return j.audio
	}
	return j.video
}

// report is the link with when its last report came and whether packets
// flowed in that report's interval.
func (l *linkState) report() (Link, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.link, l.at, l.moved
}

// lostAllAfter is how many packets the server must have sent in a
// report's interval (of at least minStarvedSpan) for a report that saw
// none of them to mean the downlink lost them all.
const (
	lostAllAfter   = 10
	minStarvedSpan = 500 * time.Millisecond
)

// sentBy takes the down-track's count of packets sent, right after a
// report was taken in. A downlink that carries nothing sends no
// transport-cc feedback, so only its receiver reports, which still come
// over the uplink, show the loss: their highest sequence number stands
// still while the server keeps sending.
func (l *linkState) sentBy(sent uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starved = l.link.Reports > 1 && !l.moved && sent-l.sent >= lostAllAfter && l.at.Sub(l.prevAt) >= minStarvedSpan
	l.sent = sent
}

// isStarved reports whether the last report saw nothing of what was sent.
func (l *linkState) isStarved() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starved
}
