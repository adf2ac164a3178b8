package signaling

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// What a host does to other members: let a waiting one in, send a live
// one back to the waiting room, remove one, mute one, and end the
// consultation for everyone. Each asks roles.go first; a guest gets
// not-host and nothing changes.

// target finds the member a host acts on, or answers ref with the error.
// Called with s.mu held.
func (s *Server) targetLocked(m *member, ref, id string, a action) *member {
	if !present(m) {
		return nil // removed or replaced while this message was on its way
	}
	if !may(m, a) {
		m.replyError(ref, protocol.ErrNotHost, "only a host can do that")
		return nil
	}
	t := m.room.find(id)
	if t == nil || !canSee(m, t) {
		m.replyError(ref, protocol.ErrNotFound, "no such participant in this room")
		return nil
	}
	if t == m {
		m.replyError(ref, protocol.ErrInvalidState, "not on yourself")
		return nil
	}
	return t
}

// refusal is why a moderation act did not happen: a protocol error code
// and words for the actor, or the admission limit that stood in its way.
type refusal struct {
	code, msg string
	busy      *busy
}

// replyTo tells a member who asked.
func (e *refusal) replyTo(m *member, ref string) {
	if e.busy != nil {
		e.busy.tell(m, ref)
		return
	}
	m.replyError(ref, e.code, e.msg)
}

// An act on a member, shared by hosts (moderate) and the server API
// (adminapi.go). Called with s.mu held.
type act func(t *member) ([]func(), *refusal)

// moderate is a host's act a on member id: it finds the member, checks
// the host may, and logs what was done (done, with the target's id).
func (s *Server) moderate(m *member, ref, id string, a action, do act, done string, fields ...zap.Field) {
	s.mu.Lock()
	t := s.targetLocked(m, ref, id, a)
	var after []func()
	if t != nil {
		var e *refusal
		if after, e = do(t); e != nil {
			e.replyTo(m, ref)
		} else {
			m.log.Info(done, append(fields, zap.String("target", t.id))...)
		}
	}
	s.mu.Unlock()
	run(after)
}

// admitLocked puts a waiting member in the call at once (no ringing): a
// guest asked to wait, a host lets it in.
func (s *Server) admitLocked(t *member) ([]func(), *refusal) {
	switch {
	case t.live:
		return nil, &refusal{code: protocol.ErrInvalidState, msg: "that participant is already in the call"}
	case t.room.liveCount() >= t.room.capacity:
		return nil, &refusal{code: protocol.ErrRoomFull, msg: fmt.Sprintf("room is full (%d live)", t.room.capacity)}
	}
	if b := s.seatLocked(t.room, true); b != nil {
		return nil, &refusal{code: protocol.ErrServerBusy, msg: b.reason, busy: b}
	}
	s.endCallsOf(t)
	t.room.setLive(t, true)
	return s.reconcileLocked(t.room), nil
}

// toWaitingLocked takes a live member out of the call, back to the
// waiting room.
func (s *Server) toWaitingLocked(t *member) ([]func(), *refusal) {
	if !t.live {
		return nil, &refusal{code: protocol.ErrInvalidState, msg: "that participant is not in the call"}
	}
	s.endCallsOf(t)
	peer := s.stopMediaLocked(t)
	t.room.setLive(t, false)
	return append([]func(){closeLater(peer)}, s.reconcileLocked(t.room)...), nil
}

// removeMemberLocked takes a member out of the room; it is told why and
// closed.
func (s *Server) removeMemberLocked(t *member) ([]func(), *refusal) {
	t.bye(protocol.GoodbyeRemoved, "you were removed from the consultation")
	return s.removeLocked(t, "removed by a host"), nil
}

// muteLocked turns off a member's microphone or camera: the member's
// client is asked to mute, and the SFU stops forwarding that kind until
// the member unmutes itself. (On the direct path only the client can.)
// by is the host's id, empty for the server API.
func (s *Server) muteLocked(kind, by string) act {
	return func(t *member) ([]func(), *refusal) {
		if !t.live {
			return nil, &refusal{code: protocol.ErrInvalidState, msg: "that participant is not in the call"}
		}
		if kind == "audio" {
			t.audioMuted = true
		} else {
			t.videoMuted = true
		}
		t.held[kind] = true
		if t.peer != nil {
			t.peer.Hold(kind, true)
		}
		t.send(protocol.TypeMuted, protocol.Muted{Kind: kind, By: by})
		t.room.announce(t, true)
		return s.reconcileLocked(t.room), nil // a held member leaves the direct path
	}
}

// end closes the consultation for everyone: each member is told who ended
// it and how long the call ran, then goodbye, and the room's media sessions
// and direct calls close with their members.
func (s *Server) end(m *member, ref string) {
	s.mu.Lock()
	if !present(m) {
		s.mu.Unlock()
		return
	}
	if !may(m, actEnd) {
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrNotHost, "only a host can end the consultation")
		return
	}
	took, after := s.endRoomAllLocked(m.room, m)
	s.mu.Unlock()
	m.log.Info("consultation ended", zap.Duration("call", took))
	run(after)
}

// endRoomAllLocked ends room r for everyone; by is the host who ended it,
// nil for the server API. It returns how long the call ran.
func (s *Server) endRoomAllLocked(r *room, by *member) (time.Duration, []func()) {
	var msg protocol.Ended
	if by != nil {
		msg.By, msg.ByName = by.id, by.name
	}
	if !r.callStarted.IsZero() {
		msg.DurationMS = time.Since(r.callStarted).Milliseconds()
	}
	// One teardown for the whole room: nothing is reconciled on the way
	// (no path changes, no attempts for a room that is going).
	for _, x := range r.members {
		told := msg
		if by == nil || !canSee(x, by) {
			told.By, told.ByName = "", ""
		}
		x.send(protocol.TypeEnded, told)
		x.bye(protocol.GoodbyeEnded, "the consultation has ended")
	}
	var after []func()
	for _, x := range r.members {
		after = append(after, s.releaseLocked(x, "consultation ended")...)
	}
	r.members = nil
	after = append(after, s.endRoomLocked(r)...)
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
	return time.Duration(msg.DurationMS) * time.Millisecond, after
}
