package signaling

import (
	"errors"
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
	switch in.Type {
	case protocol.TypeJoin:
		s.join(c, ref, in.Body.(*protocol.Join))
		return
	case protocol.TypeResume:
		s.resume(c, ref, in.Body.(*protocol.Resume).Token)
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
		s.mute(m, ref, in.Body.(*protocol.Mute))
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
	case protocol.TypeAdmit:
		s.moderate(m, ref, in.Body.(*protocol.Moderate).Participant, actAdmit, s.admitLocked, "admitted")
	case protocol.TypeReturnToWaiting:
		s.moderate(m, ref, in.Body.(*protocol.Moderate).Participant, actToWait, s.toWaitingLocked, "returned to the waiting room")
	case protocol.TypeRemove:
		s.moderate(m, ref, in.Body.(*protocol.Moderate).Participant, actRemove, s.removeMemberLocked, "removed")
	case protocol.TypeEnd:
		s.end(m, ref)
	case protocol.TypeRefresh:
		s.refresh(m, ref, in.Body.(*protocol.Refresh).Token)
	case protocol.TypeICERestart:
		s.iceRestart(m, ref, in.Body.(*protocol.ICERestart).PC)
	case protocol.TypeChat:
		s.chat(m, ref, in.Body.(*protocol.Chat))
	case protocol.TypeLinkStats:
		s.linkStats(m, ref, in.Body.(*protocol.LinkStats))
	case protocol.TypeRecord:
		s.record(m, ref, in.Body.(*protocol.Record).Start)
	case protocol.TypeConsent:
		s.answer(m, ref, in.Body.(*protocol.ConsentReply))
	case protocol.TypeTrackView:
		s.trackView(m, ref, in.Body.(*protocol.TrackView))
	}
}

func run(fs []func()) {
	for _, f := range fs {
		f()
	}
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
		m.replyError(ref, protocol.ErrInvalidState, "not live: no media session")
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
		s.mu.Lock()
		codec := m.room.videoCodec
		s.mu.Unlock()
		p.PreferCodec(codec)
		p.SetScreen(d.Screen)
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
		m.replyError(ref, protocol.ErrBadRequest, `pc must be "publish" or "subscribe"`)
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
	m.replyError(ref, code, err.Error())
}

// mute records what m itself sends, or, with a participant named, a
// host's muting of another member.
func (s *Server) mute(m *member, ref string, mu *protocol.Mute) {
	if mu.Participant != "" && mu.Participant != m.id {
		s.moderate(m, ref, mu.Participant, actMute, s.muteLocked(mu.Kind, m.id), "muted", zap.String("kind", mu.Kind))
		return
	}
	s.mu.Lock()
	switch mu.Kind {
	case "audio":
		m.audioMuted = mu.Muted
	case "video":
		m.videoMuted = mu.Muted
	case protocol.SourceScreen:
		m.sharing = !mu.Muted
	}
	// A member that turns back on what a host muted is forwarded again.
	var after []func()
	if !mu.Muted && m.held[mu.Kind] {
		delete(m.held, mu.Kind)
		if m.peer != nil {
			m.peer.Hold(mu.Kind, false)
		}
		after = s.reconcileLocked(m.room)
	}
	m.room.announce(m, true)
	s.mu.Unlock()
	run(after)
}
