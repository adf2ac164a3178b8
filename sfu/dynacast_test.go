package sfu

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"go.uber.org/zap"
)

// sizedKeyframe is the first packet of a VP8 keyframe of w×h.
func sizedKeyframe(seq uint16, w, h int) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000},
		Payload: []byte{0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a,
			byte(w), byte(w >> 8), byte(h), byte(h >> 8), 0, 0, 0, 0}}
	b, _ := p.Marshal()
	return b
}

// wanted is one Events.LayersWanted call.
type wanted struct{ active, inactive []string }

// dynRig is a three-layer camera (320x180, 640x360, 1280x720 as its
// keyframes say) with two subscribers, and what its publisher is told.
type dynRig struct {
	up    *UpTrack
	downs [2]*DownTrack
	told  chan wanted
}

func newDynRig(t *testing.T) *dynRig {
	r := &dynRig{up: testUpTrack(TrackInfo{ID: "pub:cam", Kind: "video", Codec: "video/VP8"}, 3), told: make(chan wanted, 16)}
	r.up.dyn.onWanted = func(_ TrackInfo, active, inactive []string) { r.told <- wanted{active, inactive} }
	for i, s := range [][2]int{{320, 180}, {640, 360}, {1280, 720}} {
		r.up.forward(uint8(i), r.up.layer(uint8(i)), sizedKeyframe(uint16(100+i), s[0], s[1]))
	}
	for i := range r.downs {
		r.downs[i] = newDownTrack(r.up, func(*DownTrack) {}, false)
		r.up.addDown(r.downs[i])
	}
	t.Cleanup(r.up.stopDynacast)
	return r
}

// next waits for what the publisher is told next.
func (r *dynRig) next(t *testing.T, within time.Duration) wanted {
	t.Helper()
	select {
	case w := <-r.told:
		return w
	case <-time.After(within):
		t.Fatalf("the publisher was told nothing within %v", within)
	}
	return wanted{}
}

// quiet checks that every layer is still asked for (the record is kept
// at once; telling the publisher follows on a goroutine) and that nothing
// else has been told.
func (r *dynRig) quiet(t *testing.T) {
	t.Helper()
	r.up.dyn.mu.Lock()
	asked := r.up.dyn.asked
	r.up.dyn.mu.Unlock()
	if asked != maxLayers-1 {
		t.Fatalf("layers up to %d asked for, want all", asked)
	}
	select {
	case w := <-r.told:
		t.Fatalf("the publisher was told %v too soon", w)
	default:
	}
}

// A view needs the smallest layer not much smaller than the picture on
// screen; a hidden one the lowest; one of unknown size, or none, all.
func TestAViewNeedsTheLayerItsPictureShows(t *testing.T) {
	r := newDynRig(t)
	d := r.downs[0]
	for _, c := range []struct {
		v    *View
		want uint8
	}{
		{nil, 2},
		{&View{Width: 320, Height: 180, Visible: true}, 0},
		{&View{Width: 390, Height: 220, Visible: true}, 0}, // a fifth larger than q: it still does
		{&View{Width: 640, Height: 360, Visible: true}, 1},
		{&View{Width: 700, Height: 200, Visible: true}, 1}, // wide and short: the width decides
		{&View{Width: 1000, Height: 560, Visible: true}, 2},
		{&View{Width: 4000, Height: 3000, Visible: true}, 2},
		{&View{Width: 1280, Height: 720, Visible: false}, 0},
		{&View{Visible: true}, 2}, // not laid out yet
	} {
		if c.v != nil {
			d.view.Store(packView(*c.v))
		}
		if got := d.maxLayer(); got != c.want {
			t.Errorf("view %+v needs layer %d, want %d", c.v, got, c.want)
		}
	}
	// Until the layers' sizes are known, a view caps nothing.
	up := testUpTrack(TrackInfo{ID: "pub:cam2", Kind: "video", Codec: "video/VP8"}, 3)
	fresh := newDownTrack(up, func(*DownTrack) {}, false)
	fresh.view.Store(packView(View{Width: 160, Height: 90, Visible: true}))
	if got := fresh.maxLayer(); got != 2 {
		t.Errorf("with no sizes known a view needs layer %d, want 2", got)
	}
	// A tap takes the best whatever.
	tap := newDownTrack(r.up, func(*DownTrack) {}, true)
	tap.view.Store(packView(View{Visible: false}))
	if tap.maxLayer() != 2 {
		t.Error("a tap was capped by a view")
	}
}

// The publisher hears at once that a layer is needed again, and only
// after the hold that it is not: the lowest layer always stays on.
func TestThePublisherIsToldWhichLayersAreNeeded(t *testing.T) {
	r := newDynRig(t)
	small := packView(View{Width: 320, Height: 180, Visible: true})
	r.downs[0].view.Store(small)
	r.up.reviewLayers(false)
	r.quiet(t) // the other subscriber has said nothing: it may need all
	r.downs[1].view.Store(packView(View{Width: 640, Height: 360, Visible: true}))
	start := time.Now()
	r.up.reviewLayers(false)
	r.quiet(t) // held
	w := r.next(t, dynacastHold+2*time.Second)
	if held := time.Since(start); held < dynacastHold-100*time.Millisecond {
		t.Errorf("a layer went off after %v, before the %v hold", held, dynacastHold)
	}
	if !slices.Equal(w.active, []string{"q", "h"}) || !slices.Equal(w.inactive, []string{"f"}) {
		t.Fatalf("told %+v, want q and h on, f off", w)
	}

	// One tile made large: f back at once.
	r.downs[1].view.Store(packView(View{Width: 1280, Height: 720, Visible: true}))
	r.up.reviewLayers(false)
	if w := r.next(t, time.Second); !slices.Equal(w.active, []string{"q", "h", "f"}) || len(w.inactive) != 0 {
		t.Fatalf("told %+v, want every layer on", w)
	}

	// Shrunk and grown again within the hold: nothing changes for the
	// publisher.
	r.downs[1].view.Store(small)
	r.up.reviewLayers(false)
	r.downs[1].view.Store(packView(View{Width: 1280, Height: 720, Visible: true}))
	r.up.reviewLayers(false)
	r.quiet(t)

	// Both hidden, then one subscriber gone: the lowest layer alone, and
	// never nothing.
	r.downs[1].view.Store(packView(View{Visible: false}))
	r.up.reviewLayers(false)
	r.up.removeDown(r.downs[0])
	if w := r.next(t, dynacastHold+2*time.Second); !slices.Equal(w.active, []string{"q"}) || !slices.Equal(w.inactive, []string{"h", "f"}) {
		t.Fatalf("told %+v, want q alone", w)
	}
	// A new subscriber, which has not said how it shows the track: all on.
	r.up.addDown(newDownTrack(r.up, func(*DownTrack) {}, false))
	if w := r.next(t, time.Second); len(w.active) != 3 {
		t.Fatalf("told %+v for a new subscriber, want every layer on", w)
	}
}

// A keyframe of a new size (the publisher's browser shrank a layer) is a
// new need: a view that the layer no longer covers takes the next one.
func TestALayerThatShrinksChangesWhatAViewNeeds(t *testing.T) {
	r := newDynRig(t)
	r.downs[0].view.Store(packView(View{Width: 320, Height: 180, Visible: true}))
	if r.downs[0].maxLayer() != 0 {
		t.Fatal("q does not cover a tile of its own size")
	}
	r.up.forward(0, r.up.layer(0), sizedKeyframe(200, 160, 90))
	if got := r.downs[0].maxLayer(); got != 1 {
		t.Fatalf("after q shrank to 160x90 the view needs layer %d, want 1", got)
	}
}

// The allocator keeps a subscriber at or under what its view needs,
// however wide its downlink, and lets it climb again when the view grows.
func TestTheViewCapsTheLayerChoice(t *testing.T) {
	r := newLayerRig()
	for i, s := range []uint32{320<<16 | 180, 640<<16 | 360, 1280<<16 | 720} {
		r.video.up.layer(uint8(i)).size.Store(s)
	}
	r.video.view.Store(packView(View{Width: 300, Height: 170, Visible: true}))
	for i := 0; i < 20; i++ {
		r.tick(3_000_000, 0)
		if r.target() != 0 || r.video.probeBps.Load() != 0 {
			t.Fatalf("tick %d: layer %d, padding %d, with a view that needs q", i, r.target(), r.video.probeBps.Load())
		}
	}
	r.video.view.Store(packView(View{Width: 1280, Height: 720, Visible: true}))
	for i := 0; i < 60 && r.target() != 2; i++ {
		r.tick(3_000_000, 0)
	}
	if r.target() != 2 {
		t.Fatalf("the view grew and the layer stayed %d", r.target())
	}
}

// A view of a track the participant does not receive is refused.
func TestAViewOfAnUnknownTrackIsRefused(t *testing.T) {
	r := newDynRig(t)
	p := &Participant{log: zap.NewNop(), downs: map[*UpTrack]*DownTrack{r.up: r.downs[0]}}
	if err := p.View("pub:nope", View{Visible: true}); !errors.Is(err, ErrUnknownTrack) {
		t.Fatalf("View of an unknown track: %v", err)
	}
	if err := p.View("pub:cam", View{Width: 320, Height: 180, Visible: true}); err != nil {
		t.Fatal(err)
	}
	if r.downs[0].maxLayer() != 0 {
		t.Fatal("the view was not kept")
	}
}

// A layer the publisher has not started yet (a browser starts its top
// layer only once its own estimate allows) is named all the same, by the
// rid the web client gives it, so that it stays off.
func TestALayerNotStartedIsToldOffByItsName(t *testing.T) {
	up := testUpTrack(TrackInfo{ID: "pub:cam", Kind: "video", Codec: "video/VP8"}, 2)
	told := make(chan wanted, 4)
	up.dyn.onWanted = func(_ TrackInfo, active, inactive []string) { told <- wanted{active, inactive} }
	t.Cleanup(up.stopDynacast)
	up.forward(0, up.layer(0), sizedKeyframe(1, 320, 180))
	d := newDownTrack(up, func(*DownTrack) {}, false)
	d.view.Store(packView(View{Width: 320, Height: 180, Visible: true}))
	up.addDown(d)
	select {
	case w := <-told:
		if !slices.Equal(w.active, []string{"q"}) || !slices.Equal(w.inactive, []string{"h", "f"}) {
			t.Fatalf("told %+v, want q on, h and f off", w)
		}
	case <-time.After(dynacastHold + 2*time.Second):
		t.Fatal("the publisher was told nothing")
	}
}

// A stream held to the low layer by its view is small, and GCC's estimate
// of a small stream sinks to its floor: that and queueing on the audio
// (a busy machine's scheduler looks like a queue) do not pause the
// picture. Only loss would.
func TestAViewHeldPictureIsNotPausedForALowEstimate(t *testing.T) {
	r := newLayerRig()
	for i, s := range []uint32{320<<16 | 180, 640<<16 | 360, 1280<<16 | 720} {
		r.video.up.layer(uint8(i)).size.Store(s)
	}
	r.video.view.Store(packView(View{Width: 300, Height: 170, Visible: true}))
	var aseq uint32
	for i := 0; i < 40; i++ {
		aseq += 50
		r.audio.link.update(rtcp.ReceptionReport{Jitter: 2400, LastSequenceNumber: aseq}, r.now, 48000) // 50 ms
		r.tick(60_000, 0)
		if r.video.paused.Load() {
			t.Fatalf("tick %d: the picture held small by its view was paused on a low estimate", i)
		}
	}
	if r.target() != 0 {
		t.Fatalf("on layer %d, want the low one", r.target())
	}
}
