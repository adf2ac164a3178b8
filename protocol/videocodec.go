package protocol

import (
	"errors"
	"strings"
)

// Mixed codecs (docs/protocol.md, "Video codec"). Members may not all
// decode the same video codecs, so each says in its join what it can
// decode and encode (Join.Video), and the server tells every live member
// which one the room's publishers send (Joined.VideoCodec, then a codec
// message whenever the choice changes). A publisher puts that codec
// first in its offers; the server's answers put it first too.
const TypeCodec = "codec" // server: Codec

// MaxCodecs bounds each list of a VideoCodecs.
const MaxCodecs = 32

// VideoCodecs is what a client can do with video, as MIME types
// ("video/VP8", "video/H264", ...). Types the server does not forward
// (AV1, rtx, red) may be listed and are ignored. A client that sends no
// VideoCodecs is taken to decode and encode VP8 and H.264, which every
// WebRTC endpoint must (RFC 7742).
type VideoCodecs struct {
	Decode []string `json:"decode"`
	Encode []string `json:"encode"`
}

// Codec names the video codec the room's publishers send to the server.
type Codec struct {
	Video string `json:"video"`
}

func (v *VideoCodecs) validate() error {
	for _, list := range [][]string{v.Decode, v.Encode} {
		if len(list) > MaxCodecs {
			return errors.New("too many video codecs")
		}
		for _, c := range list {
			if !validMime(c) {
				return errors.New(`video codecs must be MIME types such as "video/VP8"`)
			}
		}
	}
	return nil
}

func validMime(s string) bool {
	name, ok := strings.CutPrefix(strings.ToLower(s), "video/")
	if !ok || name == "" || len(name) > 32 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}
