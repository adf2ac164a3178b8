package signaling_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
)

// layersTold collects the layers messages a publisher gets.
type layersTold chan protocol.Layers

// await waits for a layers message with exactly the active rids want.
func (l layersTold) await(t *testing.T, what string, within time.Duration, want ...string) time.Time {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-l:
			if slices.Equal(m.Active, want) {
				return time.Now()
			}
			t.Logf("layers told: active %v, inactive %v", m.Active, m.Inactive)
		case <-deadline:
			t.Fatalf("%s: the publisher was not told to send %v within %v", what, want, within)
		}
	}
}

// Views and dynacast on loopback: the doctor publishes three layers to
// the patient and a family member. Both show the doctor small: both get
// the low layer, and the doctor is told, after the hold, that only the
// low layer is needed. The family member enlarges the doctor: the doctor
// is told at once to send every layer, and the family member climbs off
// the low layer while the patient, whose page went to the background,
// stays on it. A view of a track nobody sends is an error for that
// member alone.
func TestViewsChooseTheLayersAndTellThePublisher(t *testing.T) {
	e := startServer(t, nil)
	sp := newSimPublisher()
	told := make(layersTold, 32)
	doctor := e.dialWith(t, nil, func(c *client.Config) {
		c.OnLayerKeyframeRequest = sp.onKeyframe
		c.OnLayers = func(l protocol.Layers) { told <- l }
	})
	if _, err := doctor.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "views", Name: "Dr", Live: true}); err != nil {
		t.Fatal(err)
	}
	sp.start(t, doctor)
	patient, _ := e.join(t, "views", "Pat", true)
	family, _ := e.join(t, "views", "Fam", true)
	patTrack := patient.awaitTrackKind(t, webrtc.RTPCodecTypeVideo)
	famTrack := family.awaitTrackKind(t, webrtc.RTPCodecTypeVideo)
	patVideo, famVideo := logFrames(patTrack), logFrames(famTrack)
	testenv.Eventually(t, 10*time.Second, "both receive the doctor's picture", func() bool {
		return !patVideo.first().IsZero() && !famVideo.first().IsZero()
	})

	// Both show the doctor in a small tile (a quarter-size layer fills it).
	small := time.Now()
	for _, p := range []*peer{patient, family} {
		if err := p.View(patTrack.ID(), 300, 170, true); err != nil {
			t.Fatal(err)
		}
	}
	patVideo.awaitLayer(t, "the patient on the low layer", 'q', 10, 10*time.Second)
	famVideo.awaitLayer(t, "the family member on the low layer", 'q', 10, 10*time.Second)
	at := told.await(t, "both tiles small", 10*time.Second, "q")
	t.Logf("told to send the low layer alone %v after the views", at.Sub(small))
	if at.Sub(small) < 2*time.Second {
		t.Errorf("layers turned off %v after the views: no hold", at.Sub(small))
	}

	// The family member enlarges the doctor; the patient's page goes to
	// the background.
	if err := patient.View(patTrack.ID(), 1280, 720, false); err != nil {
		t.Fatal(err)
	}
	large := time.Now()
	if err := family.View(famTrack.ID(), 1280, 720, true); err != nil {
		t.Fatal(err)
	}
	told.await(t, "a tile enlarged", 2*time.Second, "q", "h", "f")
	testenv.Eventually(t, 30*time.Second, "the family member off the low layer", func() bool {
		fr := famVideo.since(large)
		return len(fr) >= 10 && !slices.ContainsFunc(fr[len(fr)-10:], func(f frameSeen) bool { return f.layer == 'q' })
	})
	t.Logf("the family member left the low layer %v after enlarging", time.Since(large))
	if _, layers := freeze(patVideo.since(large), large, time.Now()); layers['h']+layers['f'] > 0 {
		t.Errorf("the patient's hidden tile got larger layers: %v", layers)
	}

	// Bad views: for that member only.
	if err := patient.View("nobody:cam", 640, 360, true); err != nil {
		t.Fatal(err)
	}
	patient.awaitError(protocol.ErrNotFound)
	if err := patient.Send(protocol.TypeTrackView, map[string]any{"track": patTrack.ID(), "width": -5}); err != nil {
		t.Fatal(err)
	}
	patient.awaitError(protocol.ErrBadRequest)
	n := len(famVideo.since(time.Time{}))
	testenv.Eventually(t, 5*time.Second, "the family member's picture goes on", func() bool {
		return len(famVideo.since(time.Time{})) > n+10
	})
}
