package sfu

import (
	"errors"
	"sync"
	"time"

	"consult/sfu/internal/keyframe"
	"consult/sfu/internal/rtpx"

	"go.uber.org/zap"
)

// Adaptive stream and dynacast. A subscriber says how it shows each video
// track (View: the size of the picture on its screen, and whether it can
// be seen at all), and its down-track takes no layer larger than that
// needs: a small tile gets the quarter-size layer however wide the
// downlink is, and a hidden one (an off-screen tile, a tab in the
// background) the lowest. The sizes of the layers come from the VP8
// keyframes themselves, so they are right whatever the publisher's
// browser did to them (it shrinks them under CPU load).
//
// In turn the publisher is told which layers somebody needs (dynacast):
// a layer above every subscriber's need is turned off at the publisher's
// browser, which saves its CPU and uplink, both scarce on a phone. A
// layer is turned back on as soon as one subscriber needs it, and off
// only once nobody has needed it for dynacastHold, so that a tile being
// resized does not make the publisher start and stop encoders. The lowest
// layer always stays on: a new subscriber has a picture at once.

// dynacastHold is how long a layer nobody needs stays on.
const dynacastHold = 3 * time.Second

// enoughOf is how much smaller than the picture on screen a layer may be
// and still do: scaled up by a quarter, a picture looks no worse.
const enoughOf = 0.8

// View is how a subscriber shows a video track: the picture's size on its
// screen, in device pixels (0 when not known yet), and whether it can be
// seen.
type View struct {
	Width, Height int
	Visible       bool
}

// ErrUnknownTrack is returned for a View of a track the participant does
// not receive.
var ErrUnknownTrack = errors.New("sfu: no such track received")

// The view is one atomic word: bit 40 set once a view is given, bit 32
// visible, bits 16-31 the width, 0-15 the height.
const (
	viewSet     = 1 << 40
	viewVisible = 1 << 32
)

func packView(v View) uint64 {
	w, h := uint64(min(max(v.Width, 0), 0xffff)), uint64(min(max(v.Height, 0), 0xffff))
	x := uint64(viewSet) | w<<16 | h
	if v.Visible {
		x |= viewVisible
	}
	return x
}

// View sets how the participant shows a track it receives. It takes effect
// at the allocator's next tick, and the publisher hears of a change of
// the layers needed.
func (p *Participant) View(track string, v View) error {
	var d *DownTrack
	p.mu.Lock()
	for up, x := range p.downs {
		if up.info.ID == track {
			d = x
			break
		}
	}
	p.mu.Unlock()
	if d == nil {
		return ErrUnknownTrack
	}
	if d.view.Swap(packView(v)) != packView(v) {
		d.up.reviewLayers(false)
	}
	return nil
}

// maxLayer is the highest layer d's view needs: every layer when it has
// not said, or the sizes are not known; the lowest when it cannot be
// seen; else the smallest layer not much smaller than the picture.
func (d *DownTrack) maxLayer() uint8 {
	v := d.view.Load()
	if d.tap || v&viewSet == 0 {
		return maxLayers - 1
	}
	if v&viewVisible == 0 {
		return 0
	}
	w, h := float64(v>>16&0xffff), float64(v&0xffff)
	if w == 0 || h == 0 {
		return maxLayers - 1
	}
	for i := uint8(0); i < maxLayers-1; i++ {
		l := d.up.layer(i)
		if l == nil {
			continue
		}
		s := l.size.Load()
		if s == 0 {
			return maxLayers - 1
		}
		if float64(s>>16) >= enoughOf*w && float64(s&0xffff) >= enoughOf*h {
			return i
		}
	}
	return maxLayers - 1
}

// observeSize keeps a VP8 layer's picture size from its keyframes; a
// change of size changes what the views need.
func (t *UpTrack) observeSize(l *layer, pkt []byte) {
	// Only the first packet of a keyframe has the size, and a keyframe's
	// first partition starts with the S bit: most packets stop at the
	// header's length.
	var h rtpx.Header
	if rtpx.Parse(pkt, &h) != nil || h.PayloadEnd-h.PayloadStart < 10 {
		return
	}
	w, ht, ok := keyframe.VP8Size(pkt[h.PayloadStart:h.PayloadEnd])
	if !ok {
		return
	}
	if s := uint32(w)<<16 | uint32(ht); l.size.Swap(s) != s {
		go t.reviewLayers(false)
	}
}

// dynacast is an up-track's record of the layers asked of the publisher.
type dynacast struct {
	mu    sync.Mutex
	asked uint8 // the highest layer asked for (newUpTrack: all of them)
	timer *time.Timer
	// onWanted tells the publisher which layers to send
	// (Events.LayersWanted). It is called from a goroutine of its own with
	// no lock held (a review can come from a caller holding its own
	// locks, as a recorder tapping the track does), one call at a time,
	// and only the latest of the changes made meanwhile.
	onWanted func(t TrackInfo, active, inactive []string)
	pending  *wantedLayers // the latest change not yet told
	telling  bool          // a goroutine is telling the publisher
}

type wantedLayers struct{ active, inactive []string }

// reviewLayers works out the highest layer a subscriber needs and tells
// the publisher when that changed: at once for more, after dynacastHold
// for fewer (settle: the hold has passed).
func (t *UpTrack) reviewLayers(settle bool) {
	if !t.simulcast || t.dyn.onWanted == nil {
		return
	}
	t.dyn.mu.Lock()
	defer t.dyn.mu.Unlock()
	if t.closed.Load() {
		return
	}
	want := uint8(0)
	for _, d := range *t.downs.Load() {
		want = max(want, d.maxLayer())
	}
	if want < t.dyn.asked && !settle {
		if t.dyn.timer == nil {
			t.dyn.timer = time.AfterFunc(dynacastHold, func() {
				t.dyn.mu.Lock()
				t.dyn.timer = nil
				t.dyn.mu.Unlock()
				t.reviewLayers(true)
			})
		}
		return
	}
	if t.dyn.timer != nil { // needed again before the hold ran out
		t.dyn.timer.Stop()
		t.dyn.timer = nil
	}
	if want == t.dyn.asked {
		return
	}
	t.dyn.asked = want
	// Every slot, by its layer's rid, or by the name the web client gives
	// it if it has not arrived: a browser sends a layer only once its own
	// estimate allows, and a layer not started yet must be named to be
	// kept off.
	var active, inactive []string
	for i := uint8(0); i < maxLayers; i++ {
		rid := ridNames[i]
		if l := t.layer(i); l != nil {
			rid = l.rid
		}
		if i <= want {
			active = append(active, rid)
		} else {
			inactive = append(inactive, rid)
		}
	}
	t.log.Debug("layers wanted", zap.Strings("active", active), zap.Strings("inactive", inactive))
	t.dyn.pending = &wantedLayers{active, inactive}
	if !t.dyn.telling {
		t.dyn.telling = true
		go t.tellPublisher()
	}
}

// tellPublisher hands the publisher the latest change until none is left.
func (t *UpTrack) tellPublisher() {
	for {
		t.dyn.mu.Lock()
		w := t.dyn.pending
		t.dyn.pending = nil
		if w == nil {
			t.dyn.telling = false
		}
		t.dyn.mu.Unlock()
		if w == nil {
			return
		}
		t.dyn.onWanted(t.info, w.active, w.inactive)
	}
}

// stopDynacast ends a pending review (the track closed).
func (t *UpTrack) stopDynacast() {
	t.dyn.mu.Lock()
	if t.dyn.timer != nil {
		t.dyn.timer.Stop()
		t.dyn.timer = nil
	}
	t.dyn.mu.Unlock()
}
