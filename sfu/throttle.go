package sfu

import (
	"sync"
	"time"
)

// throttle lets at most one call of send through per interval. A call
// that arrives too early is not lost: one trailing call is made when the
// interval ends, because a subscriber waiting for a keyframe would
// otherwise wait for the publisher's next natural keyframe, which browsers
// send only on request.
type throttle struct {
	interval time.Duration
	send     func()

	mu      sync.Mutex
	last    time.Time
	pending *time.Timer
	stopped bool
	sent    uint64
}

// request asks for a send; it reports whether one happened at once.
func (t *throttle) request() bool {
	t.mu.Lock()
	if t.stopped || t.pending != nil {
		t.mu.Unlock()
		return false
	}
	now := time.Now()
	if wait := t.interval - now.Sub(t.last); wait > 0 {
		t.pending = time.AfterFunc(wait, t.fire)
		t.mu.Unlock()
		return false
	}
	t.last = now
	t.sent++
	t.mu.Unlock()
	t.send() // outside the lock: it writes to the network
	return true
}

func (t *throttle) fire() {
	t.mu.Lock()
	t.pending = nil
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.last = time.Now()
	t.sent++
	t.mu.Unlock()
	t.send()
}

func (t *throttle) count() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

func (t *throttle) stop() {
	t.mu.Lock()
	t.stopped = true
	if t.pending != nil {
		t.pending.Stop()
		t.pending = nil
	}
	t.mu.Unlock()
}
