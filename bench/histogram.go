package main

import (
	"math"
	"math/bits"
	"time"
)

// Histogram buckets: values are kept in microseconds, exactly below
// histExact and in 64 sub-buckets per power of two above it, so a value
// is off by at most 1/128 of itself (half a bucket). Percentiles then
// need no stored samples, recording is a few instructions on the receive
// path, and merging the histograms of many receivers is a sum.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits // sub-buckets per power of two
	histExact   = 2 * histSub      // values below this have their own bucket
	histMaxExp  = 34               // up to 2^41 µs (25 days): anything larger is clamped
	histBuckets = histExact + histMaxExp*histSub
)

// Histogram is a latency distribution. The zero value is empty and ready.
// It is not safe for concurrent use; each receiver owns one.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64 // µs, for the mean
	min, max time.Duration
}

func bucketOf(us uint64) int {
	if us < histExact {
		return int(us)
	}
	e := bits.Len64(us) - (histSubBits + 1) // shift that leaves 7 significant bits
	if e > histMaxExp {
		return histBuckets - 1
	}
	m := us >> uint(e) // in [histSub, 2*histSub)
	return histExact + (e-1)*histSub + int(m-histSub)
}

// bucketMid is the middle of a bucket, in microseconds.
func bucketMid(i int) float64 {
	if i < histExact {
		return float64(i)
	}
	k := i - histExact
	e := k/histSub + 1
	m := uint64(k%histSub + histSub)
	lo := m << uint(e)
	return float64(lo) + float64(uint64(1)<<uint(e))/2
}

// Record adds one duration. Negative values (a clock step) count as 0.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	us := uint64(d / time.Microsecond)
	h.counts[bucketOf(us)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(us)
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average recorded value.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.n)) * time.Microsecond
}

// Quantile returns the value below which a fraction q of the values lie
// (nearest rank), within the bucket precision and never outside the
// recorded minimum and maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketMid(i) * float64(time.Microsecond))
			return min(max(d, h.min), h.max)
		}
	}
	return h.max
}

// Summary is a distribution as reported: milliseconds, which is what an
// operator reads, with the count so an empty one is recognisable.
type Summary struct {
	N     uint64  `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summary condenses h.
func (h *Histogram) Summary() Summary {
	return Summary{N: h.n, P50ms: ms(h.Quantile(0.50)), P95ms: ms(h.Quantile(0.95)),
		P99ms: ms(h.Quantile(0.99)), MaxMs: ms(h.max)}
}
