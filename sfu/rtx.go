package sfu

// RTX from publishers (RFC 4588). A browser that negotiates video/rtx
// sends what the server's NACKs ask for on a stream of its own, with its
// own sequence numbers, instead of again on the media stream: the
// server's count of what the publisher's link loses (uplink.go, which
// reads the media stream alone) stays honest, and Chrome probes its
// uplink with retransmissions rather than empty padding. pion rebuilds
// each retransmission into the packet it repairs and hands it to the
// track's reader, past the media stream's interceptors, so the reader
// tells the NACK generator that the packet came (nackgen.Repaired);
// otherwise it would be asked for again, up to four times.
//
// Subscribers are not offered RTX: the server resends on their media
// stream, as before. pion's sender reports count every packet that goes
// through a stream's writer as that stream's, so an RTX stream written
// beside it would skew them.

import (
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// registerRTX adds an RTX codec for each video codec of codecList, with
// the payload type after it.
func registerRTX(m *webrtc.MediaEngine) error {
	for _, c := range codecList {
		if !strings.HasPrefix(c.MimeType, "video/") {
			continue
		}
		rtx := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX,
			ClockRate: c.ClockRate, SDPFmtpLine: fmt.Sprintf("apt=%d", c.PayloadType)}, PayloadType: c.PayloadType + 1}
		if err := m.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

// repaired is a packet that came as a retransmission on the publisher's
// RTX stream: the NACK generator stops asking for it, and it goes on as
// any packet does, except that it does not count for the link's loss.
func (t *UpTrack) repaired(i uint8, l *layer, pkt []byte) {
	if len(pkt) < 12 {
		return
	}
	if t.onRepaired != nil {
		seq := uint16(pkt[2])<<8 | uint16(pkt[3])
		ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
		t.onRepaired(l.ssrc, seq, ts)
	}
	t.forwardOf(i, l, pkt, true)
}
