package signaling_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
)

// A screen share goes out beside the camera: the others receive both, the
// share marked as a screen in its own stream, and the presenter's
// "sharing" state in the roster.
func TestScreenShareBesideTheCamera(t *testing.T) {
	e := startServer(t, nil)
	a, _ := e.join(t, "consult", "Doctor", true)
	b, _ := e.join(t, "consult", "Patient", true)
	c, _ := e.join(t, "consult", "Interpreter", true)
	startPublisher(t, a)

	screen, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "display", "desk")
	if _, err := a.PublishScreen(ctxT(t, 5*time.Second), screen); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		vp := rtp.NewPacketizer(1200, 96, 3, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for frame := 0; ; frame++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			body := vp8Delta
			if frame%25 == 0 {
				body = vp8Key
			}
			for _, p := range vp.Packetize(body, 3600) {
				_ = screen.WriteRTP(p)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	if err := a.Send(protocol.TypeMute, protocol.Mute{Kind: protocol.SourceScreen, Muted: false}); err != nil {
		t.Fatal(err)
	}

	for _, p := range []*peer{b, c} {
		var ev protocol.TrackEvent
		testenv.Eventually(t, 10*time.Second, "the screen's track-published", func() bool {
			p.awaitMatchInto(protocol.TypeTrackPublished, a.ID(), &ev)
			return ev.Track.Source == protocol.SourceScreen
		})
		if !strings.HasSuffix(ev.Track.StreamID, ":screen") || ev.Track.Kind != "video" {
			t.Fatalf("screen track %+v: want a video track in stream <id>:screen", ev.Track)
		}
		var up protocol.ParticipantEvent
		testenv.Eventually(t, 5*time.Second, "sharing in the roster", func() bool {
			p.awaitMatchInto(protocol.TypeParticipantUpdated, a.ID(), &up)
			return up.Participant.Sharing
		})
		// Both pictures arrive: the camera in the presenter's stream, the
		// screen in its own.
		testenv.Eventually(t, 10*time.Second, "camera and screen received", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			var cam, scr bool
			for _, r := range p.received {
				if r.Kind() != webrtc.RTPCodecTypeVideo || !strings.HasPrefix(r.StreamID(), a.ID()+":") {
					continue
				}
				if r.StreamID() == a.ID()+":screen" {
					scr = true
				} else {
					cam = true
				}
			}
			return cam && scr
		})
	}

	// Stopping the share clears the mark.
	if err := a.Send(protocol.TypeMute, protocol.Mute{Kind: protocol.SourceScreen, Muted: true}); err != nil {
		t.Fatal(err)
	}
	var up protocol.ParticipantEvent
	testenv.Eventually(t, 5*time.Second, "sharing cleared", func() bool {
		b.awaitMatchInto(protocol.TypeParticipantUpdated, a.ID(), &up)
		return !up.Participant.Sharing
	})

	// Nobody stops another's share.
	if err := b.Send(protocol.TypeMute, protocol.Mute{Kind: protocol.SourceScreen, Muted: true, Participant: a.ID()}); err != nil {
		t.Fatal(err)
	}
	b.awaitError(protocol.ErrBadRequest)
}
