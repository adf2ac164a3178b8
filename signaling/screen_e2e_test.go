package signaling_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/client"
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
		ev := awaitTrackEvent(t, p, a.ID(), func(tr protocol.Track) bool { return tr.Source == protocol.SourceScreen })
		if !strings.HasSuffix(ev.Track.StreamID, ":screen") || ev.Track.Kind != "video" {
			t.Fatalf("screen track %+v: want a video track in stream <id>:screen", ev.Track)
		}
		awaitSharing(t, p, a.ID(), true)
		// Both pictures arrive: the camera in the presenter's stream, the
		// screen in its own.
		testenv.Eventually(t, 10*time.Second, "camera and screen received", func() bool {
			return receivedVideo(p, a.ID(), false) != nil && receivedVideo(p, a.ID(), true) != nil
		})
	}

	// A host turning the presenter's camera off leaves the share alone:
	// the screen is the presenter's to stop.
	var screenPackets atomic.Int64
	scr := receivedVideo(c, a.ID(), true)
	go func() {
		for {
			if _, _, err := scr.ReadRTP(); err != nil {
				return
			}
			screenPackets.Add(1)
		}
	}()
	if err := b.Send(protocol.TypeMute, protocol.Mute{Kind: "video", Muted: true, Participant: a.ID()}); err != nil {
		t.Fatal(err)
	}
	a.awaitMatch(protocol.TypeMuted, "")
	from := screenPackets.Load()
	testenv.Eventually(t, 10*time.Second, "the screen still flowing after the camera was turned off", func() bool {
		return screenPackets.Load() > from+20
	})

	// Stopping the share clears the mark.
	if err := a.Send(protocol.TypeMute, protocol.Mute{Kind: protocol.SourceScreen, Muted: true}); err != nil {
		t.Fatal(err)
	}
	awaitSharing(t, b, a.ID(), false)

	// Nobody stops another's share.
	if err := b.Send(protocol.TypeMute, protocol.Mute{Kind: protocol.SourceScreen, Muted: true, Participant: a.ID()}); err != nil {
		t.Fatal(err)
	}
	b.awaitError(protocol.ErrBadRequest)
}

// awaitTrackEvent waits for a track-published of participant id whose
// track passes ok.
func awaitTrackEvent(t *testing.T, p *peer, id string, ok func(protocol.Track) bool) protocol.TrackEvent {
	t.Helper()
	var ev protocol.TrackEvent
	_, err := p.AwaitMatch(ctxT(t, 10*time.Second), func(e client.Event) bool {
		return e.Type == protocol.TypeTrackPublished && e.Decode(&ev) == nil && ev.Participant == id && ok(ev.Track)
	})
	if err != nil {
		t.Fatalf("waiting for a track of %s: %v", id, err)
	}
	return ev
}

// awaitSharing waits for a participant-updated of id with sharing as want.
func awaitSharing(t *testing.T, p *peer, id string, want bool) {
	t.Helper()
	_, err := p.AwaitMatch(ctxT(t, 10*time.Second), func(e client.Event) bool {
		var up protocol.ParticipantEvent
		return e.Type == protocol.TypeParticipantUpdated && e.Decode(&up) == nil && up.Participant.ID == id && up.Participant.Sharing == want
	})
	if err != nil {
		t.Fatalf("waiting for %s sharing=%v: %v", id, want, err)
	}
}

// receivedVideo is p's received video track of participant id: its
// screen, or its camera.
func receivedVideo(p *peer, id string, screen bool) *webrtc.TrackRemote {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.received {
		if r.Kind() != webrtc.RTPCodecTypeVideo || !strings.HasPrefix(r.StreamID(), id+":") {
			continue
		}
		if (r.StreamID() == id+":screen") == screen {
			return r
		}
	}
	return nil
}
