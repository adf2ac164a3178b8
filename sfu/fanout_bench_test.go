package sfu

import (
	"fmt"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// countingWriter stands in for a subscriber's SRTP stream.
type countingWriter struct{ packets, bytes int }

func (w *countingWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.packets++
	w.bytes += len(payload)
	return len(payload), nil
}
func (w *countingWriter) Write(b []byte) (int, error) { return len(b), nil }

// fanoutRig is one up-track feeding n down-tracks whose writers are
// drained inline, so the benchmark measures exactly the forwarding work.
type fanoutRig struct {
	up      *UpTrack
	downs   []*DownTrack
	writers []*countingWriter
	pkts    [][]byte
}

func newFanoutRig(n int) *fanoutRig {
	up := testUpTrack(TrackInfo{ID: "p:v", Kind: "video", Codec: "video/VP8"}, 1)
	r := &fanoutRig{up: up}
	for i := 0; i < n; i++ {
		d := newDownTrack(up, func(*DownTrack) {}, false)
		w := &countingWriter{}
		d.binding.Store(testBinding(up, uint32(1000+i), 96, w))
		up.addDown(d)
		r.downs = append(r.downs, d)
		r.writers = append(r.writers, w)
	}
	// A keyframe then delta frames, packetised as a browser would: about
	// 1.5 Mbit/s at 30 frames/s is ~6 KB a frame, five 1200-byte packets.
	pay := &codecs.VP8Payloader{EnablePictureID: true}
	pk := rtp.NewPacketizer(1200, 96, 42, pay, rtp.NewRandomSequencer(), 90000)
	r.pkts = append(r.pkts, marshalAll(pk.Packetize(vp8Key, 3000))...)
	for i := 0; i < 30; i++ {
		frame := append([]byte{0x11, 0x02, 0x00}, make([]byte, 6000)...)
		r.pkts = append(r.pkts, marshalAll(pk.Packetize(frame, 3000))...)
	}
	return r
}

func marshalAll(ps []*rtp.Packet) [][]byte {
	out := make([][]byte, len(ps))
	for i, p := range ps {
		out[i], _ = p.Marshal()
	}
	return out
}

// step forwards one packet and lets every down-track write it.
func (r *fanoutRig) step(i int) {
	pkt := r.pkts[i%len(r.pkts)]
	r.up.forward(0, r.up.layer(0), pkt)
	for _, d := range r.downs {
		select {
		case seq := <-d.queue:
			d.write(seq)
		default:
		}
	}
}

func TestForwardingPathDoesNotAllocate(t *testing.T) {
	r := newFanoutRig(10)
	for i := 0; i < len(r.pkts); i++ { // warm up: pass the keyframe gate
		r.step(i)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() { r.step(i); i++ })
	if allocs != 0 {
		t.Fatalf("forwarding allocates %.1f times per packet", allocs)
	}
	if r.writers[9].packets < 1000 {
		t.Fatalf("subscriber got %d packets", r.writers[9].packets)
	}
}

// BenchmarkFanout forwards packets from one publisher to N subscribers.
// One op is one incoming packet written to all N subscribers.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			r := newFanoutRig(n)
			for i := 0; i < len(r.pkts); i++ {
				r.step(i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.step(i)
				i++
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pkts-out/s")
		})
	}
}
