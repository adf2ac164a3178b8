package signaling

// The room's video codec (docs/protocol.md, "Video codec"). Through the
// SFU, every subscriber gets the publisher's own stream, so a member that
// cannot decode what a publisher sends sees no picture from it. The room
// therefore has one video codec that every live member can decode and
// every live publisher can encode: the first of videoPreference that all
// can use. Members hear of it in their joined reply and in a codec
// message when it changes (a member with fewer decoders came in, or
// left); a publisher then offers again with it first, and the SFU's
// answer puts it first too, so the browser sends it.

import (
	"slices"
	"strings"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/protocol"
)

// videoPreference is the order codecs are chosen in. VP8 first: the
// camera's simulcast and the SFU's layer switching are built and tested
// for it (picture ids are renumbered across layers), and recordings are
// WebM. H.264 next: every WebRTC endpoint must have it (RFC 7742), and
// phones decode it in hardware. VP9 last: not renumbered across layers
// here yet.
var videoPreference = []string{webrtc.MimeTypeVP8, webrtc.MimeTypeH264, webrtc.MimeTypeVP9}

// mandatoryVideo is what a member that says nothing is taken to decode
// and encode: the two codecs RFC 7742 requires of WebRTC endpoints.
var mandatoryVideo = []string{webrtc.MimeTypeVP8, webrtc.MimeTypeH264}

// codecCaps are a member's video codecs, as MIME types in any case.
type codecCaps struct {
	decode, encode []string
}

func capsOf(v *protocol.VideoCodecs) codecCaps {
	if v == nil {
		return codecCaps{decode: mandatoryVideo, encode: mandatoryVideo}
	}
	return codecCaps{decode: v.Decode, encode: v.Encode}
}

func has(list []string, mime string) bool {
	return slices.ContainsFunc(list, func(c string) bool { return strings.EqualFold(c, mime) })
}

// chooseVideoCodec returns the first codec of videoPreference that every
// member decodes and every publisher encodes (one that encodes nothing
// publishes no video), and false if there is none (then VP8, the codec
// most endpoints have).
func chooseVideoCodec(decoders, publishers []codecCaps) (string, bool) {
	for _, mime := range videoPreference {
		if !slices.ContainsFunc(decoders, func(c codecCaps) bool { return !has(c.decode, mime) }) &&
			!slices.ContainsFunc(publishers, func(c codecCaps) bool { return len(c.encode) > 0 && !has(c.encode, mime) }) {
			return mime, true
		}
	}
	return videoPreference[0], false
}

// codecLocked chooses r's video codec from its live members, and tells
// each live member that has not heard it yet. Called with s.mu held,
// whenever the room's membership changes (reconcileLocked).
func (s *Server) codecLocked(r *room) {
	live := r.live()
	decoders := make([]codecCaps, 0, len(live))
	var publishers []codecCaps
	for _, m := range live {
		decoders = append(decoders, m.codecs)
		if m.grants.Publish {
			publishers = append(publishers, m.codecs)
		}
	}
	codec, common := chooseVideoCodec(decoders, publishers)
	if r.videoCodec != "" && codec != r.videoCodec {
		s.log.Info("room video codec changed", zap.String("room", r.name), zap.String("codec", codec),
			zap.Int("live", len(live)))
	}
	r.videoCodec = codec
	if !common && len(live) > 1 {
		s.log.Warn("no video codec every live member can use", zap.String("room", r.name), zap.String("codec", codec))
	}
	for _, m := range live {
		if m.codecSent != codec {
			m.codecSent = codec
			m.send(protocol.TypeCodec, protocol.Codec{Video: codec})
		}
	}
}
