package client

import (
	"context"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// Publishing: the client offers the publish PeerConnection to the server
// (or, on the direct path, sends its tracks to the peer) and reads each
// sender's RTCP.

// Publish adds tracks to the publishing PeerConnection and negotiates
// them with the server.
func (c *Client) Publish(ctx context.Context, tracks ...webrtc.TrackLocal) ([]*webrtc.RTPSender, error) {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	c.tracks = append(c.tracks, tracks...)
	if !c.useSFU {
		// On the direct path: the tracks go to the peer now or when it
		// connects (or to the server if the room moves there).
		c.mu.Unlock()
		c.later(func() { c.addDirect(tracks) })
		return nil, nil
	}
	pub, err := c.pubLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	senders := make([]*webrtc.RTPSender, 0, len(tracks))
	for _, t := range tracks {
		s, err := c.addTrack(pub, t)
		if err != nil {
			return nil, err
		}
		senders = append(senders, s)
	}
	return senders, c.negotiate(ctx, pub, false)
}

// pubLocked is the publishing PeerConnection, made on first use. Called
// with c.mu held.
func (c *Client) pubLocked() (*webrtc.PeerConnection, error) {
	if c.pub == nil {
		pc, err := c.newPC(protocol.PCPublish)
		if err != nil {
			return nil, err
		}
		c.pub = pc
	}
	return c.pub, nil
}

// PublishScreen publishes t as a screen share, beside the camera: the
// offer names its transceiver, and others receive it marked as a screen
// (protocol.Track.Source). On the direct path it goes to the peer as one
// more video track, which a browser takes for the screen if it comes
// after the camera (publish the camera first); no sender is returned then.
func (c *Client) PublishScreen(ctx context.Context, t webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	c.mu.Lock()
	c.screen = t
	c.mu.Unlock()
	senders, err := c.Publish(ctx, t)
	if err != nil || len(senders) == 0 {
		return nil, err
	}
	return senders[0], nil
}

// screenMid is the mid of the publish transceiver sending the screen
// share, if any.
func (c *Client) screenMid(pub *webrtc.PeerConnection) string {
	c.mu.Lock()
	screen := c.screen
	c.mu.Unlock()
	if screen == nil {
		return ""
	}
	for _, tr := range pub.GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Track() == screen {
			return tr.Mid()
		}
	}
	return ""
}

// Unpublish removes a track and renegotiates.
func (c *Client) Unpublish(ctx context.Context, s *webrtc.RTPSender) error {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	pub := c.pub
	c.mu.Unlock()
	if pub == nil {
		return errClosed
	}
	if err := pub.RemoveTrack(s); err != nil {
		return err
	}
	return c.negotiate(ctx, pub, false)
}

// negotiate offers the publish connection to the server and waits for the
// answer; restart asks for new ICE credentials (an ICE restart).
func (c *Client) negotiate(ctx context.Context, pub *webrtc.PeerConnection, restart bool) error {
	offer, err := pub.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = pub.SetLocalDescription(offer)
	}
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	c.mu.Lock()
	c.answered = ch
	c.mu.Unlock()
	d := protocol.SessionDescription{Target: protocol.TargetServer, SDP: offer.SDP, Screen: c.screenMid(pub)}
	if err := c.Send(protocol.TypeOffer, d); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return errClosed
	}
}

// PublishPC returns the publishing PeerConnection (nil before Publish).
func (c *Client) PublishPC() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pub
}

// SubscribePC returns the receiving PeerConnection (nil before the
// server's first offer).
func (c *Client) SubscribePC() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sub
}

// addTrack adds t to pc and reads the sender's RTCP: pion's interceptors
// need it read, and keyframe requests go to OnKeyframeRequest.
func (c *Client) addTrack(pc *webrtc.PeerConnection, t webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	s, err := pc.AddTrack(t)
	if err != nil {
		return nil, err
	}
	go readKeyframeRequests(s.ReadRTCP, func() {
		if f := c.cfg.OnKeyframeRequest; f != nil {
			f(t.ID())
		}
	})
	return s, nil
}

// readKeyframeRequests reads a sender's RTCP until it ends (pion's
// interceptors need it read) and calls asked for each PLI or FIR.
func readKeyframeRequests(read func() ([]rtcp.Packet, interceptor.Attributes, error), asked func()) {
	for {
		pkts, _, err := read()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				asked()
			}
		}
	}
}
