package signaling

import (
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// Media is what signaling needs from the media server. The SFU satisfies
// it through SFUMedia; tests of the protocol alone can pass a fake.
type Media interface {
	Join(room string, p sfu.ParticipantParams) (Peer, error)
}

// Peer is one live participant's media session.
type Peer interface {
	Offer(sdp string) error
	// SetScreen names the publish transceiver (mid) of a screen share,
	// before the offer that carries it.
	SetScreen(mid string)
	// PreferCodec names the video codec the room's publishers send
	// (codecs.go), to put first in the answer to the next offer.
	PreferCodec(mime string)
	Answer(sdp string) error
	AddCandidate(role sfu.Role, c webrtc.ICECandidateInit) error
	// Hold stops or resumes forwarding the kind ("audio", "video") of
	// every track the participant publishes (a host muted it). It takes
	// no lock of the media server's: callers may hold Server.mu.
	Hold(kind string, held bool)
	// RestartICE makes the server's next offer an ICE restart.
	RestartICE()
	// Downlink is the server → participant link: the send-side estimate
	// and, per received track, the participant's receiver reports. It
	// takes the media server's locks: never call it with Server.mu held.
	Downlink() sfu.Downlink
	// Quality is the server's view of the participant's link, both
	// halves, since the last call (the quality ticker's, quality.go). It
	// takes the media server's locks: never call it with Server.mu held.
	Quality() sfu.Quality
	// View sets how the participant shows a track it receives
	// (signaling/view.go). It takes the media server's locks: never call
	// it with Server.mu held.
	View(track string, v sfu.View) error
	Close()
}

// SFUMedia adapts an *sfu.SFU to Media.
func SFUMedia(s *sfu.SFU) Media { return sfuMedia{s} }

type sfuMedia struct{ s *sfu.SFU }

func (m sfuMedia) Join(room string, p sfu.ParticipantParams) (Peer, error) {
	return m.s.Join(room, p)
}

var _ Peer = (*sfu.Participant)(nil)

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
		if m.gen == gen {
			m.starting = false
		}
		if err != nil {
			s.mu.Unlock()
			m.log.Error("media join failed", zap.Error(err))
			m.replyError("", protocol.ErrServer, "media session could not start")
			return
		}
		if m.gen != gen || !m.live || m.room.find(m.id) != m { // left, hung up or went p2p meanwhile
			s.mu.Unlock()
			go peer.Close()
			return
		}
		m.peer = peer
		// What a host muted stays muted in a new session. (Hold takes no
		// lock of the SFU's, so it may be called here, in order with the
		// mute and unmute handlers.)
		for kind := range m.held {
			peer.Hold(kind, true)
		}
		s.mu.Unlock()
	}
}

// mediaEvents routes one media session's events to the member's socket.
// Events of a session that has since ended (gen changed) are dropped.
// failureGrace is how long a connection the client closed waits for the
// signaling message that may explain it (hang-up, leave) before the
// member is removed.
const failureGrace = time.Second

func (s *Server) mediaEvents(m *member, gen int) sfu.Events {
	current := func() bool { return m.gen == gen && m.live }
	// A dropped session's last messages are not the client's business.
	send := func(typ string, body any) {
		s.mu.Lock()
		if current() {
			m.send(typ, body)
		}
		s.mu.Unlock()
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
			pt := protocol.Track{ID: t.ID, StreamID: t.StreamID, Kind: t.Kind, Codec: t.Codec, Source: t.Source}
			m.tracks = append(m.tracks, pt)
			m.room.tellAbout(m, protocol.TypeTrackPublished, protocol.TrackEvent{Participant: m.id, Track: pt})
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
		TrackPaused: func(t sfu.TrackInfo, paused bool) {
			if paused {
				m.videoPauses.Add(1)
			}
			send(protocol.TypeTrackPaused, protocol.TrackPaused{Participant: t.Participant, Track: t.ID,
				Kind: t.Kind, Paused: paused, Reason: protocol.PauseBandwidth})
		},
		LayersWanted: layersWanted(send),
		MediaState: func(role sfu.Role, up bool) {
			// Called from pion's goroutine with the SFU's locks free; the
			// ICE restart it may ask for runs after unlocking.
			s.mu.Lock()
			var after []func()
			if current() {
				after = s.mediaStateLocked(m, role, up)
			}
			s.mu.Unlock()
			run(after)
		},
		Failed: func(err error) {
			// A client that hangs up, leaves, or takes the direct path
			// closes its connections as it says so (or just after the
			// server did), and the close can overtake the message. So the
			// verdict waits a moment: if the session has been dropped by
			// then, the failure was no fault of the member's.
			time.AfterFunc(failureGrace, func() {
				s.mu.Lock()
				var after []func()
				if current() && m.room.find(m.id) == m {
					m.replyError("", protocol.ErrTransport, "media connection lost: "+err.Error())
					m.bye(protocol.GoodbyeTransport, "the media connection was closed")
					after = s.removeLocked(m, "media closed by the client")
				}
				s.mu.Unlock()
				run(after)
			})
		},
	}
}

// dropTrack forgets one track and tells the room. Called with s.mu held.
func (s *Server) dropTrack(m *member, id string) {
	for i, t := range m.tracks {
		if t.ID == id {
			m.tracks = append(m.tracks[:i], m.tracks[i+1:]...)
			m.room.tellAbout(m, protocol.TypeTrackUnpublished, protocol.TrackEvent{Participant: m.id, Track: t})
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
	// The session's transports are gone with it, down or not.
	clear(m.mediaDown)
	s.settleLocked(m, "")
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
