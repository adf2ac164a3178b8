package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"consult/protocol"
)

// Resume load (-resume-every): now and then a subscriber's signaling
// socket drops, as a phone changing networks drops it, and the client
// takes its session back on a new one (client.Config.Resume). The run
// records how long that took (drop → resumed) and, from the resume, how
// long until the subscriber's next media packet: the media should never
// have stopped, since only the socket went.

// lastPacket is when a receiver last read a packet (Unix ns); the read
// loop stores it.
type lastPacket struct{ ns atomic.Int64 }

func (l *lastPacket) mark(t time.Time)       { l.ns.Store(t.UnixNano()) }
func (l *lastPacket) after(t time.Time) bool { return l.ns.Load() > t.UnixNano() }

// resumeOne drops one receiving subscriber's socket and waits for it to
// resume and for its next media packet.
func (r *run) resumeOne(ctx context.Context) {
	r.mu.Lock()
	var victim *subscriber
	if n := len(r.subs); n > 0 {
		s := r.subs[rand.IntN(n)]
		select {
		case <-s.rcv.media:
			victim = s
		default:
		}
	}
	r.mu.Unlock()
	if victim == nil {
		return
	}
	start := time.Now()
	victim.cl.DropSocket()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e, err := victim.cl.Await(wait, protocol.TypeResumed, protocol.ErrResumeExpired)
	if err != nil || e.Type != protocol.TypeResumed {
		r.mu.Lock()
		r.resumeFailed++
		r.mu.Unlock()
		return
	}
	resumed := time.Now()
	deadline := resumed.Add(5 * time.Second)
	for !victim.rcv.last.after(resumed) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond) // polling the read loop's mark
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resumeTime.Record(resumed.Sub(start))
	if victim.rcv.last.after(resumed) {
		r.resumeMedia.Record(time.Duration(victim.rcv.last.ns.Load() - resumed.UnixNano()))
	} else {
		r.resumeFailed++
	}
}

// resumes runs resumeOne every ResumeEvery until stop closes.
func (r *run) resumes(ctx context.Context, stop <-chan struct{}) {
	if r.cfg.ResumeEvery <= 0 {
		return
	}
	tick := time.NewTicker(r.cfg.ResumeEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			r.resumeOne(ctx)
		}
	}
}
