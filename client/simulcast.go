package client

import (
	"context"
	"errors"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// Simulcast: a camera published as several encodings of one picture
// (layers), so that the server can send each subscriber the one its
// downlink carries. Each layer is a track with the same id and stream id
// and its own rid; the server knows q, h and f (quarter, half and full
// size), lowest first. Only the server takes simulcast: on the direct
// path the two browsers adapt one stream end to end.

var errSimulcastDirect = errors.New("client: simulcast is for the server's path, not a direct call")

// PublishSimulcast publishes layers (lowest first, each made with
// webrtc.WithRTPStreamID) as one video track through the server and
// negotiates it. Keyframe requests name the layer
// (Config.OnLayerKeyframeRequest).
func (c *Client) PublishSimulcast(ctx context.Context, layers ...webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	if len(layers) == 0 {
		return nil, errors.New("client: no layers")
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.mu.Lock()
	if !c.useSFU {
		c.mu.Unlock()
		return nil, errSimulcastDirect
	}
	if c.pub == nil {
		pc, err := c.newPC(protocol.PCPublish)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.pub = pc
	}
	pub := c.pub
	c.mu.Unlock()
	s, err := pub.AddTrack(layers[0])
	if err != nil {
		return nil, err
	}
	for _, l := range layers[1:] {
		if err := s.AddEncoding(l); err != nil {
			_ = pub.RemoveTrack(s)
			return nil, err
		}
	}
	for _, l := range layers {
		go c.readLayerRTCP(s, l)
	}
	return s, c.negotiate(ctx, pub, false)
}

// readLayerRTCP reads one encoding's RTCP (pion's interceptors need it
// read) and reports its keyframe requests.
func (c *Client) readLayerRTCP(s *webrtc.RTPSender, l webrtc.TrackLocal) {
	for {
		pkts, _, err := s.ReadSimulcastRTCP(l.RID())
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if f := c.cfg.OnLayerKeyframeRequest; f != nil {
					f(l.ID(), l.RID())
				} else if f := c.cfg.OnKeyframeRequest; f != nil {
					f(l.ID())
				}
			}
		}
	}
}
