package sfu

import "time"

// Retransmission budget per down-track: a subscriber cannot make the
// server send more than nackRate packets a second (after a burst), nor the
// same packet twice within nackRepeat. This bounds what a hostile NACK
// stream can amplify to, unlike a responder that answers every request.
const (
	nackRate   = 300.0
	nackBurst  = 150.0
	nackRepeat = 100 * time.Millisecond
)

// nackLimiter is a token bucket plus a memory of recently resent sequence
// numbers. It is used by one goroutine only.
type nackLimiter struct {
	tokens float64
	last   time.Time
	resent [256]struct {
		seq uint16
		at  time.Time
	}
}

func (l *nackLimiter) allow(seq uint16, now time.Time) bool {
	if l.last.IsZero() {
		l.tokens = nackBurst
	} else {
		l.tokens = min(nackBurst, l.tokens+now.Sub(l.last).Seconds()*nackRate)
	}
	l.last = now
	r := &l.resent[seq&0xff]
	if r.seq == seq && !r.at.IsZero() && now.Sub(r.at) < nackRepeat {
		return false
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	r.seq, r.at = seq, now
	return true
}
