package signaling

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// handle decodes one message and acts on it. It runs on the sender's
// reader goroutine; errors go to that client only.
func (s *Server) handle(c *conn, data []byte) {
	in, err := protocol.DecodeClient(data)
	ref := in.ID
	if ref == "" {
		ref = in.Type
	}
	switch {
	case errors.Is(err, protocol.ErrUnknown):
		c.sendError(ref, protocol.ErrUnknownType, err.Error())
		return
	case err != nil:
		c.sendError(ref, protocol.ErrBadRequest, err.Error())
		return
	}
	if in.Type == protocol.TypeJoin {
		s.join(c, ref, in.Body.(*protocol.Join))
		return
	}
	s.mu.Lock()
	m := c.member
	s.mu.Unlock()
	if m == nil {
		c.sendError(ref, protocol.ErrNotJoined, "join a room first")
		return
	}
	switch in.Type {
	case protocol.TypeLeave:
		s.removeMember(c)
	case protocol.TypeOffer, protocol.TypeAnswer:
		s.description(m, ref, in.Type, in.Body.(*protocol.SessionDescription))
	case protocol.TypeCandidate:
		s.candidate(m, ref, in.Body.(*protocol.Candidate))
	case protocol.TypeMute:
		s.mute(m, in.Body.(*protocol.Mute))
	case protocol.TypeInvite:
		s.invite(m, ref, in.Body.(*protocol.Invite).Participant)
	case protocol.TypeCancel:
		s.cancel(m, ref, in.Body.(*protocol.Invite).Participant)
	case protocol.TypeAccept:
		s.accept(m, ref)
	case protocol.TypeReject:
		s.reject(m, ref)
	case protocol.TypeHangup:
		s.hangup(m, ref)
	case protocol.TypeP2PState:
		s.p2pState(m, in.Body.(*protocol.P2PState))
	case protocol.TypePathSwitch:
		s.pathSwitch(m, in.Body.(*protocol.PathSwitch))
	case protocol.TypePathReady:
		s.pathReady(m, in.Body.(*protocol.PathReady).Path)
	}
}

func (s *Server) join(c *conn, ref string, j *protocol.Join) {
	grants, identity, name := AllGrants, "", j.Name
	if len(s.cfg.Secret) > 0 {
		claims, err := VerifyToken(s.cfg.Secret, j.Token, j.Room)
		if err != nil {
			c.sendError(ref, protocol.ErrUnauthorized, "join refused: "+err.Error())
			return
		}
		grants, identity = claims.Grants, claims.Subject
		if claims.Name != "" {
			if n, err := protocol.CleanName(claims.Name); err == nil {
				name = n
			}
		}
	}
	m := &member{id: newID(), name: name, conn: c, grants: grants, live: j.Live, p2p: j.P2P}
	if identity == "" {
		identity = m.id
	}
	m.identity = identity

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
		if j.Capacity > 0 && grants.Admin {
			capacity = j.Capacity
		}
		r = &room{name: j.Room, capacity: capacity, calls: map[string]*call{}, forceSFU: s.sfuRooms[j.Room]}
	}
	if j.Live && r.liveCount() >= r.capacity {
		s.mu.Unlock()
		c.sendError(ref, protocol.ErrRoomFull, fmt.Sprintf("room is full (%d live)", r.capacity))
		return
	}
	if created {
		s.rooms[j.Room] = r
	}
	m.room = r
	m.log = s.log.With(zap.String("room", r.name), zap.String("participant", m.id))
	others := make([]protocol.Participant, 0, len(r.members))
	for _, o := range r.members {
		others = append(others, o.view())
	}
	r.members = append(r.members, m)
	c.member = m
	r.broadcast(m, protocol.TypeParticipantJoined, protocol.ParticipantEvent{Participant: m.view()})
	// Messages the room's new state causes for m wait until m has its
	// joined reply.
	var held [][]byte
	m.held = &held
	after := s.reconcileLocked(r)
	m.held = nil
	c.sendMsg(protocol.TypeJoined, protocol.Joined{Room: r.name, You: m.id, Live: m.live, Mode: r.mode,
		Capacity: r.capacity, Recording: r.recording, Participants: others, ICEServers: s.cfg.ICEServers(identity, c.host)})
	for _, b := range held {
		c.send(b)
	}
	s.mu.Unlock()
	m.log.Info("joined", zap.Bool("live", m.live), zap.String("identity", identity), zap.Bool("p2p", m.p2p))
	run(after)
}

func run(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// startMediaLocked marks m's SFU session as starting and returns the work
// that opens it, to run after unlocking. Called with s.mu held.
func (s *Server) startMediaLocked(m *member) func() {
	m.starting = true
	m.gen++
	gen := m.gen
	room := m.room.name
	ready := make(chan struct{})
	m.ready = ready
	return func() {
		defer close(ready)
		peer, err := s.cfg.Media.Join(room, sfu.ParticipantParams{ID: m.id, CanPublish: m.grants.Publish,
			CanSubscribe: m.grants.Subscribe, Events: s.mediaEvents(m, gen)})
		s.mu.Lock()
		defer s.mu.Unlock()
		if m.gen == gen {
			m.starting = false
		}
		if err != nil {
			m.log.Error("media join failed", zap.Error(err))
			m.conn.sendError("", protocol.ErrServer, "media session could not start")
			return
		}
		if m.gen != gen || !m.live || m.room.find(m.id) != m { // left, hung up or went p2p meanwhile
			go peer.Close()
			return
		}
		m.peer = peer
	}
}

// mediaEvents routes one media session's events to the member's socket.
// Events of a session that has since ended (gen changed) are dropped.
// failureGrace is how long a media failure waits for the signaling message
// that may explain it (hang-up, leave); well inside the 10 s in which a
// dead participant must be gone.
const failureGrace = time.Second

func (s *Server) mediaEvents(m *member, gen int) sfu.Events {
	c := m.conn
	current := func() bool { return m.gen == gen && m.live }
	// A dropped session's last messages are not the client's business.
	send := func(typ string, body any) {
		s.mu.Lock()
		cur := current()
		s.mu.Unlock()
		if cur {
			c.sendMsg(typ, body)
		}
	}
	return sfu.Events{
		Offer: func(sdp string) {
			send(protocol.TypeOffer, protocol.SessionDescription{From: protocol.TargetServer, SDP: sdp})
		},
		Answer: func(sdp string) {
			send(protocol.TypeAnswer, protocol.SessionDescription{From: protocol.TargetServer, SDP: sdp})
		},
		Candidate: func(role sfu.Role, ci webrtc.ICECandidateInit) {
			send(protocol.TypeCandidate, protocol.Candidate{From: protocol.TargetServer, PC: string(role),
				Candidate: protocol.ICECandidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid,
					SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment}})
		},
		TrackPublished: func(t sfu.TrackInfo) {
			s.mu.Lock()
			if !current() || m.room.find(m.id) != m {
				s.mu.Unlock()
				return
			}
			pt := protocol.Track{ID: t.ID, StreamID: t.StreamID, Kind: t.Kind, Codec: t.Codec}
			m.tracks = append(m.tracks, pt)
			m.room.broadcast(nil, protocol.TypeTrackPublished, protocol.TrackEvent{Participant: m.id, Track: pt})
			room := m.room.name
			s.mu.Unlock()
			if s.cfg.Observer != nil {
				s.cfg.Observer.TrackPublished(room, m.id, m.identity, t)
			}
		},
		TrackUnpublished: func(t sfu.TrackInfo) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !current() {
				return
			}
			s.dropTrack(m, t.ID)
		},
		Failed: func(err error) {
			// A client that hangs up, leaves, or takes the direct path
			// closes its connections as it says so (or just after the
			// server did), and the close can overtake the message. So the
			// verdict waits a moment: if the session has been dropped by
			// then, the failure was no fault of the member's.
			time.AfterFunc(failureGrace, func() {
				s.mu.Lock()
				cur := current()
				s.mu.Unlock()
				if cur {
					c.sendError("", protocol.ErrTransport, "media connection lost: "+err.Error())
					c.closeAfterFlush()
				}
			})
		},
	}
}

// dropTrack forgets one track and tells the room. Called with s.mu held.
func (s *Server) dropTrack(m *member, id string) {
	for i, t := range m.tracks {
		if t.ID == id {
			m.tracks = append(m.tracks[:i], m.tracks[i+1:]...)
			m.room.broadcast(nil, protocol.TypeTrackUnpublished, protocol.TrackEvent{Participant: m.id, Track: t})
			if s.cfg.Observer != nil {
				s.cfg.Observer.TrackUnpublished(m.room.name, m.id, t.ID)
			}
			return
		}
	}
}

// dropMediaLocked ends m's SFU session and unpublishes its tracks; it
// returns the peer for the caller to close after unlocking.
func (s *Server) dropMediaLocked(m *member) Peer {
	for len(m.tracks) > 0 {
		s.dropTrack(m, m.tracks[0].ID)
	}
	p := m.peer
	m.peer = nil
	m.starting = false
	m.gen++
	return p
}

// stopMediaLocked takes m out of the call: no SFU session, not live.
func (s *Server) stopMediaLocked(m *member) Peer {
	p := s.dropMediaLocked(m)
	m.live = false
	return p
}

func closeLater(p Peer) func() {
	return func() {
		if p != nil {
			p.Close()
		}
	}
}

// removeMember takes c's member out of its room (leave or socket gone).
func (s *Server) removeMember(c *conn) {
	s.mu.Lock()
	m := c.member
	if m == nil {
		s.mu.Unlock()
		return
	}
	c.member = nil
	r := m.room
	s.endCallsOf(m)
	peer := s.stopMediaLocked(m)
	r.remove(m)
	r.broadcast(nil, protocol.TypeParticipantLeft, protocol.ParticipantLeft{Participant: m.id})
	after := s.reconcileLocked(r)
	if len(r.members) == 0 && s.rooms[r.name] == r {
		s.endRoomLocked(r)
		delete(s.rooms, r.name)
	}
	s.mu.Unlock()
	m.log.Info("left")
	closeLater(peer)()
	run(after)
}

func (s *Server) livePeer(m *member, ref string) Peer {
	s.mu.Lock()
	p, starting, ready := m.peer, m.starting, m.ready
	s.mu.Unlock()
	if p == nil && starting {
		// The session is being opened on another goroutine (the room just
		// moved to the SFU); the client's offer may come first.
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
		}
		s.mu.Lock()
		p = m.peer
		s.mu.Unlock()
	}
	if p == nil {
		s.mu.Lock()
		direct := m.live && (m.room.pair[0] == m || m.room.pair[1] == m)
		s.mu.Unlock()
		if direct {
			// The call just went direct and the session was dropped; the
			// client's last messages to it cross the mode message.
			return nil
		}
		m.conn.sendError(ref, protocol.ErrInvalidState, "not live: no media session")
	}
	return p
}

func (s *Server) description(m *member, ref, typ string, d *protocol.SessionDescription) {
	if d.Target != "" && d.Target != protocol.TargetServer {
		s.relay(m, ref, d.Target, typ, protocol.SessionDescription{From: m.id, SDP: d.SDP})
		return
	}
	p := s.livePeer(m, ref)
	if p == nil {
		return
	}
	var err error
	if typ == protocol.TypeOffer {
		err = p.Offer(d.SDP)
	} else {
		err = p.Answer(d.SDP)
	}
	s.mediaError(m, ref, err)
}

func (s *Server) candidate(m *member, ref string, c *protocol.Candidate) {
	if c.Target != "" && c.Target != protocol.TargetServer {
		if strings.Contains(c.Candidate.Candidate, " typ relay") {
			return // a relayed direct path is no better than the SFU
		}
		s.relay(m, ref, c.Target, protocol.TypeCandidate, protocol.Candidate{From: m.id, PC: protocol.PCP2P, Candidate: c.Candidate})
		return
	}
	if c.PC != protocol.PCPublish && c.PC != protocol.PCSubscribe {
		m.conn.sendError(ref, protocol.ErrBadRequest, `pc must be "publish" or "subscribe"`)
		return
	}
	p := s.livePeer(m, ref)
	if p == nil {
		return
	}
	err := p.AddCandidate(sfu.Role(c.PC), webrtc.ICECandidateInit{Candidate: c.Candidate.Candidate,
		SDPMid: c.Candidate.SDPMid, SDPMLineIndex: c.Candidate.SDPMLineIndex, UsernameFragment: c.Candidate.UsernameFragment})
	s.mediaError(m, ref, err)
}

func (s *Server) mediaError(m *member, ref string, err error) {
	if err == nil {
		return
	}
	code := protocol.ErrServer
	switch {
	case errors.Is(err, sfu.ErrInvalidSDP):
		code = protocol.ErrInvalidSDP
	case errors.Is(err, sfu.ErrInvalidICE), errors.Is(err, sfu.ErrTooManyQueued):
		code = protocol.ErrInvalidICE
	case errors.Is(err, sfu.ErrForbidden):
		code = protocol.ErrForbidden
	case errors.Is(err, sfu.ErrNoOffer), errors.Is(err, sfu.ErrClosed):
		code = protocol.ErrInvalidState
	}
	m.conn.sendError(ref, code, err.Error())
}

func (s *Server) mute(m *member, mu *protocol.Mute) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mu.Kind == "audio" {
		m.audioMuted = mu.Muted
	} else {
		m.videoMuted = mu.Muted
	}
	m.room.broadcast(nil, protocol.TypeParticipantUpdated, protocol.ParticipantEvent{Participant: m.view()})
}
