package sfu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// feedbackOf is a transport-cc feedback naming packets base, base+1, …
// received at the given times (µs since the feedback's reference time);
// a negative time is a packet not received.
func feedbackOf(base uint16, ref uint32, arrivals ...int64) *rtcp.TransportLayerCC {
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: base, PacketStatusCount: uint16(len(arrivals)), ReferenceTime: ref}
	syms := make([]uint16, 0, len(arrivals))
	last := int64(0)
	for _, at := range arrivals {
		if at < 0 {
			syms = append(syms, rtcp.TypeTCCPacketNotReceived)
			continue
		}
		syms = append(syms, rtcp.TypeTCCPacketReceivedLargeDelta)
		fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: at - last})
		last = at
	}
	fb.PacketChunks = []rtcp.PacketStatusChunk{&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: syms}}
	return fb
}

// A probe's queue watch: packets that arrive as fast as they left (the
// clocks 5 s apart) show no queue; one late packet in a feedback is a
// hiccup, not a queue; a queue that delays every packet by probeQueue
// ends the probe at the second feedback in a row that shows it, and one
// such feedback alone does not.
func TestQueueWatchEndsAProbeOnAGrowingQueue(t *testing.T) {
	start := time.Unix(1000, 0)
	q := newQueueWatch(start)
	const offset = 5_000_000 // µs: the subscriber's clock is 5 s ahead
	send := func(seq uint16, atUS int64) { q.sent(seq, start.UnixNano()+atUS*1000) }
	// Feedback every 100 ms, 10 packets each, 10 ms apart; delay adds
	// queueing to every packet of feedback i.
	seq := uint16(65530) // the numbers wrap on the way
	feedback := func(i int, delay func(k int) int64) bool {
		base := seq
		ref := uint32((offset + int64(i)*100_000) / 64000)
		refUS := int64(ref) * 64000
		arrivals := make([]int64, 10)
		for k := range arrivals {
			sentAt := int64(i)*100_000 + int64(k)*10_000
			send(seq, sentAt)
			seq++
			arrivals[k] = offset + sentAt + 20_000 + delay(k) - refUS
		}
		return q.feedback(feedbackOf(base, ref, arrivals...))
	}
	none := func(int) int64 { return 0 }
	for i := range 5 {
		if feedback(i, none) {
			t.Fatalf("feedback %d with no queue ended the probe", i)
		}
	}
	spike := func(k int) int64 {
		if k == 3 {
			return 200_000
		}
		return 0
	}
	if feedback(5, spike) || feedback(6, spike) || feedback(7, spike) {
		t.Fatal("one late packet a feedback ended the probe")
	}
	queued := func(int) int64 { return probeQueue.Microseconds() + 5_000 }
	if feedback(8, queued) {
		t.Fatal("one feedback over the bound ended the probe")
	}
	if feedback(9, none) {
		t.Fatal("the queue gone, the probe ended")
	}
	if feedback(10, queued) {
		t.Fatal("a feedback over the bound after one under it ended the probe")
	}
	if !feedback(11, queued) {
		t.Fatal("two feedbacks in a row with the queue past the bound did not end the probe")
	}
	// A queue just short of the bound goes on.
	q2 := newQueueWatch(start)
	q, seq = q2, 100
	short := func(int) int64 { return probeQueue.Microseconds() - 5_000 }
	feedback(0, none)
	for i := 1; i < 5; i++ {
		if feedback(i, short) {
			t.Fatalf("a queue under the bound ended the probe (feedback %d)", i)
		}
	}
}

// What the watch did not record tells it nothing: packets sent before
// the probe, a slot holding another number, lost packets, and a
// feedback that lists fewer deltas than it says were received.
func TestQueueWatchIgnoresWhatItDidNotRecord(t *testing.T) {
	start := time.Unix(1000, 0)
	q := newQueueWatch(start)
	q.sent(5, start.UnixNano()+int64(time.Second))
	if _, ok := q.sentAt(5 + queueSlots); ok {
		t.Fatal("a slot answered for another number")
	}
	if _, ok := q.sentAt(6); ok {
		t.Fatal("an empty slot answered")
	}
	if at, ok := q.sentAt(5); !ok || at != 1_000_000 {
		t.Fatalf("sent at %v, %v; want 1 s", at, ok)
	}
	if q.feedback(feedbackOf(10, 0, 1000, 2000, -1)) || q.floor != 1<<63-1 {
		t.Fatalf("unrecorded packets set the floor to %d", q.floor)
	}
	short := feedbackOf(5, 0, 3_000_000, 3_001_000)
	short.RecvDeltas = short.RecvDeltas[:1]
	short.RecvDeltas = append(short.RecvDeltas, nil)
	q.feedback(short)
	q.feedback(&rtcp.TransportLayerCC{BaseSequenceNumber: 5, PacketStatusCount: 3})
	if q.floor != 2_000_000 {
		t.Fatalf("floor %d µs, want 2 s (the one packet recorded and named)", q.floor)
	}
}

// The stream writer stamps send times into the probe's watch while a
// probe is on, and only then, and passes every packet on unchanged.
func TestSendStampRecordsWhileAProbeIsOn(t *testing.T) {
	e := &twccOnly{}
	var got []uint16
	next := interceptor.RTPWriterFunc(func(h *rtp.Header, _ []byte, _ interceptor.Attributes) (int, error) {
		got = append(got, h.SequenceNumber)
		return 0, nil
	})
	w := &sendStamp{e: e, id: 3, next: next}
	write := func(seq, twcc uint16) {
		h := &rtp.Header{Version: 2, SequenceNumber: seq}
		var x [2]byte
		binary.BigEndian.PutUint16(x[:], twcc)
		if err := h.SetExtension(3, x[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(h, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 500)
	pr := &probe{queue: newQueueWatch(time.Now())}
	e.probe.Store(pr)
	write(2, 501)
	e.probe.Store(nil)
	write(3, 502)
	if len(got) != 3 {
		t.Fatalf("%d packets passed on, want 3", len(got))
	}
	if _, ok := pr.queue.sentAt(500); ok {
		t.Error("a packet sent before the probe was recorded")
	}
	if _, ok := pr.queue.sentAt(501); !ok {
		t.Error("a packet sent during the probe was not recorded")
	}
	if _, ok := pr.queue.sentAt(502); ok {
		t.Error("a packet sent after the probe was recorded")
	}
	h := &rtp.Header{Version: 2}
	if err := h.SetExtension(3, []byte{1, 248}); err != nil {
		t.Fatal(err)
	}
	e.probe.Store(pr)
	w.next = interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { return 0, nil })
	if n := testing.AllocsPerRun(100, func() { _, _ = w.Write(h, nil, nil) }); n != 0 {
		t.Errorf("%v allocations a packet during a probe", n)
	}
}

// The watch reads whatever feedback a subscriber sends without
// panicking.
func FuzzQueueWatchFeedback(f *testing.F) {
	seed, _ := feedbackOf(0, 1, 100, -1, 300).Marshal()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			return
		}
		q := newQueueWatch(time.Unix(0, 0))
		for i := range 64 {
			q.sent(uint16(i), int64(i)*1000)
		}
		for _, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				q.feedback(fb)
			}
		}
	})
}
