package sfu

import (
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"consult/sfu/internal/keyframe"
	"consult/sfu/internal/rtpx"
)

// Payload types follow what browsers commonly offer, which keeps SDP diffs
// small when debugging; any value works since each PeerConnection
// negotiates its own and the down-track rewrites it.
var codecList = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
	redCodec, // after Opus: offered to subscribers, put first for publishers that offer it (red.go)
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: videoFeedback}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000,
		SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFeedback}, PayloadType: 98},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: videoFeedback}, PayloadType: 102},
}

// videoFeedback advertises what the SFU answers: NACK from the shared
// cache, PLI and FIR turned into throttled keyframe requests, and REMB
// from a subscriber that sends no transport-cc feedback (remb.go).
// transport-cc is added by the TWCC interceptor set-up; a client that has
// both sends transport-cc feedback, which wins.
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: webrtc.TypeRTCPFBGoogREMB},
}

func registerCodecs(m *webrtc.MediaEngine) error {
	for _, c := range codecList {
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := m.RegisterCodec(c, kind); err != nil {
			return err
		}
	}
	// Publishers put their microphone's level in every audio packet
	// (browsers do once it is negotiated), for the speaker detector
	// (speaker.go). Receive side: the down-tracks write no header
	// extensions (the ids were the publisher's), so subscribers never get
	// it, even though pion lists it on their send-receive transceivers.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: rtpx.AudioLevelURI},
		webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionRecvonly); err != nil {
		return err
	}
	// Simulcast (simulcast.go): each encoding's packets name their mid
	// and rid until the server knows the SSRC. Receive side only, like the
	// audio level: a subscriber gets one stream.
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri},
			webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverDirectionRecvonly); err != nil {
			return err
		}
	}
	return nil
}

func keyframeCodec(mime string) keyframe.Codec {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return keyframe.VP8
	case strings.ToLower(webrtc.MimeTypeVP9):
		return keyframe.VP9
	case strings.ToLower(webrtc.MimeTypeH264):
		return keyframe.H264
	}
	return keyframe.Unknown
}
