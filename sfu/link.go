package sfu

import (
	"sort"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// Link is what a subscriber's receiver reports say about one of its
// down-tracks: the server → subscriber link as that track sees it. It is
// the first measure of a subscriber's downlink the server has (before a
// bandwidth estimate), for operators (/api/rooms) and the quality a host
// sees. Loss and jitter are the subscriber's own figures (RFC 3550
// §6.4.1); the round trip is computed from the report's LSR and DLSR
// against the time it arrived, so it needs no record of the server's
// sender reports.
type Link struct {
	Track    string  `json:"track"` // the up-track's id
	Kind     string  `json:"kind"`
	Loss     float64 `json:"loss"` // fraction lost over the last report interval, 0..1
	Lost     int32   `json:"lost"` // packets lost since the start (as the subscriber counts)
	JitterMS float64 `json:"jitterMs"`
	RTTMS    float64 `json:"rttMs"`   // 0 until a report answers a sender report
	Reports  uint64  `json:"reports"` // receiver reports read
	// Of a simulcast track: the layer (rid) forwarded now, and the one
	// the allocator wants (different while a switch waits for its
	// keyframe). Paused: audio first stopped the track for this
	// subscriber.
	Layer       string `json:"layer,omitempty"`
	TargetLayer string `json:"targetLayer,omitempty"`
	Paused      bool   `json:"paused,omitempty"`
}

// linkState holds a down-track's Link; the RTCP reader writes it, stats
// readers copy it.
type linkState struct {
	mu         sync.Mutex
	link       Link
	at, prevAt time.Time // of the last report and of the one before
	lastSeq    uint32    // the highest sequence number the last report names
	moved      bool      // packets arrived in the last report's interval
	// Of the down-track's packets sent (quality.go): how many when the
	// last report came, and whether many went out in its interval and
	// none arrived.
	sent    uint64
	starved bool
}

// maxRTT bounds a believable round trip: a report whose arithmetic gives
// more (a clock step, a forged LSR) is not a measurement.
const maxRTT = 10 * time.Second

// update takes in a reception report block about this down-track,
// received at now; clock is the track's RTP clock rate. It returns the
// Link as updated.
func (l *linkState) update(r rtcp.ReceptionReport, now time.Time, clock uint32) Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prevAt, l.at = l.at, now
	l.moved = l.link.Reports == 0 || r.LastSequenceNumber != l.lastSeq
	l.lastSeq = r.LastSequenceNumber
	l.link.Reports++
	l.link.Loss = float64(r.FractionLost) / 256
	l.link.Lost = int32(r.TotalLost<<8) >> 8 // a signed 24-bit count
	if clock > 0 {
		l.link.JitterMS = float64(r.Jitter) * 1000 / float64(clock)
	}
	if r.LastSenderReport != 0 {
		// The middle 32 bits of the NTP time now, minus when the
		// subscriber got our report, minus how long it held it.
		rtt := ntpMiddle(now) - r.LastSenderReport - r.Delay
		if d := time.Duration(uint64(rtt) * uint64(time.Second) >> 16); d < maxRTT {
			l.link.RTTMS = float64(d) / float64(time.Millisecond)
		}
	}
	return l.link
}

// congested reports whether the last report, received since after and
// covering an interval that began since since (the previous report came
// after it: not one that spans an outage), shows the signs of a
// bottleneck: packets lost or held up in a queue. A report of a stream
// that received nothing in its interval (paused, muted by a host) is no
// evidence: its jitter is the last one measured, and stands until
// packets flow again. It tells loss from queueing: a video stream's
// jitter is as much its encoder's pacing as the network's, and on a busy
// sender runs to tens of milliseconds on any link.
func (l *linkState) congested(after, since time.Time) (lossy, queued bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.at.After(after) || !l.prevAt.After(since) || !l.moved {
		return false, false
	}
	return l.link.Loss >= congestedLoss, l.link.JitterMS >= congestedJitterMS
}

// What congested takes for a bottleneck. A healthy link shows neither,
// even right after an outage, when a low estimate alone would mislead.
const (
	congestedLoss     = 0.05
	congestedJitterMS = 30
)

func (l *linkState) get() Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.link
}

// ntpMiddle is the middle 32 bits of t as an NTP timestamp (16 bits of
// seconds, 16 of fraction), the unit of LSR and DLSR.
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}

// downTracks is what p receives now, to visit without p.mu held.
func (p *Participant) downTracks() []*DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	downs := make([]*DownTrack, 0, len(p.downs))
	for _, d := range p.downs {
		downs = append(downs, d)
	}
	return downs
}

// Links reports the link as each of p's down-tracks sees it.
func (p *Participant) Links() []Link { return linksOf(p.downTracks()) }

func linksOf(downs []*DownTrack) []Link {
	out := make([]Link, 0, len(downs))
	for _, d := range downs {
		l := d.link.get()
		l.Track, l.Kind = d.up.info.ID, d.up.info.Kind
		cur, target := d.Layer()
		l.Layer, l.TargetLayer, l.Paused = d.up.ridOf(cur), d.up.ridOf(target), d.paused.Load()
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Track < out[j].Track })
	return out
}
