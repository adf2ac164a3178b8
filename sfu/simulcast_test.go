package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"

	"consult/sfu/internal/keyframe"
	"consult/sfu/internal/rtpx"
)

// simLayer makes one simulcast encoding's packets by hand, as a browser
// does: its own SSRC, sequence numbers, timestamp origin, 15-bit picture
// ids and TL0PICIDX; in VP8, or VP9 if vp9.
type simLayer struct {
	seq uint16
	ts  uint32
	pic uint16
	tl0 uint8
	vp9 bool
}

// frame is one frame of l as packets (a keyframe or not), each packet
// with the VP8 descriptor X|S (first) or X, then I, L and T; or the VP9
// descriptor I|P|L|B|E, the layer byte and TL0PICIDX.
func (l *simLayer) frame(key bool, packets int) [][]byte {
	l.pic = (l.pic + 1) & 0x7fff
	l.tl0++
	l.ts += 3000
	out := make([][]byte, 0, packets)
	for i := 0; i < packets; i++ {
		l.seq++
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: l.seq, Timestamp: l.ts,
			Marker: i == packets-1}, Payload: l.payload(key, i == 0, i == packets-1)}
		b, _ := p.Marshal()
		out = append(out, b)
	}
	return out
}

// payload is one packet's payload, descriptor first: the frame's first
// packet, its last, or one between.
func (l *simLayer) payload(key, first, last bool) []byte {
	if l.vp9 {
		flags := byte(0x80 | 0x20) // I, L
		if !key {
			flags |= 0x40 // P: inter-predicted
		}
		if first {
			flags |= 0x08 // B
		}
		if last {
			flags |= 0x04 // E
		}
		return []byte{flags, 0x80 | byte(l.pic>>8), byte(l.pic), 0x00, l.tl0, 7, 7, 7}
	}
	start := byte(0x80)
	if first {
		start = 0x90
	}
	desc := []byte{start, 0xe0, 0x80 | byte(l.pic>>8), byte(l.pic), l.tl0, 0x00}
	body := []byte{0x01, 0x02, 0x00, 7, 7, 7} // a delta frame's header (P bit set)
	if key && first {
		body = []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}
	}
	return append(desc, body...)
}

// simWriter records what a down-track sends, descriptor included.
type simWriter struct {
	vp9  bool
	pads int // padding-only packets
	seqs []uint16
	ts   []uint32
	pics []uint16
	tl0s []uint8
	keys []bool
}

func (w *simWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if len(payload) == 0 && h.Padding {
		w.pads++
		w.seqs, w.ts = append(w.seqs, h.SequenceNumber), append(w.ts, h.Timestamp)
		w.pics, w.tl0s = append(w.pics, 0), append(w.tl0s, 0)
		w.keys = append(w.keys, false)
		return 12 + int(h.PaddingSize), nil
	}
	var d rtpx.Picture
	parse, codec := rtpx.ParseVP8, keyframe.VP8
	if w.vp9 {
		parse, codec = rtpx.ParseVP9, keyframe.VP9
	}
	if !parse(payload, &d) {
		panic("bad descriptor sent")
	}
	w.seqs, w.ts = append(w.seqs, h.SequenceNumber), append(w.ts, h.Timestamp)
	w.pics, w.tl0s = append(w.pics, d.PictureID), append(w.tl0s, d.TL0PicIdx)
	w.keys = append(w.keys, keyframe.IsStart(codec, payload))
	return len(payload) + 12, nil
}

type simRig struct {
	up     *UpTrack
	down   *DownTrack
	w      *simWriter
	layers [3]*simLayer
}

func newSimRig() *simRig { return newSimRigOf("video/VP8") }

// newSimRigOf is newSimRig in VP8 or VP9 (mime).
func newSimRigOf(mime string) *simRig {
	vp9 := mime == "video/VP9"
	up := testUpTrack(TrackInfo{ID: "p:cam", Kind: "video", Codec: mime}, 3)
	up.simulcast = true
	d := newDownTrack(up, func(*DownTrack) {}, false)
	d.sel.Store(sel(noLayer, 0)) // the tests start on the lowest layer
	w := &simWriter{vp9: vp9}
	d.binding.Store(testBinding(up, 7, 96, w))
	up.addDown(d)
	// Unrelated origins, near the wrap of each field.
	return &simRig{up: up, down: d, w: w, layers: [3]*simLayer{
		{seq: 65530, ts: 4294960000, pic: 32760, tl0: 250, vp9: vp9},
		{seq: 1000, ts: 123456, pic: 5, tl0: 3, vp9: vp9},
		{seq: 40000, ts: 99, pic: 20000, tl0: 128, vp9: vp9},
	}}
}

// frame sends one frame on every layer, keyframes on those in keys.
func (r *simRig) frame(keys ...int) {
	for i, l := range r.layers {
		key := false
		for _, k := range keys {
			key = key || k == i
		}
		for _, b := range l.frame(key, 1+i) {
			r.up.forward(uint8(i), r.up.layer(uint8(i)), b)
			for {
				select {
				case it := <-r.down.queue:
					r.down.write(it)
					continue
				default:
				}
				break
			}
		}
	}
}

func (r *simRig) keyRequests(i int) uint64 { return r.up.layer(uint8(i)).kf.count() }

// Switching layers, up and down, the subscriber sees one stream: sequence
// numbers go on by one, timestamps never go back, picture ids and
// TL0PICIDX go on by one per frame. The switch waits for the new layer's
// keyframe, which is asked of that layer alone. In VP8 and in VP9.
func TestLayerSwitchesKeepOneContinuousStream(t *testing.T) {
	for _, mime := range []string{"video/VP8", "video/VP9"} {
		t.Run(mime[6:], func(t *testing.T) { testLayerSwitches(t, mime) })
	}
}

func testLayerSwitches(t *testing.T, mime string) {
	r := newSimRigOf(mime)
	// A subscriber starts on the middle layer, a tap on the best.
	if l := startLayer(r.up, false); l != 1 {
		t.Errorf("a subscriber starts on layer %d, want 1", l)
	}
	if cur, target := newDownTrack(r.up, func(*DownTrack) {}, true).Layer(); cur != noLayer || target != 0 {
		t.Errorf("a tap of layers that have sent nothing is on %d, wanting %d", cur, target)
	}
	r.frame() // no keyframe yet: nothing sent
	if len(r.w.seqs) != 0 {
		t.Fatal("started without a keyframe")
	}
	r.frame(0, 1, 2)
	for i := 0; i < 3; i++ {
		r.frame()
	}
	if cur, _ := r.down.Layer(); cur != 0 {
		t.Fatalf("forwarding layer %d, want 0", cur)
	}
	// Layer 0 sends one packet a frame: four frames so far.
	if len(r.w.seqs) != 4 {
		t.Fatalf("sent %d packets of layer 0, want 4", len(r.w.seqs))
	}

	asked := [3]uint64{r.keyRequests(0), r.keyRequests(1), r.keyRequests(2)}
	r.down.setTarget(2)
	if r.keyRequests(2) == asked[2] || r.keyRequests(0) != asked[0] || r.keyRequests(1) != asked[1] {
		t.Fatalf("keyframe requests per layer went from %v to %d %d %d", asked,
			r.keyRequests(0), r.keyRequests(1), r.keyRequests(2))
	}
	r.frame() // no keyframe of layer 2: still on layer 0
	if cur, target := r.down.Layer(); cur != 0 || target != 2 {
		t.Fatalf("on %d wanting %d before the keyframe", cur, target)
	}
	beforeSwitch := len(r.w.seqs)
	lastBefore := r.w.seqs[beforeSwitch-1]
	r.frame(2)
	if cur, _ := r.down.Layer(); cur != 2 {
		t.Fatalf("on layer %d after its keyframe, want 2", cur)
	}
	for i := 0; i < 3; i++ {
		r.frame()
	}
	// A NACK of a packet from before the switch maps to nothing; one
	// after it, to the new layer's packet.
	if _, ok := r.down.publisherSeq(lastBefore); ok {
		t.Error("a packet of the old layer maps into the new one")
	}
	last := r.w.seqs[len(r.w.seqs)-1]
	if it, ok := r.down.publisherSeq(last); !ok || it != item(2, r.layers[2].seq) {
		t.Errorf("the newest packet maps to %x (%v), want %x", it, ok, item(2, r.layers[2].seq))
	}

	r.down.setTarget(1)
	r.frame(1)
	r.frame()
	r.down.setTarget(0)
	r.frame(0)
	r.frame()
	if cur, _ := r.down.Layer(); cur != 0 {
		t.Fatalf("on layer %d at the end, want 0", cur)
	}

	w := r.w
	for i := 1; i < len(w.seqs); i++ {
		if w.seqs[i] != w.seqs[i-1]+1 {
			t.Fatalf("sequence numbers jump at %d: %d then %d", i, w.seqs[i-1], w.seqs[i])
		}
		if int32(w.ts[i]-w.ts[i-1]) < 0 {
			t.Fatalf("timestamps go back at %d: %d then %d", i, w.ts[i-1], w.ts[i])
		}
		newFrame := w.ts[i] != w.ts[i-1]
		step := (w.pics[i] - w.pics[i-1]) & 0x7fff
		if newFrame && step != 1 || !newFrame && step != 0 {
			t.Fatalf("picture ids at %d: %d then %d (new frame %v)", i, w.pics[i-1], w.pics[i], newFrame)
		}
		if tl := w.tl0s[i] - w.tl0s[i-1]; newFrame && tl != 1 || !newFrame && tl != 0 {
			t.Fatalf("TL0PICIDX at %d: %d then %d", i, w.tl0s[i-1], w.tl0s[i])
		}
	}
	// Each switch began at a keyframe: the first, and three more.
	keys := 0
	for _, k := range w.keys {
		if k {
			keys++
		}
	}
	// (In the switching frame, layer 0's packet went out before layer 2's
	// keyframe.)
	if keys != 4 || !w.keys[0] || !w.keys[beforeSwitch+1] {
		t.Errorf("%d keyframes sent (want 4, at the start and at each switch)", keys)
	}
}

// A layer that is not the one forwarded nor the one wanted costs a
// subscriber nothing: its packets are not even queued.
func TestOnlyTheLayersInUseAreQueued(t *testing.T) {
	r := newSimRig()
	r.frame(0, 1, 2)
	n := r.down.sent.Load()
	for i := 0; i < 5; i++ {
		for _, b := range r.layers[2].frame(false, 3) {
			r.up.forward(2, r.up.layer(2), b)
		}
	}
	if len(r.down.queue) != 0 || r.down.dropped.Load() != 0 || r.down.sent.Load() != n {
		t.Fatalf("packets of an unused layer reached the down-track: %d queued", len(r.down.queue))
	}
}

// simFanout is a three-layer track feeding n subscribers spread over
// the layers, with every frame's packets made beforehand.
type simFanout struct {
	up     *UpTrack
	downs  []*DownTrack
	frames [][3][][]byte // per frame, each layer's packets
}

func newSimFanout(n, frames int) *simFanout {
	up := testUpTrack(TrackInfo{ID: "p:cam", Kind: "video", Codec: "video/VP8"}, 3)
	r := &simFanout{up: up}
	for i := 0; i < n; i++ {
		d := newDownTrack(up, func(*DownTrack) {}, false)
		d.sel.Store(sel(noLayer, uint8(i%3)))
		d.binding.Store(testBinding(up, uint32(1000+i), 96, &countingWriter{}))
		up.addDown(d)
		r.downs = append(r.downs, d)
	}
	// A browser's 150 kbit/s, 500 kbit/s and 1.2 Mbit/s at 30 frames/s:
	// one, two and five packets a frame; a keyframe every 15 frames.
	ls := [3]*simLayer{{seq: 1}, {seq: 20000}, {seq: 40000}}
	sizes := [3]int{1, 2, 5}
	for f := 0; f < frames; f++ {
		var fr [3][][]byte
		for i, l := range ls {
			fr[i] = l.frame(f%15 == 0, sizes[i])
		}
		r.frames = append(r.frames, fr)
	}
	return r
}

// step forwards frame f on every layer and lets each down-track write
// what it queued; every 15th frame, a third of them change layer.
func (r *simFanout) step(f int) {
	if f%15 == 7 {
		for i, d := range r.downs {
			if i%3 == (f/15)%3 {
				_, t := d.Layer()
				d.setTarget((t + 1) % 3)
			}
		}
	}
	for i := range r.frames[f] {
		for _, b := range r.frames[f][i] {
			r.up.forward(uint8(i), r.up.layer(uint8(i)), b)
		}
	}
	for _, d := range r.downs {
		for len(d.queue) > 0 {
			d.write(<-d.queue)
		}
	}
}

// Forwarding simulcast, switching layers included, allocates nothing.
func TestLayerSwitchingDoesNotAllocate(t *testing.T) {
	const warm, runs = 30, 300
	r := newSimFanout(9, warm+runs+2)
	for f := 0; f < warm; f++ {
		r.step(f)
	}
	f := warm
	allocs := testing.AllocsPerRun(runs, func() { r.step(f); f++ })
	if allocs != 0 {
		t.Fatalf("forwarding simulcast allocates %.1f times per frame", allocs)
	}
	for i, d := range r.downs {
		if cur, _ := d.Layer(); cur == noLayer || d.sent.Load() < runs {
			t.Fatalf("subscriber %d on layer %d got %d packets", i, cur, d.sent.Load())
		}
	}
}

// BenchmarkFanoutSimulcast forwards a three-layer track to subscribers
// spread over its layers, a third of them switching every half second.
// One op is one frame on every layer (eight packets in).
func BenchmarkFanoutSimulcast(b *testing.B) {
	for _, n := range []int{3, 30} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			r := newSimFanout(n, 3000)
			for f := 0; f < 30; f++ {
				r.step(f)
			}
			b.ReportAllocs()
			f := 30
			for b.Loop() {
				r.step(f)
				if f++; f == len(r.frames) {
					b.StopTimer()
					r = newSimFanout(n, 3000)
					for f = 0; f < 30; f++ {
						r.step(f)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// A probe pads the stream between frames. The padding takes numbers of
// the subscriber's stream, so the layer's later packets are numbered
// after it, and a NACK still finds the packet it names, before the
// padding or after, and nothing for a padding number.
func TestProbePaddingKeepsNACKsMapped(t *testing.T) {
	r := newSimRig()
	r.frame(0, 1, 2)
	r.frame()
	r.down.probeBps.Store(2_000_000)
	r.down.padAt = nanotime() - int64(50*time.Millisecond) // 50 ms of it due at the next frame
	r.frame()
	// The frame's one packet, then padding.
	beforePad, beforeIn := r.w.seqs[len(r.w.seqs)-r.w.pads-1], r.layers[0].seq
	r.frame()
	if r.w.pads == 0 {
		t.Fatal("no padding sent while probing")
	}
	if r.down.padded.Load() != uint64(r.w.pads) {
		t.Errorf("padded counts %d, writer saw %d", r.down.padded.Load(), r.w.pads)
	}
	for i := 1; i < len(r.w.seqs); i++ {
		if r.w.seqs[i] != r.w.seqs[i-1]+1 {
			t.Fatalf("sequence numbers jump at %d: %d then %d", i, r.w.seqs[i-1], r.w.seqs[i])
		}
	}
	// The packet before the padding, the first padding packet, the last
	// packet sent.
	if it, ok := r.down.publisherSeq(beforePad); !ok || it != item(0, beforeIn) {
		t.Errorf("the packet before the padding maps to %x (%v), want %x", it, ok, item(0, beforeIn))
	}
	if _, ok := r.down.publisherSeq(beforePad + 1); ok {
		t.Error("a padding number maps to a packet")
	}
	// A retransmission of the packet before the padding goes out under
	// the number it had.
	n := len(r.w.seqs)
	r.down.write(item(0, beforeIn))
	if len(r.w.seqs) != n+1 || r.w.seqs[n] != beforePad {
		t.Fatalf("resent as %v, want %d", r.w.seqs[n:], beforePad)
	}
	r.down.probeBps.Store(0)
	pads := r.w.pads
	r.frame()
	r.frame()
	if r.w.pads != pads {
		t.Error("padding after the probe ended")
	}
	last := r.w.seqs[len(r.w.seqs)-1]
	if it, ok := r.down.publisherSeq(last); !ok || it != item(0, r.layers[0].seq) {
		t.Errorf("the newest packet maps to %x (%v), want %x", it, ok, item(0, r.layers[0].seq))
	}
}

// The sequence map finds each number's segment, and nothing before the
// history or in a gap between segments.
func TestSeqMapSegments(t *testing.T) {
	var m seqMap
	m.reset(1, 100, 65530)                                        // out 65530.. is in 65630..
	m.add(1, 95, 5, 5)                                            // after five padding numbers, 0 to 4
	if l, in, ok := m.toLayer(65531); !ok || l != 1 || in != 95 { // 65531+100, wrapped
		t.Errorf("65531 → %d %d %v", l, in, ok)
	}
	if l, in, ok := m.toLayer(6); !ok || l != 1 || in != 6+95 {
		t.Errorf("6 → %d %d %v", l, in, ok)
	}
	if _, _, ok := m.toLayer(2); ok {
		t.Error("a padding number maps")
	}
	if _, _, ok := m.toLayer(65529); ok {
		t.Error("a number before the history maps")
	}
	if out, ok := m.toOut(1, 95); !ok || out != 65531 {
		t.Errorf("back from the first segment: %d %v", out, ok)
	}
	if out, ok := m.toOut(1, 6+95); !ok || out != 6 {
		t.Errorf("back from the second segment: %d %v", out, ok)
	}
	if _, ok := m.toOut(0, 6+95); ok {
		t.Error("another layer's number maps")
	}
	for i := 0; i < 2*seqSegments; i++ {
		m.add(1, uint16(90-i), uint16(10+i), 0)
	}
	if _, _, ok := m.toLayer(6); ok {
		t.Error("a segment pushed out of the history still maps")
	}
}

// A layer the publisher only pads (a browser probing its uplink, or
// keeping a stopped layer's pacing) does not count as flowing, so no
// subscriber is left waiting on it.
func TestAPaddedLayerIsNotLive(t *testing.T) {
	r := newSimRig()
	now := time.Now()
	r.frame(0, 1, 2)
	if !r.up.live(2, time.Now()) {
		t.Fatal("a layer sending frames is not live")
	}
	r.up.layer(2).lastAt.Store(now.Add(-2 * time.Second).UnixNano())
	l := r.layers[2]
	for i := 0; i < 5; i++ {
		l.seq++
		p := rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PayloadType: 96, SequenceNumber: l.seq, Timestamp: l.ts},
			PaddingSize: 200}
		b, _ := p.Marshal()
		r.up.forward(2, r.up.layer(2), b)
	}
	if r.up.live(2, time.Now()) {
		t.Error("a layer sending padding alone counts as live")
	}
	if r.up.top(time.Now()) != 1 {
		t.Errorf("the best flowing layer is %d, want 1", r.up.top(time.Now()))
	}
}
