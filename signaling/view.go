package signaling

import (
	"errors"

	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// Views and dynacast (protocol/view.go, sfu/dynacast.go): a member says
// how it shows each video track it receives, so the SFU sends it no
// larger layer than that needs, and a publisher hears which of its
// layers anyone needs, so it can stop encoding the rest. A view is
// advice: one that comes while the member's media takes the direct path
// (no SFU session) is dropped without a word.

func (s *Server) trackView(m *member, ref string, v *protocol.TrackView) {
	s.mu.Lock()
	live := m.live && m.room.find(m.id) == m
	p := m.peer
	s.mu.Unlock()
	if !live {
		m.replyError(ref, protocol.ErrInvalidState, "track views are for members in a call")
		return
	}
	if p == nil {
		return
	}
	// The SFU's locks: not under s.mu.
	err := p.View(v.Track, sfu.View{Width: v.Width, Height: v.Height, Visible: v.Visible})
	switch {
	case errors.Is(err, sfu.ErrUnknownTrack):
		m.replyError(ref, protocol.ErrNotFound, "no such track is sent to you")
	case err != nil:
		m.log.Warn("track view", zap.String("track", v.Track), zap.Error(err))
		m.replyError(ref, protocol.ErrServer, "the view could not be applied")
	}
}

// layersWanted is the media session's Events.LayersWanted: it tells the
// publisher which layers of its track to send.
func layersWanted(send func(typ string, body any)) func(t sfu.TrackInfo, active, inactive []string) {
	return func(t sfu.TrackInfo, active, inactive []string) {
		send(protocol.TypeLayers, protocol.Layers{Track: t.ID, Active: active, Inactive: inactive})
	}
}
