package signaling

import (
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// A handover moves a running 1:1 call from one media path to the other
// without a stall on either side. Both paths run for a moment; each member
// says (path-ready) when the peer's video reaches it over the new one, and
// only when both have, or after P2PConfig.HandoverTimeout (a camera that is
// off never sends video), does the server retire the old path: "mode sfu
// active" tells the pair to close the direct connection, "mode p2p active"
// to close their server connections, whose SFU sessions end too. Waiting
// for both matters because closing the old path on one side cuts it in both
// directions: a member that closed its direct link as soon as its own
// server video arrived froze the peer, whose server video could be one
// keyframe interval later (seen as a page that never reported its switch,
// in the web tests on a busy machine).
type handover struct {
	to      string // the new path: protocol.ModeSFU or protocol.ModeP2P
	pair    [2]*member
	started time.Time
	timer   *time.Timer
}

// startHandoverLocked begins moving the pair to path to; the caller has
// already told them to open it. Called with s.mu held; the SFU work it
// returns runs after unlocking.
func (s *Server) startHandoverLocked(r *room, to string, pair [2]*member) []func() {
	s.stopHandoverLocked(r)
	h := &handover{to: to, pair: pair, started: time.Now()}
	h.timer = time.AfterFunc(s.cfg.P2P.HandoverTimeout, func() {
		s.mu.Lock()
		var after []func()
		if r.handover == h {
			s.stats.HandoverTimeouts++
			r.log().Info("handover timed out; retiring the old path", zap.String("to", to))
			after = s.finishHandoverLocked(r)
		}
		s.mu.Unlock()
		run(after)
	})
	r.handover = h
	return s.readyLocked(r)
}

// stopHandoverLocked forgets a handover that a newer change of path
// overtook. Called with s.mu held.
func (s *Server) stopHandoverLocked(r *room) {
	if r.handover != nil {
		r.handover.timer.Stop()
		r.handover = nil
	}
}

// readyLocked finishes the handover if both members receive over the new
// path. Called with s.mu held; the SFU work it returns runs after.
func (s *Server) readyLocked(r *room) []func() {
	h := r.handover
	if h == nil || h.pair[0].pathReady != h.to || h.pair[1].pathReady != h.to {
		return nil
	}
	return s.finishHandoverLocked(r)
}

// finishHandoverLocked retires the old path. Called with s.mu held.
func (s *Server) finishHandoverLocked(r *room) []func() {
	h := r.handover
	s.stopHandoverLocked(r)
	var after []func()
	for _, m := range h.pair {
		if r.find(m.id) != m || !m.live {
			continue
		}
		peer := other(h.pair, m).id
		m.send(protocol.TypeMode, protocol.Mode{Mode: h.to, State: protocol.ModeActive, Peer: peer})
		if h.to == protocol.ModeP2P {
			after = append(after, closeLater(s.dropMediaLocked(m)))
		}
	}
	r.log().Info("media path handed over", zap.String("to", h.to), zap.Duration("took", time.Since(h.started)))
	return after
}

// pathReady records that m receives its peer's video over path.
func (s *Server) pathReady(m *member, path string) {
	s.mu.Lock()
	m.pathReady = path
	after := s.readyLocked(m.room)
	s.mu.Unlock()
	run(after)
}
