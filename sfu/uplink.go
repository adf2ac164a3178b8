package sfu

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// What reaches the server of each published stream: the publisher →
// server half of a member's link, which no receiver report tells the
// server about (those come from subscribers, about the server's streams).
// The up-track's reader counts the packets it expected, from their
// sequence numbers, and those it received, RFC 3550 A.1 style, and keeps
// the interarrival jitter of A.8. It takes no lock and allocates nothing:
// the counts are atomics that a reader of the link's quality subtracts
// from what it read the time before.
//
// A retransmission the server asked for (a NACK) that comes while its
// number is within uplinkWindow of the newest counts as received: the
// packet did reach the server, late. Audio is not repaired, so its loss
// is the link's as it is.

const (
	// uplinkWindow is how far behind the newest packet one still counts
	// as a late arrival (and a duplicate is told from it): about 2 s of
	// video, longer than a retransmission takes on any usable link.
	uplinkWindow = 256
	// maxDropout is the largest forward jump taken as packets lost; a
	// larger one, or one back beyond the window, is a stream restarted
	// with new numbers if the next packet follows it, else a stray
	// (RFC 3550 A.1).
	maxDropout = 3000
	// minUplinkSample is how many packets an interval must expect before
	// its loss means anything: 1 lost in 3 is not a 33 % link. A quieter
	// stream is measured over several intervals.
	minUplinkSample = 10
)

// uplinkMeter counts one up-track's packets.
type uplinkMeter struct {
	// Owned by the up-track's reader goroutine.
	started  bool
	high     uint16                    // the newest sequence number
	seen     [uplinkWindow / 64]uint64 // bit seq%uplinkWindow: seq arrived (within the window behind high)
	badSeq   uint16                    // after a jump: the number that would confirm it
	jumped   bool
	t0       time.Time // the first packet's arrival: the base of arrival times
	lastArr  int64     // the last in-order packet's arrival, in RTP clock units since t0
	lastTS   uint32
	haveLast bool
	jitter   float64 // RFC 3550 J, in RTP clock units

	expected, received atomic.Uint64 // since the first packet
	jitterUS           atomic.Uint64 // jitter in microseconds
	// loss is the last interval's loss (float64 bits), which subscribers
	// of the stream subtract from what their receiver reports say (see
	// Participant.Quality).
	loss atomic.Uint64

	mu                sync.Mutex // serialises read
	prevExp, prevRecv uint64
}

// observe counts one packet just read (at least a 12-byte RTP header);
// clock is the stream's RTP clock rate (0: no jitter).
func (m *uplinkMeter) observe(pkt []byte, clock uint32) { m.observeAt(pkt, time.Now(), clock) }

func (m *uplinkMeter) observeAt(pkt []byte, now time.Time, clock uint32) {
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
	if !m.started {
		m.restart(seq, now)
		m.arrive(now, ts, clock)
		return
	}
	d := seq - m.high
	switch {
	case d == 0:
		return // the newest again: a duplicate
	case d < maxDropout:
		// In order, after d-1 lost (so far). The slots the head moves
		// over held packets now out of the window.
		for i := uint16(1); i <= d && i <= uplinkWindow; i++ {
			m.setSeen(m.high+i, false)
		}
		m.setSeen(seq, true)
		m.high, m.jumped = seq, false
		m.expected.Add(uint64(d))
		m.received.Add(1)
		m.arrive(now, ts, clock)
	case -d < uplinkWindow:
		// Late: reordered, or a retransmission. Jitter is the in-order
		// stream's: a repair is late by design.
		if !m.isSeen(seq) {
			m.setSeen(seq, true)
			m.received.Add(1)
		}
	case m.jumped && seq == m.badSeq:
		// Two packets in a row far from the old numbers: the stream
		// starts again from here.
		m.restart(seq, now)
		m.arrive(now, ts, clock)
	default:
		m.badSeq, m.jumped = seq+1, true
	}
}

// restart takes seq as the first packet of the stream.
func (m *uplinkMeter) restart(seq uint16, now time.Time) {
	m.seen = [uplinkWindow / 64]uint64{}
	m.setSeen(seq, true)
	m.started, m.high, m.jumped, m.haveLast = true, seq, false, false
	if m.t0.IsZero() {
		m.t0 = now
	}
	m.expected.Add(1)
	m.received.Add(1)
}

func (m *uplinkMeter) setSeen(seq uint16, on bool) {
	i := seq % uplinkWindow
	if on {
		m.seen[i/64] |= 1 << (i % 64)
	} else {
		m.seen[i/64] &^= 1 << (i % 64)
	}
}

func (m *uplinkMeter) isSeen(seq uint16) bool {
	i := seq % uplinkWindow
	return m.seen[i/64]&(1<<(i%64)) != 0
}

// arrive updates the interarrival jitter with an in-order packet:
// J += (|D| - J)/16, D the difference of two packets' transit times,
// in RTP clock units (RFC 3550 A.8).
func (m *uplinkMeter) arrive(now time.Time, ts, clock uint32) {
	if clock == 0 {
		return
	}
	arr := int64(now.Sub(m.t0)/time.Microsecond) * int64(clock) / 1e6
	if m.haveLast {
		d := arr - m.lastArr - int64(int32(ts-m.lastTS))
		if d < 0 {
			d = -d
		}
		m.jitter += (float64(d) - m.jitter) / 16
		m.jitterUS.Store(uint64(m.jitter * 1e6 / float64(clock)))
	}
	m.lastArr, m.lastTS, m.haveLast = arr, ts, true
}

// read returns the fraction of the packets expected since the last read
// that did not arrive, and the jitter now; ok is false when too few were
// expected to tell (they count towards the next read).
func (m *uplinkMeter) read() (loss, jitterMS float64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	recv, exp := m.received.Load(), m.expected.Load()
	de, dr := exp-m.prevExp, recv-m.prevRecv
	if de < minUplinkSample {
		return 0, 0, false
	}
	m.prevExp, m.prevRecv = exp, recv
	if dr < de { // more, when repairs of the interval before came in this one
		loss = float64(de-dr) / float64(de)
	}
	m.loss.Store(math.Float64bits(loss))
	return loss, float64(m.jitterUS.Load()) / 1000, true
}

// lastLoss is the loss of the last interval read.
func (m *uplinkMeter) lastLoss() float64 { return math.Float64frombits(m.loss.Load()) }

// lastJitterMS is the stream's jitter as the server receives it.
func (m *uplinkMeter) lastJitterMS() float64 { return float64(m.jitterUS.Load()) / 1000 }
