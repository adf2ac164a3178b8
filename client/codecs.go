package client

import (
	"slices"
	"strings"

	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// Mixed codecs (docs/protocol.md, "Video codec"): a client may decode
// only some video codecs, as an old phone decodes H.264 alone. VideoAPI
// builds PeerConnections that negotiate only those; VideoCodecs says so
// in a join (protocol.Join.Video), and the server then has the room's
// publishers send one of them.

// videoCodecs are the video codecs VideoAPI knows, as pion's defaults
// have them.
var videoCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000,
		SDPFmtpLine: "profile-id=0"}, PayloadType: 98},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102},
}

// RegisterCodecs registers what the server forwards, with pion's
// payload types and feedback: Opus, VP8, VP9 and H.264. Unlike pion's
// defaults it has no RTX. The server resends on an RTX stream to a
// subscriber that negotiates one, and pion hands those repairs to the
// track past its NACK generator, which never hears of them and goes on
// asking for each repaired packet every 100 ms for as long as it keeps
// it: a client that lost a few packets would make the server send them
// dozens of times. Without RTX, resends come on the media stream, where
// the generator sees them.
func RegisterCodecs(m *webrtc.MediaEngine) error {
	return register(m, []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}}, nil)
}

// VideoAPI is DefaultAPI with Opus and the named video codecs alone
// (MIME types, e.g. webrtc.MimeTypeH264; all of them if none is named).
func VideoAPI(se *webrtc.SettingEngine, video ...string) (*webrtc.API, error) {
	return newAPI(se, func(m *webrtc.MediaEngine) error {
		return register(m, []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}}, video)
	})
}

// register registers Opus and the video codecs named in video (all of
// videoCodecs if none), each with the feedback fb.
func register(m *webrtc.MediaEngine, fb []webrtc.RTCPFeedback, video []string) error {
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	for _, c := range videoCodecs {
		if video != nil && !slices.ContainsFunc(video, func(v string) bool { return strings.EqualFold(v, c.MimeType) }) {
			continue
		}
		c.RTCPFeedback = fb
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

// VideoCodecs is a join's statement that the client decodes and encodes
// the named video codecs alone.
func VideoCodecs(video ...string) *protocol.VideoCodecs {
	return &protocol.VideoCodecs{Decode: video, Encode: video}
}
