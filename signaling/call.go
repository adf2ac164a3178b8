package signaling

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// call is an invite that is ringing. Guarded by Server.mu.
type call struct {
	caller, callee *member
	timer          *time.Timer
}

// tell sends a call transition to both parties. A waiting guest is not
// told who rings it (it may not see anyone): its client says "your
// clinician".
func (c *call) tell(state, reason string) {
	msg := protocol.Call{State: state, Caller: c.caller.id, Callee: c.callee.id, Reason: reason}
	c.caller.send(protocol.TypeCall, msg)
	if !canSee(c.callee, c.caller) {
		msg.Caller = ""
	}
	c.callee.send(protocol.TypeCall, msg)
}

// endLocked removes a ringing call with a final state. Called with s.mu held.
func (s *Server) endLocked(c *call, state, reason string) {
	r := c.callee.room
	if r.calls[c.callee.id] != c {
		return
	}
	delete(r.calls, c.callee.id)
	c.timer.Stop()
	c.tell(state, reason)
	c.caller.log.Info("call ended", zap.String("callee", c.callee.id), zap.String("state", state))
}

// endCallsOf cancels every ringing call m takes part in (m is leaving or
// hanging up). Called with s.mu held.
func (s *Server) endCallsOf(m *member) {
	for _, c := range m.room.calls {
		if c.caller == m || c.callee == m {
			s.endLocked(c, protocol.CallCancelled, "")
		}
	}
}

func (s *Server) invite(m *member, ref, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := m.room
	callee := r.find(target)
	switch {
	case !present(m):
		return
	case !may(m, actInvite):
		m.replyError(ref, protocol.ErrNotHost, "only a host can let someone in")
		return
	case !m.live:
		m.replyError(ref, protocol.ErrInvalidState, "only a live member can call")
		return
	case callee == nil || !canSee(m, callee):
		m.replyError(ref, protocol.ErrNotFound, "no such participant in this room")
		return
	case callee.live:
		m.replyError(ref, protocol.ErrInvalidState, "that participant is already in the call")
		return
	case r.calls[callee.id] != nil:
		m.send(protocol.TypeCall, protocol.Call{State: protocol.CallBusy, Caller: m.id, Callee: callee.id})
		return
	}
	c := &call{caller: m, callee: callee}
	c.timer = time.AfterFunc(s.cfg.RingTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.endLocked(c, protocol.CallTimeout, "")
	})
	r.calls[callee.id] = c
	c.tell(protocol.CallRinging, "")
	m.log.Info("call ringing", zap.String("callee", callee.id))
}

func (s *Server) cancel(m *member, ref, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := m.room.calls[target]
	if c == nil || c.caller != m {
		m.replyError(ref, protocol.ErrInvalidState, "you are not calling that participant")
		return
	}
	s.endLocked(c, protocol.CallCancelled, "")
}

func (s *Server) reject(m *member, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := m.room.calls[m.id]
	if c == nil {
		m.replyError(ref, protocol.ErrInvalidState, "no incoming call")
		return
	}
	s.endLocked(c, protocol.CallRejected, "")
}

// accept puts the callee live: it takes a place in the room (if one is
// free), both parties and the room are told, then media starts.
func (s *Server) accept(m *member, ref string) {
	s.mu.Lock()
	r := m.room
	c := r.calls[m.id]
	if c == nil {
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "no incoming call")
		return
	}
	if r.liveCount() >= r.capacity {
		s.endLocked(c, protocol.CallFailed, protocol.ErrRoomFull)
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrRoomFull, fmt.Sprintf("room is full (%d live)", r.capacity))
		return
	}
	if b := s.seatLocked(r, true); b != nil {
		s.endLocked(c, protocol.CallFailed, protocol.ErrServerBusy)
		s.mu.Unlock()
		b.tell(m, ref)
		return
	}
	delete(r.calls, m.id)
	c.timer.Stop()
	c.tell(protocol.CallAccepted, "")
	r.setLive(m, true)
	after := s.reconcileLocked(r)
	s.mu.Unlock()
	m.log.Info("call accepted", zap.String("caller", c.caller.id))
	run(after)
}

// hangup leaves the call but stays present in the room (waiting).
func (s *Server) hangup(m *member, ref string) {
	s.mu.Lock()
	if !m.live {
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "not in the call")
		return
	}
	s.endCallsOf(m)
	peer := s.stopMediaLocked(m)
	m.room.setLive(m, false)
	after := s.reconcileLocked(m.room)
	s.mu.Unlock()
	m.log.Info("hung up")
	closeLater(peer)()
	run(after)
}
