package sfu

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// rtpAt is a 12-byte RTP header with seq and ts.
func rtpAt(seq uint16, ts uint32) []byte {
	return []byte{0x80, 111, byte(seq >> 8), byte(seq), byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), 0, 0, 0, 1}
}

// The uplink meter counts a stream's loss from its sequence numbers:
// reordered and late packets count as received, duplicates once, across
// the 16-bit wrap; a jump far from the old numbers, confirmed by the next
// packet, starts the count again instead of counting thousands lost.
func TestUplinkMeterCountsLossFromSequenceNumbers(t *testing.T) {
	cases := []struct {
		name     string
		seqs     []uint16
		exp, rcv uint64
	}{
		{"in order", seqRange(100, 120), 20, 20},
		{"gaps", []uint16{1, 2, 4, 5, 8, 9, 10, 11, 12, 13, 14}, 14, 11},
		{"reordered", []uint16{1, 3, 2, 4, 6, 5, 7, 8, 9, 10, 11}, 11, 11},
		{"duplicates", []uint16{1, 2, 2, 3, 3, 1, 4, 5, 6, 7, 8, 9, 10}, 10, 10},
		{"a late retransmission fills its hole", append(append(seqRange(1, 12), 13, 14, 15, 16, 17, 18), 12, 12), 18, 18},
		{"wrap", append(seqRange(65530, 65535), 65535, 0, 1, 2, 3, 4, 5), 12, 12},
		{"wrap with loss and reorder", []uint16{65533, 65535, 65534, 1, 0, 3, 4, 5, 6, 7, 8}, 12, 11},
		{"too late to tell", append(seqRange(1000, 1300), 700), 300, 300},
		{"a stray far packet is ignored", append(append(seqRange(1, 11), 40000), seqRange(11, 21)...), 20, 20},
		{"a restart counts from the new numbers", append(seqRange(1, 11), seqRange(30000, 30010)...), 10 + 9, 10 + 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m uplinkMeter
			now := time.Unix(1000, 0)
			for i, s := range c.seqs {
				m.observeAt(rtpAt(s, uint32(i)*960), now.Add(time.Duration(i)*20*time.Millisecond), 48000)
			}
			if e, r := m.expected.Load(), m.received.Load(); e != c.exp || r != c.rcv {
				t.Fatalf("expected %d received %d, want %d and %d", e, r, c.exp, c.rcv)
			}
		})
	}
}

// seqRange is from, from+1, ... up to (not including) to, across the wrap.
func seqRange(from, to uint16) []uint16 {
	var out []uint16
	for s := from; s != to; s++ {
		out = append(out, s)
	}
	return out
}

// An interval's loss is what it expected less what came, over what it
// expected; a quiet interval waits for the next read, and repairs of
// the interval before never make a loss negative.
func TestUplinkMeterReadsIntervals(t *testing.T) {
	var m uplinkMeter
	now := time.Unix(1000, 0)
	send := func(seqs ...uint16) {
		for _, s := range seqs {
			now = now.Add(20 * time.Millisecond)
			m.observeAt(rtpAt(s, uint32(s)*960), now, 48000)
		}
	}
	var lossy []uint16
	for s := uint16(0); s < 100; s++ {
		if s%5 != 3 { // one in five lost
			lossy = append(lossy, s)
		}
	}
	send(lossy...)
	if loss, _, ok := m.read(); !ok || math.Abs(loss-0.2) > 0.011 {
		t.Fatalf("loss %v (%v), want 0.2", loss, ok)
	}
	send(100, 101, 102)
	if _, _, ok := m.read(); ok {
		t.Fatal("three packets read as an interval")
	}
	send(seqRange(103, 120)...)
	if loss, _, ok := m.read(); !ok || loss != 0 {
		t.Fatalf("a clean interval (of two reads' packets) reads %v, %v", loss, ok)
	}
	send(seqRange(120, 125)...)
	send(seqRange(126, 140)...)
	send(125) // late, in the same interval
	send(96, 91)
	send(seqRange(140, 150)...)
	if loss, _, ok := m.read(); !ok || loss != 0 || m.lastLoss() != 0 {
		t.Fatalf("repairs read as loss %v, %v", loss, ok)
	}
}

// Jitter is RFC 3550's: none for packets that arrive as they were sent,
// and about the spread of their transit times when they do not.
func TestUplinkMeterJitter(t *testing.T) {
	var steady, uneven uplinkMeter
	now := time.Unix(1000, 0)
	for i := 0; i < 500; i++ {
		at := now.Add(time.Duration(i) * 20 * time.Millisecond)
		steady.observeAt(rtpAt(uint16(i), uint32(i)*960), at, 48000)
		late := time.Duration(0)
		if i%2 == 1 {
			late = 10 * time.Millisecond // every other packet 10 ms late: |D| = 10 ms
		}
		uneven.observeAt(rtpAt(uint16(i), uint32(i)*960), at.Add(late), 48000)
	}
	if j := steady.lastJitterMS(); j != 0 {
		t.Errorf("steady stream jitter %v ms", j)
	}
	if j := uneven.lastJitterMS(); math.Abs(j-10) > 0.5 {
		t.Errorf("uneven stream jitter %v ms, want 10", j)
	}
}

// Each transport-wide sequence number counts once, in run-length and
// status-vector chunks, and a feedback naming old numbers again adds
// nothing.
func TestTWCCLossCountsEachPacketOnce(t *testing.T) {
	var c twccLoss
	c.count(&rtcp.TransportLayerCC{BaseSequenceNumber: 65530, PacketStatusCount: 20, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 10},
		&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: []uint16{
			rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedLargeDelta, rtcp.TypeTCCPacketNotReceived,
			rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedSmallDelta,
			rtcp.TypeTCCPacketReceivedSmallDelta}},
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 100}, // beyond the count
	}})
	c.count(&rtcp.TransportLayerCC{BaseSequenceNumber: 65535, PacketStatusCount: 5, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 5},
	}})
	if c.reported != 20 || c.received != 18 {
		t.Fatalf("reported %d received %d, want 20 and 18", c.reported, c.received)
	}
	if loss, ok := c.read(); !ok || loss != 0.1 {
		t.Fatalf("loss %v, %v", loss, ok)
	}
	if _, ok := c.read(); ok {
		t.Fatal("an empty interval read as a measurement")
	}
}

// A packet first reported missing and then, by a later feedback, as
// received was late, not lost; one named received long after it was
// reported missing, or never reported, changes nothing.
func TestTWCCLossLatePacketsAreNotLost(t *testing.T) {
	fb := func(base uint16, syms ...uint16) *rtcp.TransportLayerCC {
		return &rtcp.TransportLayerCC{BaseSequenceNumber: base, PacketStatusCount: uint16(len(syms)),
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: syms}}}
	}
	const nr, rx = rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedSmallDelta
	var c twccLoss
	c.count(fb(100, rx, nr, rx, nr, rx, rx, rx)) // 101 and 103 missing
	c.count(fb(101, rx, rx, rx))                 // 101 and 103 arrived late, 102 is named again
	if c.reported != 7 || c.received != 7 {
		t.Fatalf("reported %d received %d, want 7 and 7", c.reported, c.received)
	}
	c.count(fb(101, rx, rx, rx)) // named again: counted already
	if c.received != 7 {
		t.Fatalf("a packet named received twice counted twice: %d", c.received)
	}
	// 10000 numbers on, one missing packet; then the old missing number's
	// slot is reused after the numbers wrap.
	c.count(fb(10000, nr, rx))
	c.count(fb(10000+lateWindow+1, rx))
	c.count(fb(10000, rx)) // too late to count
	if c.reported != 10 || c.received != 9 {
		t.Fatalf("reported %d received %d, want 10 and 9", c.reported, c.received)
	}
	if loss, ok := c.read(); !ok || loss != 0.1 {
		t.Fatalf("loss %v, %v; want 0.1", loss, ok)
	}
}

// BenchmarkUplinkMeter is the cost the meter adds to each forwarded
// packet.
func BenchmarkUplinkMeter(b *testing.B) {
	var m uplinkMeter
	pkt := rtpAt(0, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		m.observe(pkt, 90000)
		i++
	}
}
