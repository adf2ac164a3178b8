package nackgen

import (
	"sync"
	"time"
)

// stream is what the generator knows of one incoming RTP stream: the
// highest sequence number so far, the packets missing below it, and two
// measurements that time the NACKs, the interarrival jitter (RFC 3550,
// from the RTP timestamps) and the round trip from a NACK to its answer.
// Times are durations since the generator's base. add runs on the
// stream's read goroutine, due on the generator's loop.
type stream struct {
	ssrc uint32
	rate float64   // RTP clock rate, Hz
	base time.Time // the generator's, set before the stream is shared

	mu      sync.Mutex
	started bool
	top     uint16        // highest sequence number received
	topTS   uint32        // its RTP timestamp
	topAt   time.Duration // when it arrived
	jitter  float64       // seconds
	rtt     time.Duration // smoothed first NACK → retransmission time; 0: no sample yet
	pending []missing     // oldest first
	dropped int           // given up in add (a blackout), not yet counted
}

type missing struct {
	seq                uint16
	since, first, last time.Duration // when the gap was seen; first and last asked for
	tries              uint8
}

// blackoutGap: a gap spanning more than maxAge of RTP time is a blackout
// only if it is also longer than this many packets. A slow source (a
// still screen share sends a frame a second or less) loses a packet or
// two across a long span, and those are recent and worth asking for.
const blackoutGap = 32

func newStream(ssrc, clockRate uint32) *stream {
	return &stream{ssrc: ssrc, rate: float64(clockRate), pending: make([]missing, 0, maxPending)}
}

// add records the arrival of packet seq with RTP timestamp ts at now.
func (s *stream) add(seq uint16, ts uint32, now time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started, s.top, s.topTS, s.topAt = true, seq, ts, now
		return
	}
	d := seq - s.top
	switch {
	case d == 0:
		return
	case d < 0x8000: // newer than anything so far
		gap := int(d) - 1
		// The RTP time since the last packet: a long gap over a long time
		// is a blackout, whose packets are all too old to be worth asking
		// for, and so is every packet still missing from before it.
		media := float64(int32(ts-s.topTS)) / s.rate
		if gap >= maxPending || (media > maxAge.Seconds() && gap > blackoutGap) {
			s.dropped += len(s.pending)
			s.pending = s.pending[:0]
		} else if gap > 0 {
			if over := len(s.pending) + gap - maxPending; over > 0 {
				s.dropped += over
				s.pending = append(s.pending[:0], s.pending[over:]...)
			}
			for i := 1; i <= gap; i++ {
				s.pending = append(s.pending, missing{seq: s.top + uint16(i), since: now})
			}
		}
		// Jitter (RFC 3550 §6.4.1) from in-order packets only, from
		// differences so that a timestamp wrap is no jump: a
		// retransmission's lateness is the round trip, not the network's
		// jitter.
		if gap <= blackoutGap {
			dt := (now - s.topAt).Seconds() - media
			if dt < 0 {
				dt = -dt
			}
			s.jitter += (dt - s.jitter) / 16
		}
		s.top, s.topTS, s.topAt = seq, ts, now
	default: // older: a retransmission, or a packet reordered on the way
		for i := range s.pending {
			m := &s.pending[i]
			if m.seq != seq {
				continue
			}
			// Timed from the first NACK: an answer to a later one would
			// give too short a sample, and the estimate would shrink
			// until every retry came before any answer could.
			if m.tries > 0 {
				sample := now - m.first
				if s.rtt == 0 {
					s.rtt = sample
				} else {
					s.rtt += (sample - s.rtt) / 8
				}
			}
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return
		}
		// Far older than anything missing: the sender started a new
		// sequence (a restarted encoder on the same SSRC). Follow it.
		if s.top-seq > 2*maxPending {
			s.dropped += len(s.pending)
			s.pending = s.pending[:0]
			s.top, s.topTS, s.topAt = seq, ts, now
		}
	}
}

// due appends to seqs the packets to ask for at now, counts them as
// asked, and drops the ones given up (returned as a count).
func (s *stream) due(now time.Duration, seqs []uint16) ([]uint16, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jit := time.Duration(s.jitter * float64(time.Second))
	wait := clamp(2*jit, minWait, maxWait)
	rtt := s.rtt
	if rtt == 0 {
		rtt = defaultRTT
	}
	retry := clamp(rtt+rtt/4+2*jit, minRetry, maxRetry)
	kept, gaveUp := s.pending[:0], s.dropped
	s.dropped = 0
	for _, m := range s.pending {
		age := now - m.since
		switch {
		case age > maxAge || (m.tries >= maxTries && now-m.last >= retry):
			gaveUp++
			continue
		case m.tries == 0 && age >= wait, m.tries > 0 && m.tries < maxTries && now-m.last >= retry:
			if m.tries == 0 {
				m.first = now
			}
			m.tries++
			m.last = now
			seqs = append(seqs, m.seq)
		}
		kept = append(kept, m)
	}
	s.pending = kept
	return seqs, gaveUp
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(hi, d))
}
