package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistogramPercentilesWithinBucketPrecision(t *testing.T) {
	var h Histogram
	// 1 ms .. 100 ms in 10 µs steps, shuffled: the order must not matter.
	var vals []time.Duration
	for us := 1000; us <= 100000; us += 10 {
		vals = append(vals, time.Duration(us)*time.Microsecond)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50500 * time.Microsecond}, {0.95, 95050 * time.Microsecond}, {0.99, 99010 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 1.0/128 {
			t.Errorf("q%.2f = %v, want %v ±0.8%%", c.q, got, c.want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Count() != uint64(len(vals)) {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
	if m := h.Mean(); m < 50*time.Millisecond || m > 51*time.Millisecond {
		t.Fatalf("mean %v", m)
	}
}

func TestHistogramSmallValuesAreExactAndEdgesClamp(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Summary().N != 0 {
		t.Fatal("empty histogram reports values")
	}
	for _, us := range []int{5, 7, 7, 9} {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	h.Record(-time.Second) // a clock step counts as zero, not as garbage
	if got := h.Quantile(0.5); got != 7*time.Microsecond {
		t.Fatalf("median %v", got)
	}
	if got := h.Quantile(0.01); got != 0 {
		t.Fatalf("minimum %v", got)
	}
	var big Histogram
	big.Record(1000 * time.Hour) // beyond the last bucket: clamped, still counted
	if big.Quantile(0.5) != 1000*time.Hour || big.Count() != 1 {
		t.Fatalf("huge value: %v", big.Quantile(0.5))
	}
}

func TestHistogramMergeEqualsRecordingEverything(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 5000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&Histogram{})
	if a.Summary() != all.Summary() || a.Mean() != all.Mean() {
		t.Fatalf("merged %+v, want %+v", a.Summary(), all.Summary())
	}
}

func TestBucketsAreContiguousAndOrdered(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<20; us++ {
		i := bucketOf(us)
		if i != prev && i != prev+1 {
			t.Fatalf("bucket jumps from %d to %d at %d µs", prev, i, us)
		}
		if mid := bucketMid(i); math.Abs(mid-float64(us)) > float64(us)/128+0.5 {
			t.Fatalf("%d µs lands in bucket %d centred on %.1f", us, i, mid)
		}
		prev = i
	}
}
