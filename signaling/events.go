package signaling

import (
	"time"

	"consult/protocol"
)

// Events tell a backend what happens in the rooms (main sends them as
// webhooks): a room started or finished, a member joined, waits or left,
// a call (two members live together) started or ended, the call's media
// path changed. They carry ids and roles; display names only when the
// operator asks for them (Config.EventNames), since a name is patient
// data. The hook is called with the server's lock held, in the order
// things happen, so it must only queue the event and return.

// Event types.
const (
	EventRoomStarted       = "room-started"
	EventRoomFinished      = "room-finished"
	EventParticipantJoined = "participant-joined"
	EventParticipantLeft   = "participant-left"
	EventWaitingStarted    = "waiting-started"
	EventCallStarted       = "call-started"
	EventCallEnded         = "call-ended"
	EventPathChanged       = "path-changed"
	EventQualitySummary    = "quality-summary"
)

// Event is one thing that happened in a room.
type Event struct {
	Type        string
	Room        string
	Participant string // a member id, for member events
	Data        map[string]any
}

// emitLocked hands e to Config.OnEvent. Called with s.mu held.
func (s *Server) emitLocked(e Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

// memberEventLocked is a member's event with its role (and name, if the
// operator wants names).
func (s *Server) memberEventLocked(typ string, m *member, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["role"] = m.role
	if s.cfg.EventNames {
		data["name"] = m.name
	}
	s.emitLocked(Event{Type: typ, Room: m.room.name, Participant: m.id, Data: data})
}

// joinedLocked reports a member's arrival (and its room's, when it opened
// the room).
func (s *Server) joinedLocked(m *member, newRoom bool) {
	if newRoom {
		s.emitLocked(Event{Type: EventRoomStarted, Room: m.room.name})
	}
	s.memberEventLocked(EventParticipantJoined, m, map[string]any{"live": m.live})
	if !m.live {
		s.memberEventLocked(EventWaitingStarted, m, nil)
	}
}

// callStartedLocked reports a room's call (two members live together)
// starting. A room already on the SFU (no direct path for it) has its
// call's path now.
func (s *Server) callStartedLocked(r *room) {
	s.emitLocked(Event{Type: EventCallStarted, Room: r.name})
	if r.mode == protocol.ModeSFU {
		s.pathChangedLocked(r, protocol.ModeSFU, "the call started on the SFU")
	}
}

// roomFinishedLocked reports the end of a room (and of its call).
func (s *Server) roomFinishedLocked(r *room) {
	if !r.callStarted.IsZero() {
		s.emitLocked(Event{Type: EventCallEnded, Room: r.name,
			Data: map[string]any{"durationMs": time.Since(r.callStarted).Milliseconds()}})
	}
	s.emitLocked(Event{Type: EventRoomFinished, Room: r.name})
}

// pathChangedLocked reports that a call's media now takes path (p2p or
// sfu), and why: only for a call (two live), and only a change.
func (s *Server) pathChangedLocked(r *room, path, reason string) {
	if path != protocol.ModeP2P && path != protocol.ModeSFU || r.liveCount() < 2 || r.callPath == path {
		return
	}
	r.callPath = path
	data := map[string]any{"path": path}
	if reason != "" {
		data["reason"] = reason
	}
	s.emitLocked(Event{Type: EventPathChanged, Room: r.name, Data: data})
}

// qualitySummaryLocked returns what reports, once m has left, how its
// consult went: the path of its last call ("p2p", "sfu"; "none" if it was
// never in one; "waiting" if it left from the waiting room), its time in
// the room, how often it resumed after a drop and how often its incoming
// video was paused for a weak link; and, from the SFU, its downlink:
// the estimate, the worst loss and the packets lost its receiver reports
// gave, and the keyframe requests its decoders sent (each one a picture
// that broke up: the server's view of freezes), read from peer, m's
// media session, after the lock is released (the SFU's locks are taken)
// and before the media closes. wasLive is m's state before it left.
func (s *Server) qualitySummaryLocked(m *member, wasLive bool, peer Peer) func() {
	if s.cfg.OnEvent == nil {
		return func() {}
	}
	path := m.room.callPath
	switch {
	case !wasLive:
		path = "waiting"
	case path == "":
		path = "none"
	}
	data := map[string]any{"role": m.role, "path": path, "reconnects": m.resumes,
		"videoPauses": int(m.videoPauses.Load()), "seconds": int(time.Since(m.joinedAt).Seconds())}
	room, id := m.room.name, m.id
	return func() {
		if peer != nil {
			dl := peer.Downlink()
			var worst float64
			var lost int64
			for _, l := range dl.Tracks {
				worst = max(worst, l.Loss)
				lost += int64(max(l.Lost, 0))
			}
			data["estimateKbps"], data["worstLoss"], data["lost"], data["keyframeRequests"] =
				dl.EstimateKbps, worst, lost, dl.KeyframeRequests
		}
		// Not under the lock: OnEvent only queues, and the order among
		// one member's events holds (this comes after its leaving).
		s.cfg.OnEvent(Event{Type: EventQualitySummary, Room: room, Participant: id, Data: data})
	}
}
