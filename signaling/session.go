package signaling

import (
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// A session lasts as long as its token: a token checked only at join would
// let a member stay for as long as its socket held. The member is warned
// ExpiryWarning before the end (token-expiring), may send refresh with a
// new token for the same identity, room and role, and is otherwise told
// goodbye (token-expired) and removed when the token expires.

// ExpiryWarning is how long before its token expires a member is warned.
const ExpiryWarning = 60 * time.Second

type session struct {
	expires   time.Time
	warn, end *time.Timer
}

// startSessionLocked arms m's expiry timers. Called with s.mu held.
func (s *Server) startSessionLocked(m *member, expires time.Time) {
	s.endSessionLocked(m)
	ss := &session{expires: expires}
	m.session = ss
	current := func() bool { return m.session == ss && m.room.find(m.id) == m }
	ss.warn = time.AfterFunc(time.Until(expires.Add(-ExpiryWarning)), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if current() {
			m.send(protocol.TypeTokenExpiring, protocol.Session{ExpiresAt: expires.UnixMilli()})
		}
	})
	ss.end = time.AfterFunc(time.Until(expires), func() {
		s.mu.Lock()
		var after []func()
		if current() {
			m.bye(protocol.GoodbyeExpired, "your access to this consultation has expired")
			after = s.removeLocked(m, "token expired")
		}
		s.mu.Unlock()
		run(after)
	})
}

// endSessionLocked stops m's expiry timers. Called with s.mu held.
func (s *Server) endSessionLocked(m *member) {
	if m.session != nil {
		m.session.warn.Stop()
		m.session.end.Stop()
		m.session = nil
	}
}

// refresh takes a new token for m's session: it must be valid for m's
// room, name the same identity and role, and expire later.
func (s *Server) refresh(m *member, ref, token string) {
	if len(s.cfg.Secret) == 0 {
		m.replyError(ref, protocol.ErrInvalidState, "this server has no tokens to refresh")
		return
	}
	claims, err := VerifyToken(s.cfg.Secret, token, m.room.name)
	if err != nil {
		m.replyError(ref, protocol.ErrUnauthorized, "refresh refused: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case claims.Subject != m.identity || claims.Role != m.role:
		m.replyError(ref, protocol.ErrForbidden, "that token is for someone else")
		return
	case claims.Grants != m.grants || claims.DirectEntry != m.directEntry:
		// A session keeps what it joined with; other rights need a join.
		m.replyError(ref, protocol.ErrForbidden, "that token grants something else")
		return
	case m.session == nil || !claims.ExpiresAt.After(m.session.expires):
		m.replyError(ref, protocol.ErrBadRequest, "that token does not last longer")
		return
	}
	exp := claims.ExpiresAt.Time
	s.startSessionLocked(m, exp)
	m.send(protocol.TypeRefreshed, protocol.Session{ExpiresAt: exp.UnixMilli()})
	m.log.Info("session refreshed", zap.Time("expires", exp))
}
