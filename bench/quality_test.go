package main

import (
	"testing"
	"time"
)

func TestLossTracker(t *testing.T) {
	seq := func(from, to uint32) []uint32 {
		var s []uint32
		for c := from; c <= to; c++ {
			s = append(s, c)
		}
		return s
	}
	cat := func(parts ...[]uint32) []uint32 {
		var s []uint32
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	cases := []struct {
		name     string
		arrivals []uint32
		end      uint32 // the publisher's last counter; 0: unknown
		want     LossResult
	}{
		{"in order", seq(0, 99), 99, LossResult{Expected: 100, Received: 100}},
		{"a late joiner is charged from its first packet", seq(500, 599), 599, LossResult{Expected: 100, Received: 100}},
		{"a gap is loss", cat(seq(0, 9), seq(15, 19)), 19, LossResult{Expected: 20, Received: 15, Lost: 5}},
		{"the tail after the last arrival is loss", seq(0, 9), 14, LossResult{Expected: 15, Received: 10, Lost: 5}},
		{"unknown end counts to the highest", seq(0, 9), 0, LossResult{Expected: 10, Received: 10}},
		{"reordering is not loss", []uint32{0, 1, 3, 2, 5, 4, 6}, 6, LossResult{Expected: 7, Received: 7, Reordered: 2}},
		{"duplicates are not arrivals", []uint32{0, 1, 1, 2, 0, 3}, 3, LossResult{Expected: 4, Received: 4, Duplicates: 2}},
		{"a duplicate of a reordered packet", []uint32{0, 2, 1, 1, 3}, 3, LossResult{Expected: 4, Received: 4, Reordered: 1, Duplicates: 1}},
		{"too late to match stays lost", cat(seq(0, 9), seq(11, 11+lossWindow), []uint32{10}), 11 + lossWindow,
			LossResult{Expected: 12 + lossWindow, Received: 11 + lossWindow, Lost: 1, Late: 1}},
		{"before the first packet is not counted", []uint32{5, 6, 4, 7}, 7, LossResult{Expected: 3, Received: 3, Late: 1}},
		{"a jump beyond the window clears it", []uint32{0, 1, 1 + 3*lossWindow, 1 + 3*lossWindow}, 0,
			LossResult{Expected: 2 + 3*lossWindow, Received: 3, Lost: 3*lossWindow - 1, Duplicates: 1}},
		{"reused window slots hold no stale packets", cat(seq(0, lossWindow-1), []uint32{lossWindow + 5, lossWindow + 2}), 0,
			LossResult{Expected: lossWindow + 6, Received: lossWindow + 2, Lost: 4, Reordered: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var l LossTracker
			for _, a := range c.arrivals {
				l.Add(a)
			}
			if got := l.Result(c.end); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestLossPercentAndSums(t *testing.T) {
	var sum LossResult
	sum.Add(LossResult{Expected: 1000, Received: 990, Lost: 10})
	sum.Add(LossResult{Expected: 1000, Received: 1000, Duplicates: 3})
	if p := sum.Percent(); p != 0.5 || sum.Duplicates != 3 {
		t.Fatalf("%.3f %% of %+v", p, sum)
	}
	if (LossResult{}).Percent() != 0 {
		t.Fatal("nothing expected is no loss")
	}
	var never LossTracker
	if never.Result(100) != (LossResult{}) {
		t.Fatal("a track that received nothing reports expectations")
	}
}

func TestJitterFollowsTransitVariation(t *testing.T) {
	var steady, alternating Jitter
	for i := 0; i < 500; i++ {
		steady.Add(3 * time.Millisecond)
		alternating.Add(time.Duration(1+2*(i%2)) * time.Millisecond) // 1, 3, 1, 3 ms
	}
	if steady.Value() != 0 {
		t.Fatalf("constant transit has jitter %v", steady.Value())
	}
	// |D| is always 2 ms, and J converges to it.
	if v := alternating.Value(); v < 1990*time.Microsecond || v > 2*time.Millisecond {
		t.Fatalf("alternating transit: jitter %v, want ~2 ms", v)
	}
}

func TestFrameAssemblerCompletesFramesOnlyWhenWhole(t *testing.T) {
	var f frameAssembler
	// Frame 100 of 3 packets arrives out of order, interleaved with frame 200.
	steps := []struct {
		ts    uint32
		count uint8
		done  bool
	}{{100, 3, false}, {200, 2, false}, {100, 3, false}, {200, 2, true}, {100, 3, true}, {100, 3, false}}
	for i, s := range steps {
		if got := f.Add(s.ts, s.count); got != s.done {
			t.Fatalf("step %d: complete=%v, want %v", i, got, s.done)
		}
	}
	// A frame missing a packet never completes, and newer frames evict it.
	f.Add(300, 2)
	for ts := uint32(400); ts < 400+frameSlots*2; ts++ {
		if !f.Add(ts, 1) {
			t.Fatalf("single-packet frame %d not complete", ts)
		}
	}
	if f.Add(300, 2) {
		t.Fatal("an evicted frame completed with one packet")
	}
}

func TestFreezeDetector(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cases := []struct {
		name    string
		frames  []int
		end     int
		count   int
		total   time.Duration
		longest time.Duration
	}{
		{"smooth 30 fps", []int{0, 33, 66, 100, 133, 166, 200}, 210, 0, 0, 0},
		{"gap of exactly the threshold is not a freeze", []int{0, 200}, 200, 0, 0, 0},
		{"one freeze", []int{0, 33, 283, 316}, 320, 1, 250 * time.Millisecond, 250 * time.Millisecond},
		{"two freezes", []int{0, 300, 333, 933}, 940, 2, 900 * time.Millisecond, 600 * time.Millisecond},
		{"frozen until the end", []int{0, 33}, 533, 1, 500 * time.Millisecond, 500 * time.Millisecond},
		{"a frame completing late does not move time back", []int{0, 100, 50, 150}, 160, 0, 0, 0},
		{"no frames, no freeze", nil, 1000, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f FreezeDetector
			for _, ms := range c.frames {
				f.Frame(at(ms))
			}
			f.Finish(at(c.end))
			if f.Count != c.count || f.Total != c.total || f.Longest != c.longest {
				t.Fatalf("got %d freezes, %v total, %v longest; want %d, %v, %v", f.Count, f.Total, f.Longest, c.count, c.total, c.longest)
			}
		})
	}
}
