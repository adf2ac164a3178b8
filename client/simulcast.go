package client

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Simulcast: a camera published as several encodings of one picture
// (layers), so that the server can send each subscriber the one its
// downlink carries. Each layer is a track with the same id and stream id
// and its own rid; the server knows q, h and f (quarter, half and full
// size), lowest first. Only the server takes simulcast: on the direct
// path the two browsers adapt one stream end to end.

var errSimulcastDirect = errors.New("client: simulcast is for the server's path, not a direct call")

// SimulcastLayer is one encoding of a simulcast track. Unlike pion's
// static tracks it puts the mid and its rid in each packet's header
// extensions, as browsers do: the server learns each layer's SSRC from
// them.
type SimulcastLayer struct {
	id, stream, rid string
	codec           webrtc.RTPCodecCapability
	b               atomic.Pointer[layerBinding]
	mid             atomic.Pointer[string]
}

type layerBinding struct {
	ssrc         webrtc.SSRC
	pt           uint8
	midID, ridID uint8
	w            webrtc.TrackLocalWriter
}

// NewSimulcastLayer makes the encoding rid of the track id in stream.
func NewSimulcastLayer(codec webrtc.RTPCodecCapability, id, stream, rid string) *SimulcastLayer {
	return &SimulcastLayer{id: id, stream: stream, rid: rid, codec: codec}
}

// Bind is called by pion when the connection's codec is known.
func (l *SimulcastLayer) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, l.codec.MimeType) {
			continue
		}
		b := &layerBinding{ssrc: ctx.SSRC(), pt: uint8(c.PayloadType), w: ctx.WriteStream()}
		for _, x := range ctx.HeaderExtensions() {
			switch x.URI {
			case sdp.SDESMidURI:
				b.midID = uint8(x.ID)
			case sdp.SDESRTPStreamIDURI:
				b.ridID = uint8(x.ID)
			}
		}
		l.b.Store(b)
		return c, nil
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind stops writing.
func (l *SimulcastLayer) Unbind(webrtc.TrackLocalContext) error {
	l.b.Store(nil)
	return nil
}

// ID, RID, StreamID and Kind describe the layer to pion.
func (l *SimulcastLayer) ID() string                { return l.id }
func (l *SimulcastLayer) RID() string               { return l.rid }
func (l *SimulcastLayer) StreamID() string          { return l.stream }
func (l *SimulcastLayer) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// WriteRTP sends p on this layer (its SSRC and payload type are set
// here). Before negotiation ends it drops p.
func (l *SimulcastLayer) WriteRTP(p *rtp.Packet) error {
	b := l.b.Load()
	if b == nil {
		return nil
	}
	h := p.Header
	h.Extensions = append([]rtp.Extension(nil), p.Header.Extensions...) // not the caller's
	h.SSRC, h.PayloadType = uint32(b.ssrc), b.pt
	if mid := l.mid.Load(); mid != nil && b.midID != 0 {
		if err := h.SetExtension(b.midID, []byte(*mid)); err != nil {
			return err
		}
	}
	if b.ridID != 0 {
		if err := h.SetExtension(b.ridID, []byte(l.rid)); err != nil {
			return err
		}
	}
	_, err := b.w.WriteRTP(&h, p.Payload)
	return err
}

// PublishSimulcast publishes layers (lowest first) as one video track
// through the server and negotiates it. Keyframe requests name the layer
// (Config.OnLayerKeyframeRequest).
func (c *Client) PublishSimulcast(ctx context.Context, layers ...*SimulcastLayer) (*webrtc.RTPSender, error) {
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
	pub, err := c.pubLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
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
		go readKeyframeRequests(func() ([]rtcp.Packet, interceptor.Attributes, error) {
			return s.ReadSimulcastRTCP(l.RID())
		}, func() {
			if f := c.cfg.OnLayerKeyframeRequest; f != nil {
				f(l.ID(), l.RID())
			} else if f := c.cfg.OnKeyframeRequest; f != nil {
				f(l.ID())
			}
		})
	}
	if err := c.negotiate(ctx, pub, false); err != nil {
		return s, err
	}
	for _, tr := range pub.GetTransceivers() {
		if tr.Sender() == s {
			mid := tr.Mid()
			for _, l := range layers {
				l.mid.Store(&mid)
			}
		}
	}
	return s, nil
}
