package signaling

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// join admits c to a room. With auth on, the token says who the member is
// (identity, name, role, grants, direct entry, expiry); without, the
// client's word is taken. A guest that asks to be live waits unless it has
// direct entry (roles.go). A second join with the same identity replaces
// the first session, which is told so and closed; a guest a host had let
// in stays in.
func (s *Server) join(c *conn, ref string, j *protocol.Join) {
	if b := s.admission.arrive(c.addr); b != nil {
		b.send(c, ref)
		return
	}
	m := &member{id: newID(), name: j.Name, host: c.host, addr: c.addr, grants: AllGrants, role: validRole(j.Role), p2p: j.P2P, codecs: capsOf(j.Video),
		knows: map[*member]bool{}, held: map[string]bool{}, mediaDown: map[sfu.Role]bool{}}
	m.sock.Store(c)
	var expires time.Time
	if len(s.cfg.Secret) > 0 {
		claims, err := VerifyToken(s.cfg.Secret, j.Token, j.Room)
		if err != nil {
			c.sendError(ref, protocol.ErrUnauthorized, "join refused: "+err.Error())
			return
		}
		m.grants, m.identity, m.role, m.directEntry = claims.Grants, claims.Subject, claims.Role, claims.DirectEntry
		if claims.Name != "" {
			if n, err := protocol.CleanName(claims.Name); err == nil {
				m.name = n
			}
		}
		expires = claims.ExpiresAt.Time
	}
	if m.identity == "" {
		m.identity = m.id
	}
	var readmit bool // let in before this room moved to this node
	if s.cfg.Cluster != nil {
		if !s.routeJoin(c, ref, j.Room) {
			return
		}
		readmit = j.Live && !may(m, actGoLive) && s.wasAdmitted(j.Room, m.identity)
	}
	// A recording may wait for a room that starts now (asked before the
	// lock: the recorder calls back into this server).
	recording := s.cfg.Observer != nil && s.cfg.Observer.Recording(j.Room)

	s.mu.Lock()
	if c.member != nil {
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrAlreadyJoined, "this connection is already in a room")
		return
	}
	if s.refuseNewRoomLocked(j.Room) {
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrServerDraining, drainingMessage)
		return
	}
	r := s.rooms[j.Room]
	newRoom := r == nil
	if r == nil {
		capacity := s.cfg.Capacity
		p := s.policies[j.Room]
		if p.Capacity > 0 {
			capacity = p.Capacity
		}
		if j.Capacity > 0 && m.grants.Admin {
			capacity = j.Capacity
		}
		r = &room{srv: s, name: j.Room, capacity: capacity, calls: map[string]*call{}, directEntry: p.DirectEntry,
			recording: recording, forceSFU: p.SFUOnly || recording}
		s.rooms[j.Room] = r
	}
	old := r.byIdentity(m.identity)
	m.live = entersLive(m, j.Live, r) || old != nil && old.live && j.Live || readmit
	seats := r.capacity - r.liveCount()
	if old != nil && old.live {
		seats++ // the seat the replaced session frees
	}
	if m.live && seats <= 0 {
		if len(r.members) == 0 {
			delete(s.rooms, r.name)
		}
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrRoomFull, fmt.Sprintf("room is full (%d live)", r.capacity))
		return
	}
	// A session that replaces the same identity's takes its place (a
	// reload, another device): no new seat, unless it goes from waiting
	// to live.
	if b := s.seatLocked(r, m.live); b != nil && (old == nil || m.live && !old.live) {
		if len(r.members) == 0 {
			delete(s.rooms, r.name)
		}
		s.mu.Unlock()
		b.send(c, ref)
		return
	}
	var after []func()
	if old != nil {
		old.bye(protocol.GoodbyeReplaced, "you joined this consultation again from another device or tab")
		after = s.detachLocked(old, "replaced", true)
	}
	m.room = r
	m.joinedAt = time.Now()
	m.log = s.log.With(zap.String("room", r.name), zap.String("participant", m.id))
	if !m.live {
		m.waitingSince = time.Now()
	}
	others := r.visibleTo(m)
	r.members = append(r.members, m)
	c.member = m
	s.joinedLocked(m, newRoom)
	r.callMayStart()
	r.announce(m, false)
	if !expires.IsZero() {
		s.startSessionLocked(m, expires)
	}
	// Messages the room's new state causes for m wait until m has its
	// joined reply.
	var queued [][]byte
	m.queued = &queued
	after = append(after, s.reconcileLocked(r)...)
	m.queued = nil
	joined := protocol.Joined{Room: r.name, You: m.id, Name: m.name, Role: m.role, CanPublish: m.grants.Publish,
		Live: m.live, Recording: r.recording, Participants: others,
		ICEServers: s.cfg.ICEServers(m.identity, c.host), ResumeToken: s.resumeTokenLocked(m),
		ResumeGraceMS: s.cfg.ResumeGrace.Milliseconds(), Chat: r.chatSeenLocked(m), Simulcast: s.cfg.Simulcast}
	if m.live {
		joined.VideoCodec = r.videoCodec
	}
	if m.live || may(m, actSeeWait) {
		// The room's path and size say whether a call goes on: not a
		// waiting guest's business.
		joined.Mode, joined.Capacity = r.mode, r.capacity
	}
	if !expires.IsZero() {
		joined.ExpiresAt = expires.UnixMilli()
	}
	c.sendMsg(protocol.TypeJoined, joined)
	for _, b := range queued {
		c.send(b)
	}
	r.speakersTo(m)
	if m.live {
		s.consentArrivedLocked(r, m)
	}
	live := m.live
	s.mu.Unlock()
	// Identities and names are patient data: the log has ids and roles.
	m.log.Info("joined", zap.Bool("live", live), zap.Bool("askedLive", j.Live), zap.String("role", m.role), zap.Bool("p2p", m.p2p))
	run(after)
}

// removeMember takes c's member out of its room (leave).
func (s *Server) removeMember(c *conn) {
	s.mu.Lock()
	m := c.member
	if m == nil {
		s.mu.Unlock()
		return
	}
	after := s.removeLocked(m, "left")
	s.mu.Unlock()
	run(after)
}

// removeLocked takes m out of its room and drops the room if it is empty.
// It returns the work to run after unlocking. Called with s.mu held.
func (s *Server) removeLocked(m *member, why string) []func() {
	return s.detachLocked(m, why, false)
}

// detachLocked takes m out of its room: its calls end, its media session
// closes, its timers stop, those who knew it are told, and the room's path
// is reconciled. An empty room is dropped unless keep is set (a session
// that replaces m comes next). Called with s.mu held.
func (s *Server) detachLocked(m *member, why string, keep bool) []func() {
	r := m.room
	if r.find(m.id) != m {
		return nil
	}
	if m.live && why != "replaced" {
		s.clusterAdmittedLocked(m, false) // a guest that left the call waits next time
	}
	after := s.releaseLocked(m, why)
	if start := s.consentLeftLocked(m); start != nil {
		after = append(after, start)
	}
	r.remove(m)
	r.forget(m)
	after = append(after, s.reconcileLocked(r)...)
	if len(r.members) == 0 && !keep && s.rooms[r.name] == r {
		after = append(after, s.endRoomLocked(r)...)
		delete(s.rooms, r.name)
	}
	return after
}

// releaseLocked lets go of what m holds: its socket, resume token, timers,
// calls and media session. Called with s.mu held.
func (s *Server) releaseLocked(m *member, why string) []func() {
	m.leaving = true
	if c := m.sock.Load(); c != nil {
		c.member = nil
	}
	s.forgetResumeLocked(m)
	if m.grace != nil {
		m.grace.Stop()
		m.grace = nil
	}
	s.endSessionLocked(m)
	s.endCallsOf(m)
	wasLive := m.live
	peer := s.stopMediaLocked(m)
	s.memberEventLocked(EventParticipantLeft, m, map[string]any{"reason": why})
	return []func(){s.qualitySummaryLocked(m, wasLive, peer), closeLater(peer), func() { m.log.Info(why) }}
}

// present reports whether m is still a member of its room: a handler
// that read m before a removal or replacement must not act for it.
// Called with s.mu held.
func present(m *member) bool { return m.room.find(m.id) == m }
