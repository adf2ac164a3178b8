package signaling

import (
	"github.com/pion/webrtc/v4"

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
	Answer(sdp string) error
	AddCandidate(role sfu.Role, c webrtc.ICECandidateInit) error
	Close()
}

// SFUMedia adapts an *sfu.SFU to Media.
func SFUMedia(s *sfu.SFU) Media { return sfuMedia{s} }

type sfuMedia struct{ s *sfu.SFU }

func (m sfuMedia) Join(room string, p sfu.ParticipantParams) (Peer, error) {
	return m.s.Join(room, p)
}

var _ Peer = (*sfu.Participant)(nil)
