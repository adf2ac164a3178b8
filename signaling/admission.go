package signaling

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"consult/protocol"
)

// Admission control keeps a server that is full, or flooded, good for the
// consults it already runs: past a limit a new join (or an admission to a
// call) gets server-busy with a time to retry after, and nothing else
// changes. The limits are on live members server-wide (each has media
// state in the SFU), on members waiting per room, on joins per second
// from one source address (so one client cannot open a thousand sessions
// in a second), and on load (a guard the operator supplies, such as the
// machine's load average). Resumed sessions are not new joins: they keep
// their place. Zero values turn a limit off; the server's flags set
// defaults that protect a small server.
type AdmissionConfig struct {
	MaxLive    int     // live members on the whole server
	MaxWaiting int     // waiting members in one room
	JoinRate   float64 // joins per second from one address
	JoinBurst  int     // joins at once from one address (default: 4 s of JoinRate, at least 5)
	// Overloaded, when set, is asked before each join; true refuses it.
	Overloaded func() bool
	// RetryAfter is what refused clients are told (default 10 s).
	RetryAfter time.Duration
}

// maxAddrs bounds the per-address limiters kept; idle ones go first.
const maxAddrs = 4096

type admission struct {
	cfg   AdmissionConfig
	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

func newAdmission(cfg AdmissionConfig) *admission {
	if cfg.JoinBurst <= 0 {
		cfg.JoinBurst = max(5, int(4*cfg.JoinRate))
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 10 * time.Second
	}
	return &admission{cfg: cfg, addrs: map[string]*rate.Limiter{}}
}

// busy is the error a refused client gets.
type busy struct {
	reason     string
	retryAfter time.Duration
}

func (a *admission) refuse(reason string) *busy {
	return &busy{reason: reason, retryAfter: a.cfg.RetryAfter}
}

// tell sends the refusal to a member, on its socket if it has one now.
func (b *busy) tell(m *member, ref string) {
	if c := m.sock.Load(); c != nil {
		b.send(c, ref)
	}
}

func (b *busy) send(c *conn, ref string) {
	c.s.counts.countError(protocol.ErrServerBusy)
	c.sendMsg(protocol.TypeError, protocol.Error{Code: protocol.ErrServerBusy, Ref: ref,
		Message:      "the server is busy: " + b.reason + "; please try again shortly",
		RetryAfterMS: int(b.retryAfter.Milliseconds())})
}

// arrive is checked first on every join, before any work: the address's
// join rate and the load guard.
func (a *admission) arrive(addr string) *busy {
	if a.cfg.JoinRate > 0 {
		a.mu.Lock()
		lim := a.addrs[addr]
		if lim == nil {
			if len(a.addrs) >= maxAddrs {
				a.evictLocked()
			}
			lim = rate.NewLimiter(rate.Limit(a.cfg.JoinRate), a.cfg.JoinBurst)
			a.addrs[addr] = lim
		}
		ok := lim.Allow()
		a.mu.Unlock()
		if !ok {
			return a.refuse("too many joins from your address")
		}
	}
	if a.cfg.Overloaded != nil && a.cfg.Overloaded() {
		return a.refuse("it is under heavy load")
	}
	return nil
}

// evictLocked drops the limiters of addresses that have been idle long
// enough to be full again (forgetting them changes nothing), and if all
// are busy, half of them.
func (a *admission) evictLocked() {
	now := time.Now()
	for k, l := range a.addrs {
		if l.TokensAt(now) >= float64(a.cfg.JoinBurst) {
			delete(a.addrs, k)
		}
	}
	for k := range a.addrs {
		if len(a.addrs) < maxAddrs/2 {
			break
		}
		delete(a.addrs, k)
	}
}

// seatLocked is checked when a member would take a live seat (join,
// admit, accept) or a waiting place: the server-wide live limit and the
// room's waiting limit. Called with Server.mu held.
func (s *Server) seatLocked(r *room, live bool) *busy {
	if s.admission == nil {
		return nil
	}
	a := s.admission
	if live && a.cfg.MaxLive > 0 {
		n := 0
		for _, x := range s.rooms {
			n += x.liveCount()
		}
		if n >= a.cfg.MaxLive {
			return a.refuse(fmt.Sprintf("it holds its limit of %d people in calls", a.cfg.MaxLive))
		}
	}
	if !live && a.cfg.MaxWaiting > 0 && len(r.members)-r.liveCount() >= a.cfg.MaxWaiting {
		return a.refuse(fmt.Sprintf("this room's waiting room is full (%d)", a.cfg.MaxWaiting))
	}
	return nil
}
