package signaling

import (
	"sort"
	"sync"
	"sync/atomic"
)

// This file gives monitoring (the metrics package, GET /metrics) what the
// signaling layer knows: a census of rooms and members taken under the
// server's lock without touching the media server, and counters of
// messages, errors by code and path-switch gaps. Labels stay few: modes,
// roles, states and error codes are small fixed sets; no ids, no names.

// Census is the signaling state at one moment.
type Census struct {
	Sockets int
	// Rooms counts rooms by the media path of their call ("p2p", "sfu";
	// "" for a room without a call: fewer than two members live).
	Rooms map[string]int
	// Members counts members by role and state ("live", "waiting",
	// "reconnecting").
	Members map[MemberClass]int
	// Live counts the members in calls, reconnecting ones too (what a
	// cluster node reports as its load).
	Live int
}

// RoomCount is how many rooms there are.
func (c Census) RoomCount() int {
	n := 0
	for _, k := range c.Rooms {
		n += k
	}
	return n
}

// MemberClass is a role and a state.
type MemberClass struct{ Role, State string }

// Census counts rooms and members.
func (s *Server) Census() Census {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Census{Sockets: len(s.conns), Rooms: map[string]int{}, Members: map[MemberClass]int{}}
	for _, r := range s.rooms {
		mode := r.mode
		if r.liveCount() < 2 {
			mode = "" // no call: a room's mode is only where a call would go
		}
		c.Rooms[mode]++
		for _, m := range r.members {
			state := "waiting"
			switch {
			case m.away():
				state = "reconnecting"
			case m.live:
				state = "live"
			}
			c.Members[MemberClass{Role: m.role, State: state}]++
			if m.live {
				c.Live++
			}
		}
	}
	return c
}

// SwitchGapBounds are the upper bounds (ms) of the path-switch gap
// histogram's buckets: a switch under 100 ms goes unnoticed, one over a
// second is a visible freeze.
var SwitchGapBounds = []float64{25, 50, 100, 200, 400, 800, 1600, 3200}

// Counters are the signaling layer's running totals.
type Counters struct {
	MessagesIn uint64            // messages read from clients (dropped ones too)
	Errors     map[string]uint64 // error messages sent to clients, by code
	P2P        P2PStats
	// SwitchGaps holds, per bucket of SwitchGapBounds (and one more for
	// larger gaps), how many path switches had a gap in it, not
	// cumulative; SwitchGapSumMS is their sum.
	SwitchGaps     []uint64
	SwitchGapSumMS float64
}

// counters is kept by the server; messages are counted by each socket's
// reader, errors by whoever sends one (rarely), under their own lock.
type counters struct {
	messagesIn atomic.Uint64
	mu         sync.Mutex
	errors     map[string]uint64
	gaps       []uint64 // guarded by Server.mu, with stats
	gapSum     float64
}

func (c *counters) countError(code string) {
	c.mu.Lock()
	if c.errors == nil {
		c.errors = map[string]uint64{}
	}
	c.errors[code]++
	c.mu.Unlock()
}

// observeGapLocked adds a path switch's gap (a client's report, so
// clamped) to the histogram. Called with Server.mu held.
func (c *counters) observeGapLocked(ms int) {
	if c.gaps == nil {
		c.gaps = make([]uint64, len(SwitchGapBounds)+1)
	}
	v := float64(max(ms, 0))
	c.gapSum += v
	c.gaps[sort.SearchFloat64s(SwitchGapBounds, v)]++
}

// Counters returns the running totals.
func (s *Server) Counters() Counters {
	out := Counters{MessagesIn: s.counts.messagesIn.Load(), Errors: map[string]uint64{},
		SwitchGaps: make([]uint64, len(SwitchGapBounds)+1)}
	s.counts.mu.Lock()
	for k, v := range s.counts.errors {
		out.Errors[k] = v
	}
	s.counts.mu.Unlock()
	out.P2P = s.Stats()
	s.mu.Lock()
	copy(out.SwitchGaps, s.counts.gaps)
	out.SwitchGapSumMS = s.counts.gapSum
	s.mu.Unlock()
	return out
}

// candidateType keeps a client's reported ICE candidate type to the
// known ones, so a hostile client cannot grow the success counts' keys.
func candidateType(t string) string {
	switch t {
	case "host", "srflx", "prflx", "relay":
		return t
	}
	return "other"
}
