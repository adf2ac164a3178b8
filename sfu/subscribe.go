package sfu

import (
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// subscribe adds a down-track for t to the subscribing PeerConnection. It
// reports whether anything changed (the caller then negotiates).
func (p *Participant) subscribe(t *UpTrack) bool {
	p.mu.Lock()
	if p.closed || p.downs[t] != nil {
		p.mu.Unlock()
		return false
	}
	d := newDownTrack(t, p.unsubscribe, false)
	d.firstMedia = p.firstMedia
	sub := p.sub
	d.ready = func() bool { return sub.ConnectionState() == webrtc.PeerConnectionStateConnected }
	sender, err := p.sub.AddTrack(d)
	if err != nil {
		p.mu.Unlock()
		p.log.Error("subscribe failed", zap.String("track", t.info.ID), zap.Error(err))
		return false
	}
	d.sender = sender
	p.downs[t] = d
	p.mu.Unlock()
	if !t.addDown(d) { // the track ended meanwhile
		p.unsubscribe(d)
		return false
	}
	go d.writeLoop()
	go d.readRTCP()
	return true
}

// unsubscribe removes a down-track and renegotiates.
func (p *Participant) unsubscribe(d *DownTrack) {
	p.mu.Lock()
	if p.downs[d.up] != d {
		p.mu.Unlock()
		return
	}
	delete(p.downs, d.up)
	closed := p.closed
	var err error
	if !closed {
		err = p.sub.RemoveTrack(d.sender)
	}
	p.mu.Unlock()
	d.up.removeDown(d)
	d.close()
	if err != nil {
		p.log.Debug("remove track", zap.Error(err))
	}
	if !closed {
		p.negotiate()
	}
}

// Close leaves the room: published tracks end (subscribers are told by
// renegotiation), subscriptions end, both PeerConnections close.
func (p *Participant) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	downs := make([]*DownTrack, 0, len(p.downs))
	for _, d := range p.downs {
		downs = append(downs, d)
	}
	p.downs = map[*UpTrack]*DownTrack{}
	p.mu.Unlock()

	for _, t := range p.room.leave(p) {
		t.close()
	}
	for _, d := range downs {
		d.up.removeDown(d)
		d.close()
	}
	p.closePCs()
	p.log.Info("participant left")
}

func (p *Participant) closePCs() {
	p.mu.Lock()
	pcs := []interface{ Close() error }{}
	if p.pub != nil {
		pcs = append(pcs, p.pub)
	}
	if p.sub != nil {
		pcs = append(pcs, p.sub)
	}
	p.mu.Unlock()
	for _, pc := range pcs {
		if err := pc.Close(); err != nil {
			p.log.Debug("close PeerConnection", zap.Error(err))
		}
	}
}

// Tracks lists the tracks the participant publishes.
func (p *Participant) Tracks() []TrackInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TrackInfo, len(p.ups))
	for i, t := range p.ups {
		out[i] = t.info
	}
	return out
}
