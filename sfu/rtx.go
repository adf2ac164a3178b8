package sfu

// RTX (RFC 4588), both ways. A browser that negotiates video/rtx sends
// what the server's NACKs ask for on a stream of its own, with its own
// sequence numbers, instead of again on the media stream: the server's
// count of what the publisher's link loses (uplink.go, which reads the
// media stream alone) stays honest, and Chrome probes its uplink with
// retransmissions rather than empty padding. pion rebuilds each
// retransmission into the packet it repairs and hands it to the track's
// reader, past the media stream's interceptors, so the reader tells the
// NACK generator that the packet came (nackgen.Repaired); otherwise it
// would be asked for again, up to four times.
//
// Towards a subscriber that negotiated it, the server does the same: a
// packet a NACK asks for goes out on the down-track's RTX stream, and so
// does the padding of a probe (probe.go). The subscriber's receiver
// reports then count the media stream alone, so the loss they show
// (link.go), which moves its layers, is what the link lost rather than
// what was left after repair; and padding takes no numbers from the
// media stream, so a lost padding packet is never NACKed. The RTX
// stream is written through the media stream's writer, which stamps
// transport-wide sequence numbers on it for the estimator; the sender
// reports are kept to the media stream's own packets (mediaReports).
// A subscriber without RTX gets its repairs and padding on the media
// stream, as before.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
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

// bindRTX records the subscriber's RTX payload type for each codec it
// negotiated one for, and the down-track's RTX SSRC: none if it
// negotiated no RTX (pion then gives the sender no RTX SSRC).
func bindRTX(b *binding, ssrc webrtc.SSRC, negotiated []webrtc.RTPCodecParameters) {
	if ssrc == 0 {
		return
	}
	for _, c := range negotiated {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) {
			continue
		}
		apt, ok := aptOf(c.SDPFmtpLine)
		if !ok {
			continue
		}
		for _, m := range negotiated {
			if k := codecOfMime(m.MimeType); uint8(m.PayloadType) == apt && k != codecNone {
				b.rtxPT[k] = uint8(c.PayloadType)
				b.rtxSSRC = uint32(ssrc)
			}
		}
	}
}

// aptOf reads the payload type an RTX format line names ("apt=96").
func aptOf(fmtp string) (uint8, bool) {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, "apt") {
			pt, err := strconv.ParseUint(v, 10, 7)
			return uint8(pt), err == nil
		}
	}
	return 0, false
}

// rtxFor is the subscriber's RTX payload type for codec c, if it has one.
func (b *binding) rtxFor(c codecID) (uint8, bool) {
	if b.rtxSSRC == 0 || c >= numCodecs {
		return 0, false
	}
	return b.rtxPT[c], b.rtxPT[c] != 0
}

// writeRTX sends the payload d.buf[start:end], of the packet the
// subscriber numbered osn, on the RTX stream with payload type pt at
// timestamp ts: the original number goes first in the payload, over the
// last two bytes of the cached packet's header (at least 12 bytes, and
// parsed already). It runs on the writer goroutine.
func (d *DownTrack) writeRTX(b *binding, pt uint8, osn uint16, ts uint32, start, end int) (int, error) {
	d.buf[start-2], d.buf[start-1] = byte(osn>>8), byte(osn)
	d.rtxSeq++
	d.hdr = rtp.Header{Version: 2, Marker: d.ph.Marker, PayloadType: pt, SequenceNumber: d.rtxSeq,
		Timestamp: ts, SSRC: b.rtxSSRC}
	return b.writer.WriteRTP(&d.hdr, d.buf[start-2:end])
}

// addReports adds pion's receiver reports and its sender reports, the
// latter counting each stream's media packets alone (mediaReports).
func addReports(ir *interceptor.Registry) error {
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return err
	}
	ir.Add(rr)
	ir.Add(mediaReports{sr})
	return nil
}

// mediaReports is pion's sender-report interceptor with every packet of
// another SSRC (a down-track's RTX stream, written beside its media)
// passed around it: pion counts whatever goes through a stream's writer
// as that stream's, which would make the packet and octet counts of the
// sender reports disagree with the media stream's sequence numbers.
type mediaReports struct{ interceptor.Factory }

func (f mediaReports) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.Factory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return mediaOnly{i}, nil
}

type mediaOnly struct{ interceptor.Interceptor }

func (m mediaOnly) BindLocalStream(info *interceptor.StreamInfo, next interceptor.RTPWriter) interceptor.RTPWriter {
	counted := m.Interceptor.BindLocalStream(info, next)
	media := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC != media {
			return next.Write(h, payload, a)
		}
		return counted.Write(h, payload, a)
	})
}
