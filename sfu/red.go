package sfu

// RED for Opus (RFC 2198). A browser that negotiates audio/red first
// sends each Opus packet with the one or two before it inside, so that
// a packet lost on its uplink is rebuilt from the next: on a lossy link
// speech survives where a NACK (too slow for audio) would not. The SFU
// answers publishers with RED first when they offer it, and forwards it
// as it came to subscribers that negotiated RED, which gives them the
// same protection on their own downlink. A subscriber without RED (a Go
// client, a recorder) gets the primary block alone, as plain Opus. RED
// is not taken from a subscriber whose estimate is low: a lossy link's
// estimate sinks too, and that is where RED is worth most. Taken away
// below 100 kbit/s, it left a patient at 5 % loss (whose estimate the
// busy test machine also pulled down) for parts of calls, and 2-4 % of
// its audio was concealed instead of 0.2 %.

import (
	"github.com/pion/webrtc/v4"

	"consult/sfu/internal/rtpx"
)

// redCodec is Opus with redundancy, under Chrome's payload types.
var redCodec = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/red",
	ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"}, PayloadType: 63}

// red turns a RED packet's payload into what the subscriber takes: RED
// with its blocks under the subscriber's Opus payload type, or the
// primary block alone as Opus. Called by the writer, on its copy.
func (d *DownTrack) red(b *binding, payload []byte) (uint8, []byte, bool) {
	opus, hasOpus := b.ptFor(codecOpus)
	if !hasOpus {
		return 0, nil, false
	}
	if pt, ok := b.ptFor(codecRED); ok {
		if !rtpx.SetREDBlockTypes(payload, opus) {
			return 0, nil, false
		}
		return pt, payload, true
	}
	start, ok := rtpx.REDPrimary(payload)
	if !ok {
		return 0, nil, false
	}
	return opus, payload[start:], true
}

// redShare is the part of its publisher's audio rate that d sends: about
// half of RED's when the subscriber gets the primary alone.
func redShare(d *DownTrack) float64 {
	if !d.takesRED() && d.up.sends(codecRED) {
		return 0.5
	}
	return 1
}

// takesRED reports whether the subscriber negotiated RED.
func (d *DownTrack) takesRED() bool {
	b := d.binding.Load()
	if b == nil {
		return false
	}
	_, ok := b.ptFor(codecRED)
	return ok
}
