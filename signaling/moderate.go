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

// admit puts a waiting member in the call at once (no ringing): a guest
// asked to wait, a host lets it in.
func (s *Server) admit(m *member, ref, id string) {
	s.mu.Lock()
	t := s.targetLocked(m, ref, id, actAdmit)
	var after []func()
	switch {
	case t == nil:
	case t.live:
		m.replyError(ref, protocol.ErrInvalidState, "that participant is already in the call")
	case t.room.liveCount() >= t.room.capacity:
		m.replyError(ref, protocol.ErrRoomFull, fmt.Sprintf("room is full (%d live)", t.room.capacity))
	case s.seatLocked(t.room, true) != nil:
		if c := m.sock.Load(); c != nil {
			s.seatLocked(t.room, true).send(c, ref)
		}
	default:
		s.endCallsOf(t)
		t.room.setLive(t, true)
		after = s.reconcileLocked(t.room)
		m.log.Info("admitted", zap.String("target", t.id))
	}
	s.mu.Unlock()
	run(after)
}

// toWaiting takes a live member out of the call, back to the waiting room.
func (s *Server) toWaiting(m *member, ref, id string) {
	s.mu.Lock()
	t := s.targetLocked(m, ref, id, actToWait)
	var after []func()
	switch {
	case t == nil:
	case !t.live:
		m.replyError(ref, protocol.ErrInvalidState, "that participant is not in the call")
	default:
		s.endCallsOf(t)
		peer := s.stopMediaLocked(t)
		t.room.setLive(t, false)
		after = append([]func(){closeLater(peer)}, s.reconcileLocked(t.room)...)
		m.log.Info("returned to the waiting room", zap.String("target", t.id))
	}
	s.mu.Unlock()
	run(after)
}

// remove takes a member out of the room; it is told why and closed.
func (s *Server) remove(m *member, ref, id string) {
	s.mu.Lock()
	t := s.targetLocked(m, ref, id, actRemove)
	var after []func()
	if t != nil {
		t.bye(protocol.GoodbyeRemoved, "you were removed from the consultation")
		after = s.removeLocked(t, "removed by a host")
		m.log.Info("removed", zap.String("target", t.id))
	}
	s.mu.Unlock()
	run(after)
}

// muteOther turns off another member's microphone or camera: the member's
// client is asked to mute, and the SFU stops forwarding that kind until
// the member unmutes itself. (On the direct path only the client can.)
func (s *Server) muteOther(m *member, ref, id, kind string) {
	s.mu.Lock()
	t := s.targetLocked(m, ref, id, actMute)
	if t == nil || !t.live {
		if t != nil {
			m.replyError(ref, protocol.ErrInvalidState, "that participant is not in the call")
		}
		s.mu.Unlock()
		return
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
	t.send(protocol.TypeMuted, protocol.Muted{Kind: kind, By: m.id})
	t.room.announce(t, true)
	after := s.reconcileLocked(t.room) // a held member leaves the direct path
	s.mu.Unlock()
	run(after)
	m.log.Info("muted", zap.String("target", t.id), zap.String("kind", kind))
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
	r := m.room
	msg := protocol.Ended{By: m.id, ByName: m.name}
	if !r.callStarted.IsZero() {
		msg.DurationMS = time.Since(r.callStarted).Milliseconds()
	}
	// One teardown for the whole room: nothing is reconciled on the way
	// (no path changes, no attempts for a room that is going).
	for _, x := range r.members {
		told := msg
		if !canSee(x, m) {
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
	s.mu.Unlock()
	m.log.Info("consultation ended", zap.Duration("call", time.Duration(msg.DurationMS)*time.Millisecond))
	run(after)
}
