package signaling

import (
	"strings"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// P2PConfig configures the 1:1 direct path. A room whose live members are
// exactly two clients that announced p2p support first tries a direct
// connection (host and server-reflexive candidates only; the server relays
// SDP and candidates). If it is not connected within Deadline, fails, or
// ends up relayed, or a third member goes live, the room moves to the SFU.
// Each switch is make-before-break: the clients keep the old path until
// the new one delivers the peer's media.
type P2PConfig struct {
	Disabled bool          // never try direct connections
	Deadline time.Duration // for a direct attempt (5 s)
	// NoReturn keeps a room on the SFU once a third member has come and
	// gone, instead of trying the direct path again.
	NoReturn bool
	// HandoverTimeout bounds how long a running call keeps its old path
	// while the pair waits for each other's video on the new one (4 s; see
	// handover.go).
	HandoverTimeout time.Duration
}

// P2PStats counts direct attempts and path switches (GET /api/stats).
type P2PStats struct {
	Attempts  int            `json:"p2pAttempts"`
	Successes map[string]int `json:"p2pSuccesses"` // by "local/remote" candidate types
	Fallbacks int            `json:"fallbacks"`    // the sum of FallbackReasons
	// FallbackReasons counts fallbacks by why: "deadline" (no direct
	// connection in time), "failed" (a client's ICE failed), "relayed"
	// (only a relay connected them: the SFU is as good), "lost" (a
	// running direct path broke).
	FallbackReasons map[string]int `json:"fallbackReasons"`
	FallbackMS      int64          `json:"fallbackMsTotal"` // attempt start to fallback decision
	Switches        int            `json:"switches"`
	SwitchGapMax    int            `json:"switchGapMsMax"`
	SwitchGapSum    int64          `json:"switchGapMsTotal"`
	// HandoverTimeouts counts path changes whose old path was retired by
	// the timeout rather than by both members receiving on the new one.
	HandoverTimeouts int `json:"handoverTimeouts"`
}

type attempt struct {
	a, b      *member // a offers
	started   time.Time
	timer     *time.Timer
	connected map[*member]bool
	returning bool // back from the SFU (sessions stay up until the hand-over)
}

func liveKey(live []*member) string {
	ids := make([]string, len(live))
	for i, m := range live {
		ids[i] = m.id
	}
	return strings.Join(ids, ",")
}

// eligible says whether the room's live set may use the direct path.
func (s *Server) eligible(r *room, live []*member) bool {
	if s.cfg.P2P.Disabled || r.forceSFU || len(live) > 2 || r.failedPair == liveKey(live) && len(live) == 2 {
		return false
	}
	for _, m := range live {
		// Only the SFU can hold a member to its grants: a member who may not
		// publish (or receive) never takes the direct path.
		// Nor does one a host muted: the server holds its media.
		if !m.p2p || !m.grants.Publish || !m.grants.Subscribe || len(m.held) > 0 {
			return false
		}
	}
	return true
}

// reconcile locks and reconciles one room.
func (s *Server) reconcile(room string) []func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[room]; r != nil {
		return s.reconcileLocked(r)
	}
	return nil
}

// reconcileLocked moves a room to the media path its live set calls for
// after any change (join, accept, hang-up, leave, policy, an attempt's
// outcome). It sends the mode messages and returns the SFU work to do
// after unlocking. Called with s.mu held.
func (s *Server) reconcileLocked(r *room) []func() {
	s.codecLocked(r)
	live := r.live()
	if !s.eligible(r, live) {
		return s.toSFULocked(r, live, "")
	}
	if len(live) < 2 {
		// Alone (or nobody): wait for a peer; open no SFU session. One
		// left from a direct call or attempt is told too, to close it.
		hadPeer := r.attempt != nil || r.pair != [2]*member{}
		s.abortLocked(r)
		r.pair = [2]*member{}
		if r.mode != protocol.ModeP2P || hadPeer {
			r.mode = protocol.ModeP2P
			for _, m := range live {
				m.send(protocol.TypeMode, protocol.Mode{Mode: protocol.ModeP2P})
			}
		}
		return nil
	}
	a, b := live[0], live[1]
	if r.pair == [2]*member{a, b} || r.attempt != nil && r.attempt.a == a && r.attempt.b == b {
		return nil // already direct, or trying
	}
	if r.mode == protocol.ModeSFU && s.cfg.P2P.NoReturn {
		return s.toSFULocked(r, live, "")
	}
	s.abortLocked(r)
	r.pair = [2]*member{}
	a.pathReady, b.pathReady = "", ""
	at := &attempt{a: a, b: b, started: time.Now(), connected: map[*member]bool{}, returning: r.mode == protocol.ModeSFU}
	at.timer = time.AfterFunc(s.cfg.P2P.Deadline, func() {
		s.mu.Lock()
		var after []func()
		if r.attempt == at {
			after = s.fallbackLocked(r, "deadline", "no direct connection within the deadline")
		}
		s.mu.Unlock()
		run(after)
	})
	r.attempt = at
	if !at.returning {
		r.mode = protocol.ModeP2P
	}
	s.stats.Attempts++
	a.send(protocol.TypeMode, protocol.Mode{Mode: protocol.ModeP2P, State: protocol.ModeTrying, Peer: b.id,
		Offerer: true, ICEServers: s.stunServers(a)})
	b.send(protocol.TypeMode, protocol.Mode{Mode: protocol.ModeP2P, State: protocol.ModeTrying, Peer: a.id,
		ICEServers: s.stunServers(b)})
	r.log().Info("trying a direct connection", zap.String("a", a.id), zap.String("b", b.id), zap.Bool("fromSFU", at.returning))
	// Sessions that are not running stay closed: the direct path starts
	// with no media through the server at all.
	return nil
}

// toSFULocked puts the room on the SFU: every live member gets a session.
// A pair that was on the direct path hands over to it (handover.go).
func (s *Server) toSFULocked(r *room, live []*member, reason string) []func() {
	s.abortLocked(r)
	pair := r.pair
	r.pair = [2]*member{}
	announced := r.mode != protocol.ModeSFU
	if announced {
		r.mode = protocol.ModeSFU
		s.pathChangedLocked(r, protocol.ModeSFU, reason)
		for _, m := range live {
			m.send(protocol.TypeMode, protocol.Mode{Mode: protocol.ModeSFU})
		}
		if reason != "" {
			r.log().Info("room moved to the SFU", zap.String("reason", reason))
		}
	}
	var after []func()
	if pair[0] != nil && pair[0].live && pair[1].live && r.find(pair[0].id) == pair[0] && r.find(pair[1].id) == pair[1] {
		pair[0].pathReady, pair[1].pathReady = "", ""
		after = s.startHandoverLocked(r, protocol.ModeSFU, pair)
	}
	for _, m := range live {
		if m.peer == nil && !m.starting {
			if !announced {
				// A member just gone live (an accepted call) may have
				// seen another mode while it waited.
				m.send(protocol.TypeMode, protocol.Mode{Mode: protocol.ModeSFU})
			}
			after = append(after, s.startMediaLocked(m))
		}
	}
	return after
}

// abortLocked stops a direct attempt and a handover in progress.
func (s *Server) abortLocked(r *room) {
	if r.attempt != nil {
		r.attempt.timer.Stop()
		r.attempt = nil
	}
	s.stopHandoverLocked(r)
}

// fallbackLocked ends a failed attempt: the room goes (or stays) on the
// SFU, and this pair does not try again until the live set changes.
func (s *Server) fallbackLocked(r *room, class, reason string) []func() {
	at := r.attempt
	live := r.live()
	r.failedPair = liveKey(live)
	if at != nil {
		s.stats.FallbackReasons[class]++
		s.stats.FallbackMS += time.Since(at.started).Milliseconds()
	}
	r.mode = "" // make toSFU announce the mode even when returning failed
	r.log().Info("direct connection failed; using the SFU", zap.String("reason", reason))
	return s.toSFULocked(r, live, reason)
}

// p2pState takes a client's report on the direct attempt.
func (s *Server) p2pState(m *member, st *protocol.P2PState) {
	s.mu.Lock()
	r := m.room
	var after []func()
	at := r.attempt
	switch {
	case at != nil && (m == at.a || m == at.b):
		if st.State != "connected" || st.Local == "relay" || st.Remote == "relay" {
			class := "relayed"
			if st.State != "connected" {
				class = "failed"
			}
			after = s.fallbackLocked(r, class, "client reported "+st.State+" "+st.Local+"/"+st.Remote)
			break
		}
		at.connected[m] = true
		if len(at.connected) < 2 {
			break
		}
		at.timer.Stop()
		r.attempt = nil
		r.pair = [2]*member{at.a, at.b}
		r.mode = protocol.ModeP2P
		s.pathChangedLocked(r, protocol.ModeP2P, "direct connection up")
		s.stats.Successes[candidateType(st.Local)+"/"+candidateType(st.Remote)]++
		r.log().Info("direct connection up", zap.String("local", st.Local), zap.String("remote", st.Remote),
			zap.Duration("took", time.Since(at.started)), zap.Bool("fromSFU", at.returning))
		if at.returning {
			// The SFU carries the call until both see each other directly.
			after = s.startHandoverLocked(r, protocol.ModeP2P, r.pair)
			break
		}
		for _, x := range r.pair {
			x.send(protocol.TypeMode, protocol.Mode{Mode: protocol.ModeP2P, State: protocol.ModeActive, Peer: other(r.pair, x).id})
			after = append(after, closeLater(s.dropMediaLocked(x)))
		}
	case st.State == "failed" && (r.pair[0] == m || r.pair[1] == m):
		// An established direct path broke mid-call.
		after = s.fallbackLocked(r, "lost", "direct connection lost")
	}
	s.mu.Unlock()
	run(after)
}

func other(pair [2]*member, m *member) *member {
	if pair[0] == m {
		return pair[1]
	}
	return pair[0]
}

// relay forwards a direct negotiation message to the peer of an attempt or
// an active direct call, and to no one else.
func (s *Server) relay(m *member, ref, target, typ string, body any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := m.room
	var peer *member
	if at := r.attempt; at != nil {
		if m == at.a && target == at.b.id {
			peer = at.b
		} else if m == at.b && target == at.a.id {
			peer = at.a
		}
	}
	if (r.pair[0] == m || r.pair[1] == m) && other(r.pair, m).id == target {
		peer = other(r.pair, m)
	}
	switch {
	case peer != nil:
		peer.send(typ, body)
	case r.find(target) != nil:
		// The attempt or call just ended (fallback, a third member, a
		// hang-up): this message was already on its way. Not an error the
		// client can act on; the mode message tells it what to do.
		m.log.Debug("stale direct message dropped", zap.String("type", typ), zap.String("target", target))
	default:
		m.replyError(ref, protocol.ErrInvalidState, "no direct connection with that participant")
	}
}

func (s *Server) pathSwitch(m *member, ps *protocol.PathSwitch) {
	s.mu.Lock()
	s.stats.Switches++
	s.stats.SwitchGapSum += int64(ps.GapMS)
	s.stats.SwitchGapMax = max(s.stats.SwitchGapMax, ps.GapMS)
	s.counts.observeGapLocked(ps.GapMS)
	s.mu.Unlock()
	m.log.Info("media path switched", zap.String("from", ps.From), zap.String("to", ps.To), zap.Int("gapMs", ps.GapMS))
}

// stunServers are the ICE servers of a direct attempt: STUN only, since a
// relayed direct path is no better than the SFU.
func (s *Server) stunServers(m *member) []protocol.ICEServer {
	var out []protocol.ICEServer
	for _, is := range s.cfg.ICEServers(m.identity, m.host) {
		var urls []string
		for _, u := range is.URLs {
			if strings.HasPrefix(u, "stun:") || strings.HasPrefix(u, "stuns:") {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			out = append(out, protocol.ICEServer{URLs: urls})
		}
	}
	return out
}

// endRoomLocked stops a room's timers before it is dropped, and returns
// the work that tells the observer (its recordings stop with it).
func (s *Server) endRoomLocked(r *room) []func() {
	s.abortLocked(r)
	s.roomFinishedLocked(r)
	s.clusterRoomEndedLocked(r.name)
	if o := s.cfg.Observer; o != nil {
		return []func(){func() { o.RoomEnded(r.name) }}
	}
	return nil
}

func (r *room) log() *zap.Logger {
	if len(r.members) > 0 {
		return r.members[0].log
	}
	return zap.NewNop()
}

// Stats returns the direct-path counters.
func (s *Server) Stats() P2PStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Successes, st.FallbackReasons = map[string]int{}, map[string]int{}
	for k, v := range s.stats.Successes {
		st.Successes[k] = v
	}
	for k, v := range s.stats.FallbackReasons {
		st.FallbackReasons[k] = v
		st.Fallbacks += v
	}
	return st
}
