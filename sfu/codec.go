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

// codecID names a codec the SFU forwards, small enough to index tables.
type codecID uint8

const (
	codecNone codecID = iota
	codecVP8
	codecVP9
	codecH264
	codecOpus
	codecRED // audio/red: Opus with redundancy (red.go)
	numCodecs
)

func codecOfMime(mime string) codecID {
	switch strings.ToLower(mime) {
	case "video/vp8":
		return codecVP8
	case "video/vp9":
		return codecVP9
	case "video/h264":
		return codecH264
	case "audio/opus":
		return codecOpus
	case "audio/red":
		return codecRED
	}
	return codecNone
}

// keyframe is the payload format to look for keyframes in (Unknown for
// audio: no gating).
func (c codecID) keyframe() keyframe.Codec {
	switch c {
	case codecVP8:
		return keyframe.VP8
	case codecVP9:
		return keyframe.VP9
	case codecH264:
		return keyframe.H264
	}
	return keyframe.Unknown
}

// ptCodecs maps a publisher's payload type to its codec; a zero entry is
// one not seen yet. A table is never changed once stored: learnPT
// stores a copy.
type ptCodecs [128]codecID

// codecOf is the codec of a packet of t with payload type pt (the
// track's first codec for a payload type not learned).
func (t *UpTrack) codecOf(pt uint8) codecID {
	if c := t.pts.Load()[pt&0x7f]; c != codecNone {
		return c
	}
	return t.first
}

// learnPT records the codec of payload type pt, which l's packets have
// just started to carry: pion has read it from the publisher's
// negotiated codecs by now. Only the layer readers call it, rarely.
func (t *UpTrack) learnPT(l *layer, pt uint8) {
	pt &= 0x7f
	if t.pts.Load()[pt] != codecNone {
		return
	}
	c, mime := t.first, t.info.Codec
	if l.remote != nil {
		if rc := l.remote.Codec(); uint8(rc.PayloadType) == pt && rc.MimeType != "" {
			c, mime = codecOfMime(rc.MimeType), rc.MimeType
		}
	}
	if c == codecNone {
		return
	}
	t.ptMu.Lock()
	next := *t.pts.Load()
	next[pt] = c
	t.pts.Store(&next)
	t.ptMu.Unlock()
	if c != t.first && t.video {
		t.log.Info("publisher changed codec", zap.String("rid", l.rid), zap.String("to", mime))
	}
}

// bindCodecs fills b with the subscriber's payload type for each codec
// it negotiated, and returns the one to report to pion: for video the
// publisher's current codec if the subscriber has it, else the first it
// has; for audio Opus (RED is Opus too, red.go). ok is false if it has
// none the SFU forwards.
func bindCodecs(b *binding, up *UpTrack, negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var first *webrtc.RTPCodecParameters
	var chosen *webrtc.RTPCodecParameters
	want := up.first
	if !up.video {
		want = codecOpus
	}
	for i := range negotiated {
		c := &negotiated[i]
		k := codecOfMime(c.MimeType)
		if k == codecNone || b.byCodec[k] != 0 || (k == codecOpus || k == codecRED) == up.video {
			continue
		}
		b.byCodec[k] = uint8(c.PayloadType)
		if k == codecRED {
			continue // never what pion is told: it sends Opus, with or without RED
		}
		if first == nil {
			first = c
		}
		if k == want {
			chosen = c
		}
	}
	if chosen == nil {
		chosen = first
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return *chosen, true
}

// ptFor is the subscriber's payload type for codec c, and whether it
// negotiated one.
func (b *binding) ptFor(c codecID) (uint8, bool) {
	if c >= numCodecs {
		return 0, false
	}
	pt := b.byCodec[c]
	return pt, pt != 0
}

// sends reports whether the publisher has sent t in codec c.
func (t *UpTrack) sends(c codecID) bool {
	for _, x := range t.pts.Load() {
		if x == c {
			return true
		}
	}
	return false
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

// preferLocked reorders the codecs of pc's receivers of kind (its remote
// offer is set) with mime first, where it was offered: a browser sends the
// first codec of the answer. Called with p.mu held.
func preferLocked(pc *webrtc.PeerConnection, kind webrtc.RTPCodecType, mime string) {
	if mime == "" {
		return
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() != kind || tr.Receiver() == nil {
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
