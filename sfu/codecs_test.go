package sfu

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Frames the payloaders accept, keyframe first.
var codecFrames = map[string][2][]byte{
	webrtc.MimeTypeVP8: {vp8Key, vp8Delta},
	// VP9 uncompressed header: frame marker, profile 0, key frame, sync code.
	webrtc.MimeTypeVP9: {append([]byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x27, 0xf0, 0x1d}, make([]byte, 1500)...),
		append([]byte{0x86, 0x00, 0x40, 0x92}, make([]byte, 500)...)},
	// H.264 Annex B: SPS, PPS, IDR slice; then a non-IDR slice.
	webrtc.MimeTypeH264: {append([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88}, make([]byte, 2000)...),
		append([]byte{0, 0, 0, 1, 0x41, 0x9a}, make([]byte, 400)...)},
}

// A packet arriving at all proves the codec's keyframe detection: the
// down-track forwards nothing before a keyframe start.
func TestEveryVideoCodecIsForwardedAsNegotiated(t *testing.T) {
	for mime, frames := range codecFrames {
		t.Run(mime, func(t *testing.T) {
			s := newTestSFU(t)
			a := joinPeer(t, s, "r", "a")
			b := joinPeer(t, s, "r", "b")
			tr := a.publish(mime, "cam")
			stop, key := make(chan struct{}), make(chan struct{}, 1)
			defer close(stop)
			watchFeedback(a.published[webrtc.RTPCodecTypeVideo], key)
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for first := true; ; first = false {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					f := frames[1]
					select {
					case <-key:
						f = frames[0]
					default:
					}
					if first {
						f = frames[0]
					}
					_ = tr.WriteSample(media.Sample{Data: f, Duration: 20 * time.Millisecond})
				}
			}()
			remote := b.awaitTrack(5 * time.Second)
			if !strings.EqualFold(remote.Codec().MimeType, mime) {
				t.Fatalf("subscriber got %s", remote.Codec().MimeType)
			}
			if _, _, err := remote.ReadRTP(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpusIsForwarded(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	b := joinPeer(t, s, "r", "b")
	tr := a.publish(webrtc.MimeTypeOpus, "mic")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = tr.WriteSample(media.Sample{Data: []byte{0xfc, 1, 2, 3}, Duration: 20 * time.Millisecond})
			}
		}
	}()
	remote := b.awaitTrack(5 * time.Second)
	p, _, err := remote.ReadRTP()
	if err != nil || !strings.EqualFold(remote.Codec().MimeType, webrtc.MimeTypeOpus) || string(p.Payload) != "\xfc\x01\x02\x03" {
		t.Fatalf("opus: %v %s %x", err, remote.Codec().MimeType, p.Payload)
	}
}
