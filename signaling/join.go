package signaling

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// join admits c to a room. With auth on, the token says who the member is
// (identity, name, role, grants, direct entry, expiry); without, the
// client's word is taken. A guest that asks to be live waits unless it has
// direct entry (roles.go). A second join with the same identity replaces
// the first session, which is told so and closed.
func (s *Server) join(c *conn, ref string, j *protocol.Join) {
	m := &member{id: newID(), name: j.Name, conn: c, grants: AllGrants, role: validRole(j.Role), p2p: j.P2P,
		knows: map[*member]bool{}, held: map[string]bool{}}
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

	s.mu.Lock()
	if c.member != nil {
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrAlreadyJoined, "this connection is already in a room")
		return
	}
	r := s.rooms[j.Room]
	created := r == nil
	if created {
		capacity := s.cfg.Capacity
		if j.Capacity > 0 && m.grants.Admin {
			capacity = j.Capacity
		}
		p := s.policies[j.Room]
		r = &room{name: j.Room, capacity: capacity, calls: map[string]*call{}, forceSFU: p.SFUOnly, directEntry: p.DirectEntry}
	}
	var after []func()
	if old := r.byIdentity(m.identity); old != nil && !created {
		// Replacing frees the old seat before the new one is counted.
		old.conn.sendMsg(protocol.TypeGoodbye, protocol.Goodbye{Code: protocol.GoodbyeReplaced,
			Reason: "you joined this consultation again from another device or tab"})
		old.conn.closeAfterFlush()
		after = s.removeLocked(old, "replaced")
	}
	m.live = entersLive(m, j.Live, r)
	if m.live && r.liveCount() >= r.capacity {
		s.mu.Unlock()
		run(after)
		c.sendError(ref, protocol.ErrRoomFull, fmt.Sprintf("room is full (%d live)", r.capacity))
		return
	}
	if s.rooms[j.Room] != r {
		s.rooms[j.Room] = r
	}
	m.room = r
	m.log = s.log.With(zap.String("room", r.name), zap.String("participant", m.id))
	if !m.live {
		m.waitingSince = time.Now()
	}
	others := r.visibleTo(m)
	r.members = append(r.members, m)
	c.member = m
	if m.live && r.callStarted.IsZero() && r.liveCount() >= 2 {
		r.callStarted = time.Now()
	}
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
		Live: m.live, Mode: r.mode, Capacity: r.capacity, Recording: r.recording, Participants: others,
		ICEServers: s.cfg.ICEServers(m.identity, c.host)}
	if !expires.IsZero() {
		joined.ExpiresAt = expires.UnixMilli()
	}
	c.sendMsg(protocol.TypeJoined, joined)
	for _, b := range queued {
		c.send(b)
	}
	live := m.live
	s.mu.Unlock()
	// Identities and names are patient data: the log has ids and roles.
	m.log.Info("joined", zap.Bool("live", live), zap.Bool("askedLive", j.Live), zap.String("role", m.role), zap.Bool("p2p", m.p2p))
	run(after)
}

// removeMember takes c's member out of its room (leave or socket gone).
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

// removeLocked takes m out of its room: its calls end, its media session
// closes, those who knew it are told, the room's path is reconciled, and an
// empty room is dropped. It returns the work to run after unlocking.
// Called with s.mu held.
func (s *Server) removeLocked(m *member, why string) []func() {
	r := m.room
	if r.find(m.id) != m {
		return nil
	}
	m.conn.member = nil
	s.endSessionLocked(m)
	s.endCallsOf(m)
	peer := s.stopMediaLocked(m)
	r.remove(m)
	r.forget(m)
	after := []func(){closeLater(peer), func() { m.log.Info(why) }}
	after = append(after, s.reconcileLocked(r)...)
	if len(r.members) == 0 && s.rooms[r.name] == r {
		s.endRoomLocked(r)
		delete(s.rooms, r.name)
	}
	return after
}
