package client

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// direct is the direct PeerConnection of a 1:1 call.
//
// Either side may renegotiate (tracks published later); collisions are
// settled as in the W3C "perfect negotiation" pattern: the server's
// designated offerer is impolite and ignores a colliding offer, the other
// side rolls its own back.
type direct struct {
	pc       *webrtc.PeerConnection
	peer     string
	polite   bool
	early    []webrtc.ICECandidateInit
	reported bool
	up       bool // ICE connected at least once
	// retiring: the room moved to the SFU; the link stays until the server
	// says the SFU carries the call (mode sfu, state active), which it does
	// once both sides receive each other's video from it (path-ready), or
	// after a bound (a camera may be off).
	retiring  bool
	readySent bool // path-ready "sfu" went out for this link
}

// onMode follows the server's choice of media path. Runs on the worker.
func (c *Client) onMode(m protocol.Mode) {
	switch {
	case m.Mode == protocol.ModeSFU && m.State == protocol.ModeActive:
		// Both sides receive through the server: the direct link goes.
		c.mu.Lock()
		d := c.direct
		c.mu.Unlock()
		if d != nil && d.retiring {
			c.closeRetiring(d)
		}
	case m.Mode == protocol.ModeSFU:
		c.toSFU()
	case m.Mode == protocol.ModeP2P && m.State == protocol.ModeTrying:
		c.startDirect(m)
	case m.Mode == protocol.ModeP2P && m.State == protocol.ModeActive:
		// The direct path carries the call: drop the server connections.
		c.mu.Lock()
		c.useSFU = false
		pcs := []*webrtc.PeerConnection{c.pub, c.sub}
		c.pub, c.sub = nil, nil
		clear(c.serverVideo)
		c.mu.Unlock()
		for _, pc := range pcs {
			if pc != nil {
				_ = pc.Close()
			}
		}
	case m.Mode == protocol.ModeP2P: // waiting for a peer
		c.closeDirect()
	}
}

// toSFU publishes to the server; a direct connection that carried the
// call stays until the server retires it (make-before-break), one that
// never connected goes at once.
func (c *Client) toSFU() {
	c.mu.Lock()
	c.useSFU = true
	pending := c.pub == nil && len(c.tracks) > 0
	tracks := c.tracks
	d := c.direct
	var up bool
	if d != nil {
		d.retiring, up = true, d.up
	}
	c.mu.Unlock()
	switch {
	case d != nil && !up:
		c.closeDirect()
	case d != nil:
		// The server's sessions may have stayed up all along (a return to
		// the direct path cut short by a third member).
		c.readySFU(d)
	}
	if !pending {
		return
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	if c.pub != nil {
		c.mu.Unlock()
		return
	}
	pc, err := c.newPC(protocol.PCPublish)
	if err != nil {
		c.mu.Unlock()
		return
	}
	c.pub = pc
	c.mu.Unlock()
	for _, t := range tracks {
		_, _ = c.addTrack(pc, t)
	}
	ctx, cancel := contextWithDone(c.done)
	defer cancel()
	_ = c.negotiate(ctx, pc, false)
}

// onServerTrack hands a track from the server to the application and,
// once the direct peer's video comes from the server, says path-ready:
// its audio alone is not enough, the picture would freeze until the
// server's video arrives. (pion calls OnTrack on a track's first packet.)
func (c *Client) onServerTrack(r *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	go drainRTCP(recv)
	if r.Kind() == webrtc.RTPCodecTypeVideo {
		owner, _, _ := strings.Cut(r.ID(), ":")
		c.mu.Lock()
		c.serverVideo[owner] = true
		d := c.direct
		c.mu.Unlock()
		if d != nil {
			c.later(func() { c.readySFU(d) })
		}
	}
	if c.cfg.OnTrack != nil {
		c.cfg.OnTrack(r, recv)
	}
}

// drainRTCP reads a receiver's RTCP until it stops: the sender's reports
// pass through pion's interceptors only when read, and without them the
// receiver reports carry no LSR, so the sender cannot time the round trip.
func drainRTCP(recv *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := recv.Read(buf); err != nil {
			return
		}
	}
}

// readySFU sends path-ready "sfu" once for a retiring link whose peer's
// video already comes from the server.
func (c *Client) readySFU(d *direct) {
	c.mu.Lock()
	send := c.direct == d && d.retiring && !d.readySent && c.serverVideo[d.peer]
	if send {
		d.readySent = true
	}
	c.mu.Unlock()
	if send {
		_ = c.Send(protocol.TypePathReady, protocol.PathReady{Path: protocol.ModeSFU})
	}
}

func (c *Client) closeDirect() {
	c.mu.Lock()
	d := c.direct
	c.direct = nil
	c.mu.Unlock()
	if d != nil {
		_ = d.pc.Close()
	}
}

// closeRetiring closes d if it is still the retiring direct link.
func (c *Client) closeRetiring(d *direct) {
	c.mu.Lock()
	same := c.direct == d
	if same {
		c.direct = nil
	}
	c.mu.Unlock()
	if same {
		_ = d.pc.Close()
	}
}

func (c *Client) startDirect(m protocol.Mode) {
	c.closeDirect()
	api := c.cfg.P2PAPI
	if api == nil {
		api = c.api
	}
	conf := webrtc.Configuration{}
	for _, s := range m.ICEServers {
		conf.ICEServers = append(conf.ICEServers, webrtc.ICEServer{URLs: s.URLs})
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		c.sendP2PState(protocol.P2PState{State: "failed"})
		return
	}
	d := &direct{pc: pc, peer: m.Peer, polite: !m.Offerer}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil || ic.Typ == webrtc.ICECandidateTypeRelay {
			return
		}
		j := ic.ToJSON()
		_ = c.Send(protocol.TypeCandidate, protocol.Candidate{Target: d.peer, PC: protocol.PCP2P,
			Candidate: protocol.ICECandidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if f := c.cfg.OnConnectionState; f != nil {
			f(protocol.PCP2P, s)
		}
		switch s {
		case webrtc.PeerConnectionStateConnected:
			c.later(func() { c.reportDirect(d) })
		case webrtc.PeerConnectionStateDisconnected:
			c.watchDirect(d)
		case webrtc.PeerConnectionStateFailed:
			c.sendP2PState(protocol.P2PState{State: "failed"})
		}
	})
	pc.OnTrack(func(r *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		go drainRTCP(recv)
		// The peer's video arrives directly: on a return from the SFU the
		// server retires its sessions once both sides say so.
		if r.Kind() == webrtc.RTPCodecTypeVideo {
			_ = c.Send(protocol.TypePathReady, protocol.PathReady{Path: protocol.ModeP2P})
		}
		if c.cfg.OnTrack != nil {
			c.cfg.OnTrack(r, recv)
		}
	})
	c.mu.Lock()
	c.direct = d
	tracks := c.tracks
	c.mu.Unlock()
	for _, t := range tracks {
		_, _ = c.addTrack(pc, t)
	}
	if m.Offerer {
		c.offerDirect(d, false)
	}
}

// offerDirect offers the direct connection to the peer (restart: with new
// ICE credentials; the peer's perfect-negotiation rules settle a collision).
// directRecover is how long a direct link that went silent may take to
// come back (after an ICE restart by the offering side) before the client
// reports it failed, and the server moves the call to the SFU.
const directRecover = 5 * time.Second

// watchDirect restarts ICE on a direct link that stays disconnected, and
// gives it up if it does not recover.
func (c *Client) watchDirect(d *direct) {
	down := func() bool {
		c.mu.Lock()
		current := c.direct == d
		c.mu.Unlock()
		st := d.pc.ConnectionState()
		return current && (st == webrtc.PeerConnectionStateDisconnected || st == webrtc.PeerConnectionStateFailed)
	}
	time.AfterFunc(restartDebounce, func() {
		if down() && !d.polite {
			c.later(func() { c.offerDirect(d, true) })
		}
	})
	time.AfterFunc(directRecover, func() {
		if down() {
			c.sendP2PState(protocol.P2PState{State: "failed"})
		}
	})
}

func (c *Client) offerDirect(d *direct, restart bool) {
	offer, err := d.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = d.pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.sendP2PState(protocol.P2PState{State: "failed"})
		return
	}
	_ = c.Send(protocol.TypeOffer, protocol.SessionDescription{Target: d.peer, SDP: offer.SDP})
}

// addDirect sends tracks published during a direct call to the peer.
func (c *Client) addDirect(tracks []webrtc.TrackLocal) {
	c.mu.Lock()
	d := c.direct
	c.mu.Unlock()
	if d == nil {
		return
	}
	for _, t := range tracks {
		_, _ = c.addTrack(d.pc, t)
	}
	if d.pc.RemoteDescription() != nil || !d.polite {
		c.offerDirect(d, false)
	}
	// A polite side that has not heard the first offer yet answers it
	// with these tracks included.
}

// reportDirect tells the server the selected candidate pair's types.
func (c *Client) reportDirect(d *direct) {
	c.mu.Lock()
	if c.direct != d || d.reported {
		c.mu.Unlock()
		return
	}
	d.reported, d.up = true, true
	c.mu.Unlock()
	local, remote := SelectedPair(d.pc)
	c.sendP2PState(protocol.P2PState{State: "connected", Local: local, Remote: remote})
}

// SelectedPair returns the candidate types of a PeerConnection's selected
// pair ("host", "srflx", "prflx", "relay"), or empty strings.
func SelectedPair(pc *webrtc.PeerConnection) (local, remote string) {
	p := SelectedCandidatePair(pc)
	if p == nil {
		return "", ""
	}
	return p.Local.Typ.String(), p.Remote.Typ.String()
}

// SelectedCandidatePair returns the candidate pair ICE selected, or nil.
// It asks the ICE transport, not GetStats: pion's GetStats reads each
// receiver's track state without the lock its reader takes on a track's
// first packets (a data race in pion/webrtc v4.2.26, seen when a direct
// link was checked while media started), and the pair is all we need.
func SelectedCandidatePair(pc *webrtc.PeerConnection) *webrtc.ICECandidatePair {
	t := pc.SCTP().Transport().ICETransport()
	if t == nil {
		return nil
	}
	p, err := t.GetSelectedCandidatePair()
	if err != nil || p == nil || p.Local == nil || p.Remote == nil {
		return nil
	}
	return p
}

func (c *Client) sendP2PState(st protocol.P2PState) { _ = c.Send(protocol.TypeP2PState, st) }

// onDirect applies the peer's offer, answer or candidate. Runs on the
// worker, after the mode message that created the connection.
func (c *Client) onDirect(typ string, raw []byte) {
	c.mu.Lock()
	d := c.direct
	c.mu.Unlock()
	if d == nil {
		return
	}
	switch typ {
	case protocol.TypeOffer, protocol.TypeAnswer:
		var sd protocol.SessionDescription
		if json.Unmarshal(raw, &sd) != nil || sd.From != d.peer {
			return
		}
		t := webrtc.SDPTypeAnswer
		if typ == protocol.TypeOffer {
			t = webrtc.SDPTypeOffer
			if d.pc.SignalingState() != webrtc.SignalingStateStable { // offers crossed
				if !d.polite {
					return
				}
				if err := d.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
					return
				}
			}
		}
		if err := d.pc.SetRemoteDescription(webrtc.SessionDescription{Type: t, SDP: sd.SDP}); err != nil {
			c.sendP2PState(protocol.P2PState{State: "failed"})
			return
		}
		for _, ci := range d.early {
			_ = d.pc.AddICECandidate(ci)
		}
		d.early = nil
		if typ == protocol.TypeOffer {
			ans, err := d.pc.CreateAnswer(nil)
			if err == nil {
				err = d.pc.SetLocalDescription(ans)
			}
			if err != nil {
				c.sendP2PState(protocol.P2PState{State: "failed"})
				return
			}
			_ = c.Send(protocol.TypeAnswer, protocol.SessionDescription{Target: d.peer, SDP: ans.SDP})
		}
	case protocol.TypeCandidate:
		var cand protocol.Candidate
		if json.Unmarshal(raw, &cand) != nil || cand.From != d.peer {
			return
		}
		ci := webrtc.ICECandidateInit{Candidate: cand.Candidate.Candidate, SDPMid: cand.Candidate.SDPMid,
			SDPMLineIndex: cand.Candidate.SDPMLineIndex}
		if d.pc.RemoteDescription() == nil {
			d.early = append(d.early, ci)
			return
		}
		_ = d.pc.AddICECandidate(ci)
	}
}

// DirectPC returns the direct PeerConnection, if any.
func (c *Client) DirectPC() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.direct == nil {
		return nil
	}
	return c.direct.pc
}

// ReportPathSwitch tells the server how long the peer's picture stalled
// when the media path changed (the application measures it).
func (c *Client) ReportPathSwitch(from, to string, gapMS int) error {
	return c.Send(protocol.TypePathSwitch, protocol.PathSwitch{From: from, To: to, GapMS: gapMS})
}

func contextWithDone(done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
