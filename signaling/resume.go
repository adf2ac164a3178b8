package signaling

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// A member outlives its socket and its media. Patients move between Wi-Fi
// and cellular, and hospital Wi-Fi drops for seconds: neither should cost
// a member its place, its calls or its media session. When the socket
// ends without a leave, or a transport of its media session goes silent,
// the member is away: the others see it as reconnecting, its tracks stay
// published, and messages for it are kept (up to maxBacklog). A new socket
// that presents its resume token within Config.ResumeGrace takes the member
// over: the server answers resumed, with a new token, and sends what was
// kept, in order. A transport that went silent is restarted (ICE restart:
// the server's own offer for the subscribing connection, a request to the
// client for the one it offers). If the member is still away when the
// grace period ends, it is removed as before.

// maxBacklog bounds the messages kept for an away member; one that misses
// more cannot resume (it would not be whole) and is removed at the end of
// the grace period.
const maxBacklog = 1024

// resumeTokenLocked issues m a fresh resume token, forgetting the last
// one: each token takes a session back once. Called with s.mu held.
func (s *Server) resumeTokenLocked(m *member) string {
	if s.cfg.ResumeGrace <= 0 {
		return ""
	}
	s.forgetResumeLocked(m)
	var b [16]byte
	_, _ = rand.Read(b[:])
	m.resumeToken = s.resumePrefix() + hex.EncodeToString(b[:])
	s.resumable[m.resumeToken] = m
	return m.resumeToken
}

// forgetResumeLocked makes m's token useless. Called with s.mu held.
func (s *Server) forgetResumeLocked(m *member) {
	if m.resumeToken != "" {
		delete(s.resumable, m.resumeToken)
		m.resumeToken = ""
	}
}

// keep holds a message for an away member. Called with s.mu held.
func (m *member) keep(b []byte) {
	if len(m.backlog) >= maxBacklog {
		m.backlogLost = true
		return
	}
	m.backlog = append(m.backlog, b)
}

// away reports whether m's socket or a transport of its media is down.
func (m *member) away() bool { return m.sock.Load() == nil || len(m.mediaDown) > 0 }

// socketLost handles c's end without a leave: its member is away, or
// removed when resuming is off or the server is stopping.
func (s *Server) socketLost(c *conn) {
	s.mu.Lock()
	m := c.member
	if m == nil {
		s.mu.Unlock()
		return
	}
	c.member = nil
	var after []func()
	if s.cfg.ResumeGrace <= 0 || s.closing {
		after = s.removeLocked(m, "left")
	} else {
		m.sock.Store(nil)
		s.settleLocked(m, "socket lost")
	}
	s.mu.Unlock()
	run(after)
}

// settleLocked starts or ends m's time away after its socket or media
// changed, and tells the room. Called with s.mu held.
func (s *Server) settleLocked(m *member, why string) {
	if m.leaving {
		return
	}
	away := m.away()
	switch {
	case away && m.grace == nil:
		m.awaySince = time.Now()
		m.graceGen++
		gen := m.graceGen
		m.grace = time.AfterFunc(s.cfg.ResumeGrace, func() { s.graceOver(m, gen) })
		m.room.announce(m, false)
		m.log.Info("away", zap.String("why", why))
	case !away && m.grace != nil:
		m.grace.Stop()
		m.grace = nil
		m.room.announce(m, false)
		m.log.Info("back", zap.Duration("after", time.Since(m.awaySince)))
	}
}

// graceOver removes a member that did not come back in time.
func (s *Server) graceOver(m *member, gen int) {
	s.mu.Lock()
	var after []func()
	if m.grace != nil && m.graceGen == gen && present(m) {
		m.grace = nil
		m.bye(protocol.GoodbyeTransport, "the connection could not be restored")
		after = s.removeLocked(m, "lost")
	}
	s.mu.Unlock()
	run(after)
}

// resume hands an away member's session to c.
func (s *Server) resume(c *conn, ref, token string) {
	if !s.routeResume(c, ref, token) {
		return
	}
	s.mu.Lock()
	if c.member != nil {
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrAlreadyJoined, "this connection is already in a room")
		return
	}
	m := s.resumable[token]
	if m == nil || m.backlogLost || m.room.find(m.id) != m {
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrResumeExpired, "that session is over; join again")
		return
	}
	// A socket the server has not seen die yet (the client's network
	// changed under it) gives way to the new one.
	if old := m.sock.Load(); old != nil {
		old.member = nil
		old.closeAfterFlush()
	}
	m.sock.Store(c)
	c.member = m
	m.resumes++
	m.host = c.host
	moved := m.addr != c.addr
	m.addr = c.addr
	kept := m.backlog
	m.backlog = nil
	c.sendMsg(protocol.TypeResumed, protocol.Resumed{You: m.id, ResumeToken: s.resumeTokenLocked(m), AddressChanged: moved})
	for _, b := range kept {
		c.send(b)
	}
	m.room.speakersTo(m)
	// All transports restart when the client's address changed. Others
	// that went down meanwhile get a restart if they are still down a
	// moment after the socket is back: a path that comes back with the
	// network shows up within a keepalive or two, and restarting it then
	// would stall it again (seen in Chromium through a relay).
	var after []func()
	if moved && m.peer != nil {
		after = append(s.restartLocked(m, sfu.RolePublish), s.restartLocked(m, sfu.RoleSubscribe)...)
	} else if len(m.mediaDown) > 0 {
		time.AfterFunc(restartSettle, func() {
			s.mu.Lock()
			var later []func()
			if present(m) && m.sock.Load() == c {
				for _, role := range []sfu.Role{sfu.RolePublish, sfu.RoleSubscribe} {
					if m.mediaDown[role] {
						later = append(later, s.restartLocked(m, role)...)
					}
				}
			}
			s.mu.Unlock()
			run(later)
		})
	}
	s.settleLocked(m, "")
	s.mu.Unlock()
	m.log.Info("resumed", zap.Int("missed", len(kept)), zap.Bool("addressChanged", moved))
	run(after)
}

// restartSettle is how long after a resume a transport that is still
// down is taken to be dead, and restarted.
const restartSettle = time.Second

// mediaStateLocked records a transport of m's session going down or
// coming back, and asks for a way back for one that went down: the client
// restarts the PeerConnection it offers, the server the one it offers.
// Called with s.mu held; the returned work runs after unlocking.
func (s *Server) mediaStateLocked(m *member, role sfu.Role, up bool) []func() {
	if up {
		delete(m.mediaDown, role)
	} else {
		m.mediaDown[role] = true
	}
	s.settleLocked(m, "media "+string(role)+" down")
	if up || m.sock.Load() == nil {
		// Away, a restart could not be negotiated: resume asks for one
		// then, if the path has not come back by itself meanwhile (a
		// restart of a path that works stalls it for seconds).
		return nil
	}
	return s.restartLocked(m, role)
}

// restartLocked asks for an ICE restart of one of m's transports: the
// client restarts the PeerConnection it offers, the server the one it
// offers (work returned for after unlocking). Called with s.mu held.
func (s *Server) restartLocked(m *member, role sfu.Role) []func() {
	if role == sfu.RolePublish {
		m.send(protocol.TypeICERestart, protocol.ICERestart{PC: protocol.PCPublish})
		return nil
	}
	peer := m.peer
	return []func(){func() {
		if peer != nil {
			peer.RestartICE()
		}
	}}
}

// iceRestart takes a client's request to restart the server's offer.
func (s *Server) iceRestart(m *member, ref, pc string) {
	if pc != protocol.PCSubscribe {
		m.replyError(ref, protocol.ErrBadRequest, "the server restarts only the subscribe connection; restart the others by a new offer")
		return
	}
	if p := s.livePeer(m, ref); p != nil {
		p.RestartICE()
	}
}
