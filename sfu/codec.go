package sfu

// Mixed codecs. A room's members may not all decode the same video codecs
// (an old phone may decode H.264 alone), so signaling picks one codec
// that every live member can use and has publishers send it
// (Participant.PreferCodec orders the publisher's answer with it first;
// the web client orders its offer the same way). A publisher that
// changes codec goes on with the same RTP streams under another payload
// type, as browsers do when the answer's order changes: the up-track
// learns each payload type's codec as it comes, and every down-track
// writes the subscriber's payload type for that codec, restarting at the
// new codec's first keyframe. A subscriber whose answer lacks the codec
// of the moment gets no video until the publisher sends one it has,
// instead of being refused the track (which left it without video for
// the rest of the call).

import (
	"strings"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/sfu/internal/keyframe"
)

// numCodecs bounds keyframe.Codec values.
const numCodecs = int(keyframe.H264) + 1

// ptCodecs maps a publisher's payload type to its codec; a zero entry is
// one not seen yet. A table is never changed once stored: learnPT
// stores a copy.
type ptCodecs [128]keyframe.Codec

// codecOf is the codec of a packet of t with payload type pt (the
// track's first codec for a payload type not learned).
func (t *UpTrack) codecOf(pt uint8) keyframe.Codec {
	if c := t.pts.Load()[pt&0x7f]; c != keyframe.Unknown {
		return c
	}
	return t.codec
}

// learnPT records the codec of payload type pt, which l's packets have
// just started to carry: pion has read it from the publisher's
// negotiated codecs by now. Only the layer readers call it, rarely.
func (t *UpTrack) learnPT(l *layer, pt uint8) {
	pt &= 0x7f
	old := t.pts.Load()
	if old[pt] != keyframe.Unknown || t.info.Kind != "video" {
		return
	}
	c := t.codec
	mime := t.info.Codec
	if l.remote != nil {
		if rc := l.remote.Codec(); uint8(rc.PayloadType) == pt && rc.MimeType != "" {
			c, mime = keyframeCodec(rc.MimeType), rc.MimeType
		}
	}
	if c == keyframe.Unknown {
		return
	}
	t.ptMu.Lock()
	next := *t.pts.Load()
	next[pt] = c
	t.pts.Store(&next)
	t.ptMu.Unlock()
	if c != t.codec {
		t.log.Info("publisher changed codec", zap.String("rid", l.rid), zap.String("to", mime))
	}
}

// bindCodecs fills b with the subscriber's payload type for each video
// codec it negotiated, and returns the one to report to pion: the
// publisher's current codec if the subscriber has it, else the first it
// has. ok is false if it has none the SFU forwards.
func bindCodecs(b *binding, up *UpTrack, negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	if up.info.Kind != "video" {
		for _, c := range negotiated {
			if strings.EqualFold(c.MimeType, up.info.Codec) {
				b.pt = uint8(c.PayloadType)
				return c, true
			}
		}
		return webrtc.RTPCodecParameters{}, false
	}
	b.multi = true
	var first *webrtc.RTPCodecParameters
	var chosen *webrtc.RTPCodecParameters
	for i := range negotiated {
		c := &negotiated[i]
		k := keyframeCodec(c.MimeType)
		if k == keyframe.Unknown || b.byCodec[k] != 0 {
			continue
		}
		b.byCodec[k] = uint8(c.PayloadType)
		if first == nil {
			first = c
		}
		if k == up.codec {
			chosen = c
		}
	}
	if chosen == nil {
		chosen = first
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	b.pt = uint8(chosen.PayloadType)
	return *chosen, true
}

// ptFor is the subscriber's payload type for codec c, and whether it
// negotiated one. A binding made without the table (a tap, a test) has
// one payload type for everything.
func (b *binding) ptFor(c keyframe.Codec) (uint8, bool) {
	if !b.multi {
		return b.pt, true
	}
	if int(c) >= numCodecs {
		return 0, false
	}
	pt := b.byCodec[c]
	return pt, pt != 0
}

// padPT is the payload type for padding: the last packet's, so that the
// subscriber never sees a change of payload type mid-stream that is not
// one of codec. Called by the writer.
func (d *DownTrack) padPT(b *binding) uint8 {
	if pt, ok := b.ptFor(d.outCodec); ok && d.sentAny {
		return pt
	}
	return b.pt
}

// PreferCodec makes mime (e.g. "video/H264") the first video codec in the
// answers to this participant's next offers, which is the codec a
// browser then sends; the rest stay negotiated, in their order, so that
// the publisher can change again later. Empty: no preference.
func (p *Participant) PreferCodec(mime string) {
	p.mu.Lock()
	p.videoCodec = mime
	p.mu.Unlock()
}

// preferCodecLocked reorders the video receivers' codecs of pc (whose
// remote offer is set) with mime first. Called with p.mu held.
func preferCodecLocked(pc *webrtc.PeerConnection, mime string) {
	if mime == "" {
		return
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.Receiver() == nil {
			continue
		}
		codecs := tr.Receiver().GetParameters().Codecs
		ordered := make([]webrtc.RTPCodecParameters, 0, len(codecs))
		for _, c := range codecs {
			if strings.EqualFold(c.MimeType, mime) {
				ordered = append(ordered, c)
			}
		}
		if len(ordered) == 0 || strings.EqualFold(codecs[0].MimeType, mime) {
			continue // not offered, or first already
		}
		for _, c := range codecs {
			if !strings.EqualFold(c.MimeType, mime) {
				ordered = append(ordered, c)
			}
		}
		_ = tr.SetCodecPreferences(ordered)
	}
}
