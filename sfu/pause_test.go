package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"consult/sfu/internal/keyframe"
)

// seqWriter records what a down-track sends.
type seqWriter struct {
	seqs []uint16
	keys []bool // whether each packet starts a keyframe
}

func (w *seqWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.seqs = append(w.seqs, h.SequenceNumber)
	w.keys = append(w.keys, keyframe.IsStart(keyframe.VP8, payload))
	return len(payload), nil
}

// pauseRig is one VP8 up-track and one down-track written inline.
type pauseRig struct {
	up   *UpTrack
	down *DownTrack
	w    *seqWriter
	pk   rtp.Packetizer
	sent []uint16 // the publisher's sequence numbers, in order
}

func newPauseRig() *pauseRig {
	up := testUpTrack(TrackInfo{ID: "p:v", Kind: "video", Codec: "video/VP8"}, 1)
	d := newDownTrack(up, func(*DownTrack) {}, false)
	w := &seqWriter{}
	d.binding.Store(testBinding(up, 1, 96, w))
	up.addDown(d)
	seq := rtp.NewFixedSequencer(65500) // wraps during the test
	return &pauseRig{up: up, down: d, w: w,
		pk: rtp.NewPacketizer(1200, 96, 42, &codecs.VP8Payloader{EnablePictureID: true}, seq, 90000)}
}

// frame sends one frame (a keyframe or not) through the up-track.
func (r *pauseRig) frame(key bool) {
	data := append([]byte{0x11, 0x02, 0x00}, make([]byte, 1500)...)
	if key {
		data = vp8Key
	}
	for _, p := range r.pk.Packetize(data, 3000) {
		b, _ := p.Marshal()
		r.sent = append(r.sent, p.SequenceNumber)
		r.up.forward(0, r.up.layer(0), b)
		r.drain()
	}
}

// small sends a one-packet delta frame.
func (r *pauseRig) small() {
	p := r.pk.Packetize([]byte{0x11, 0x02, 0x00, 1, 2, 3, 4, 5}, 3000)[0]
	b, _ := p.Marshal()
	r.sent = append(r.sent, p.SequenceNumber)
	r.up.forward(0, r.up.layer(0), b)
	r.drain()
}

func (r *pauseRig) drain() {
	for {
		select {
		case seq := <-r.down.queue:
			r.down.write(seq)
		default:
			return
		}
	}
}

// A paused track sends nothing; resumed, it waits for a keyframe and
// goes on from the next sequence number, so the subscriber sees no gap.
func TestAPausedTrackResumesAtAKeyframeWithoutAGap(t *testing.T) {
	r := newPauseRig()
	r.frame(true)
	for i := 0; i < 5; i++ {
		r.frame(false)
	}
	before := len(r.w.seqs)
	r.down.paused.Store(true)
	for i := 0; i < 20; i++ {
		r.frame(i == 10)
	}
	if len(r.w.seqs) != before {
		t.Fatalf("a paused track sent %d packets", len(r.w.seqs)-before)
	}
	r.down.paused.Store(false)
	asked := r.up.layer(0).kf.sent
	r.frame(false) // not a keyframe: dropped, and one is asked for
	if len(r.w.seqs) != before {
		t.Fatal("resumed on a delta frame")
	}
	if r.up.layer(0).kf.sent == asked {
		t.Error("no keyframe asked for on resuming")
	}
	r.frame(true)
	r.frame(false)
	if !r.w.keys[before] {
		t.Fatal("the first packet after the pause does not start a keyframe")
	}
	for i := 1; i < len(r.w.seqs); i++ {
		if r.w.seqs[i] != r.w.seqs[i-1]+1 {
			t.Fatalf("gap in the subscriber's sequence numbers at %d: %d then %d", i, r.w.seqs[i-1], r.w.seqs[i])
		}
	}

	// A NACK names the subscriber's numbers: those sent since the pause
	// map to the publisher's packets, those from before it to nothing.
	last := r.w.seqs[len(r.w.seqs)-1]
	if in, ok := r.down.publisherSeq(last); !ok || in != uint32(r.sent[len(r.sent)-1]) {
		t.Errorf("subscriber's %d maps to %d (%v), want the publisher's %d", last, in, ok, r.sent[len(r.sent)-1])
	}
	if _, ok := r.down.publisherSeq(r.w.seqs[before-1]); ok {
		t.Error("a packet from before the pause maps to one after it")
	}
	// And a retransmission from before the pause is not sent again under
	// the new numbering.
	n := len(r.w.seqs)
	r.down.write(uint32(r.sent[2]))
	if len(r.w.seqs) != n {
		t.Error("a packet from before the pause was sent again")
	}
}

// Pausing and resuming costs the forwarding path no allocation.
func TestPausingDoesNotAllocate(t *testing.T) {
	r := newPauseRig()
	pkts := marshalAll(r.pk.Packetize(vp8Key, 3000))
	delta := marshalAll(r.pk.Packetize(append([]byte{0x11, 0x02, 0x00}, make([]byte, 1500)...), 3000))
	i, seq := 0, uint16(0)
	allocs := testing.AllocsPerRun(500, func() {
		r.down.paused.Store(i%50 < 10)
		src := delta
		if i%25 == 0 {
			src = pkts
		}
		for _, b := range src {
			seq++ // fresh numbers each time, written in place
			b[2], b[3] = byte(seq>>8), byte(seq)
			r.up.forward(0, r.up.layer(0), b)
			r.drain()
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per frame", allocs)
	}
}

// A call longer than half the sequence space (32 768 packets: minutes of
// video) keeps forwarding, fresh packets and retransmissions alike.
func TestALongStreamKeepsForwarding(t *testing.T) {
	r := newPauseRig()
	r.frame(true)
	for i := 0; i < 40000; i++ {
		r.small()
	}
	if len(r.w.seqs) != len(r.sent) {
		t.Fatalf("forwarded %d of %d packets", len(r.w.seqs), len(r.sent))
	}
	last := r.w.seqs[len(r.w.seqs)-1]
	if in, ok := r.down.publisherSeq(last - 5); !ok || in != uint32(r.sent[len(r.sent)-6]) {
		t.Fatalf("a NACK for a recent packet maps to %d (%v)", in, ok)
	}
	n := len(r.w.seqs)
	r.down.write(uint32(r.sent[len(r.sent)-6])) // a retransmission
	if len(r.w.seqs) != n+1 {
		t.Fatal("a retransmission of a recent packet was not sent")
	}
}

// A resent packet of the last keyframe before a pause, arriving after the
// resume, does not restart the stream in the past: it waits for a fresh
// keyframe.
func TestAResumeWaitsForAFreshKeyframe(t *testing.T) {
	r := newPauseRig()
	r.frame(true)
	oldKey := r.sent[0]
	r.frame(false)
	r.down.paused.Store(true)
	r.frame(false)
	r.down.paused.Store(false)
	n := len(r.w.seqs)
	r.down.write(uint32(oldKey))
	if len(r.w.seqs) != n {
		t.Fatal("resumed on an old keyframe resent")
	}
	r.frame(true)
	if len(r.w.seqs) == n || !r.w.keys[n] || r.w.seqs[n] != r.w.seqs[n-1]+1 {
		t.Fatalf("after a fresh keyframe: %v", r.w.seqs[n-1:])
	}
}

// While a paused track is probed before its retry (allocate.go), padding
// goes out though no frame does; resumed, the track's numbers go on
// after the padding, with no gap. To a subscriber with RTX, the padding
// goes on the RTX stream instead.
func TestAPausedTrackProbesWithPadding(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		r := newPauseRig()
		w := &wireWriter{}
		b := testBinding(r.up, 1, 96, w)
		padOn := uint32(1)
		if rtx {
			b.rtxSSRC, b.rtxPT[codecVP8], padOn = 2, 97, 2
		}
		r.down.binding.Store(b)
		r.frame(true)
		r.frame(false)
		r.down.paused.Store(true)
		r.frame(false)
		before := len(w.pkts)
		if before == 0 {
			t.Fatal("nothing sent before the pause")
		}
		r.down.probeBps.Store(2_000_000)
		r.down.padAt = nanotime() - int64(50*time.Millisecond) // 50 ms of it due
		r.frame(false)
		pads := w.pkts[before:]
		if len(pads) == 0 {
			t.Fatalf("rtx %v: no padding while probing a paused track", rtx)
		}
		for _, p := range pads {
			if !p.pad || p.ssrc != padOn {
				t.Fatalf("rtx %v: a paused track sent media, or padding on SSRC %d", rtx, p.ssrc)
			}
		}
		r.down.probeBps.Store(0)
		r.down.paused.Store(false)
		r.frame(true)
		r.frame(false)
		media := w.of(1)
		for i := 1; i < len(media); i++ {
			if media[i].seq != media[i-1].seq+1 {
				t.Fatalf("rtx %v: numbers jump at %d: %d then %d", rtx, i, media[i-1].seq, media[i].seq)
			}
		}
		if len(w.pkts) == before+len(pads) {
			t.Fatalf("rtx %v: nothing sent after the resume", rtx)
		}
	}
}
