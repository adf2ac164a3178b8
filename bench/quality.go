package main

import (
	"math"
	"time"
)

// lossWindow is how far back (in packets) a late packet can still be
// matched. A packet older than that is counted as late and stays lost:
// at 200 packets/s it is 5 s, far beyond any useful playout delay.
const lossWindow = 1024

// arrival classifies a packet for the loss tracker.
type arrival int

const (
	arrivalNew       arrival = iota // first copy of a packet
	arrivalDuplicate                // a copy already counted
	arrivalLate                     // too old to match (or before the first packet)
)

// LossTracker counts, from the stamp counters of one received track, the
// packets that never arrived, allowing for reordering and duplicates. It
// starts at the first packet it sees: a late joiner is not charged for
// what was sent before it joined (nor before its first keyframe).
type LossTracker struct {
	started          bool
	first, highest   uint32
	received         uint64 // distinct packets in [first, highest]
	duplicates, late uint64
	reordered        uint64
	window           [lossWindow / 64]uint64 // bit c%lossWindow: c was received, for c in (highest-lossWindow, highest]
}

func (l *LossTracker) bit(c uint32) (word int, mask uint64) {
	i := c % lossWindow
	return int(i / 64), 1 << (i % 64)
}

func (l *LossTracker) set(c uint32)            { w, m := l.bit(c); l.window[w] |= m }
func (l *LossTracker) clear(c uint32)          { w, m := l.bit(c); l.window[w] &^= m }
func (l *LossTracker) isSet(c uint32) bool     { w, m := l.bit(c); return l.window[w]&m != 0 }
func (l *LossTracker) Received() uint64        { return l.received }
func (l *LossTracker) Highest() (uint32, bool) { return l.highest, l.started }

// Add records the arrival of the packet numbered c. Counters do not wrap
// in any run this harness makes (2^32 packets is 248 days at 200/s).
func (l *LossTracker) Add(c uint32) arrival {
	switch {
	case !l.started:
		l.started, l.first, l.highest = true, c, c
	case c > l.highest:
		if d := c - l.highest; d >= lossWindow {
			l.window = [lossWindow / 64]uint64{}
		} else {
			// Slots being reused held packets lossWindow older.
			for x := l.highest + 1; x != c; x++ {
				l.clear(x)
			}
		}
		l.highest = c
	case c < l.first || l.highest-c >= lossWindow:
		l.late++
		return arrivalLate
	case l.isSet(c):
		l.duplicates++
		return arrivalDuplicate
	default:
		l.reordered++
	}
	l.set(c)
	l.received++
	return arrivalNew
}

// LossResult is one track's (or a sum of tracks') loss accounting.
type LossResult struct {
	Expected   uint64 `json:"expected"`
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Duplicates uint64 `json:"duplicates"`
	Reordered  uint64 `json:"reordered"`
	Late       uint64 `json:"late"`
}

// Result accounts for every packet from the first received up to end, the
// last counter the publisher sent while this receiver was there; end below
// the highest received (e.g. unknown, 0) means the highest received, so
// only the tail after the last arrival goes uncounted.
func (l *LossTracker) Result(end uint32) LossResult {
	if !l.started {
		return LossResult{}
	}
	end = max(end, l.highest)
	exp := uint64(end-l.first) + 1
	return LossResult{Expected: exp, Received: l.received, Lost: exp - l.received,
		Duplicates: l.duplicates, Reordered: l.reordered, Late: l.late}
}

// Add sums r into t.
func (t *LossResult) Add(r LossResult) {
	t.Expected += r.Expected
	t.Received += r.Received
	t.Lost += r.Lost
	t.Duplicates += r.Duplicates
	t.Reordered += r.Reordered
	t.Late += r.Late
}

// Percent is the lost share of expected packets.
func (t LossResult) Percent() float64 {
	if t.Expected == 0 {
		return 0
	}
	return 100 * float64(t.Lost) / float64(t.Expected)
}

// Jitter is RFC 3550's interarrival jitter (section 6.4.1), computed from
// the exact send stamps instead of RTP timestamps: the smoothed variation
// of one-way transit time between consecutive packets.
type Jitter struct {
	have bool
	last time.Duration
	j    float64 // ns
}

// Add records one packet's transit time (arrival minus send stamp).
func (j *Jitter) Add(transit time.Duration) {
	if j.have {
		d := math.Abs(float64(transit - j.last))
		j.j += (d - j.j) / 16
	}
	j.have, j.last = true, transit
}

// Value is the current jitter.
func (j *Jitter) Value() time.Duration { return time.Duration(j.j) }

// frameSlots is how many video frames can be in assembly at once; a frame
// that has not completed by the time 16 newer ones started never will.
const frameSlots = 16

type frameSlot struct {
	ts        uint32
	got, want uint8
	used      bool
	done      bool
	age       uint64
}

// frameAssembler tells when every packet of a video frame has arrived,
// from the stamps' index and count, without decoding anything.
type frameAssembler struct {
	slots [frameSlots]frameSlot
	clock uint64
}

// Add records a packet (never a duplicate) of the frame with RTP
// timestamp ts and reports whether it completed that frame.
func (f *frameAssembler) Add(ts uint32, count uint8) bool {
	f.clock++
	var s *frameSlot
	for i := range f.slots {
		if f.slots[i].used && f.slots[i].ts == ts {
			s = &f.slots[i]
			break
		}
	}
	if s == nil {
		s = &f.slots[0]
		for i := range f.slots {
			if !f.slots[i].used {
				s = &f.slots[i]
				break
			}
			if f.slots[i].age < s.age {
				s = &f.slots[i]
			}
		}
		*s = frameSlot{ts: ts, want: count, used: true, age: f.clock}
	}
	if s.done {
		return false
	}
	s.got++
	if s.got >= s.want {
		s.done = true
		return true
	}
	return false
}

// FreezeThreshold is the gap between complete video frames that a viewer
// sees as a frozen picture.
const FreezeThreshold = 200 * time.Millisecond

// FreezeDetector counts gaps between complete frames longer than the
// threshold. It starts at the first complete frame, so joining is not a
// freeze (join time is reported on its own).
type FreezeDetector struct {
	Threshold time.Duration
	last      time.Time
	Count     int
	Total     time.Duration // sum of the frozen gaps
	Longest   time.Duration
}

func (f *FreezeDetector) gap(now time.Time) {
	if f.last.IsZero() {
		return
	}
	th := f.Threshold
	if th == 0 {
		th = FreezeThreshold
	}
	if g := now.Sub(f.last); g > th {
		f.Count++
		f.Total += g
		f.Longest = max(f.Longest, g)
	}
}

// Frame records a frame completed at now.
func (f *FreezeDetector) Frame(now time.Time) {
	f.gap(now)
	if now.After(f.last) {
		f.last = now
	}
}

// Finish closes the stream at end: a picture frozen since its last frame
// counts too.
func (f *FreezeDetector) Finish(end time.Time) {
	f.gap(end)
	f.last = time.Time{}
}
