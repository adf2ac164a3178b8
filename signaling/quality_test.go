package signaling

import (
	"strings"
	"testing"

	"consult/protocol"
)

// A reading is graded with the web client's thresholds: loss, round trip
// and jitter each can make it worse.
func TestQualityLevelUsesTheWebClientsThresholds(t *testing.T) {
	for _, c := range []struct {
		rd   reading
		want string
	}{
		{reading{}, protocol.QualityUnknown},
		{reading{known: true}, protocol.QualityGood},
		{reading{known: true, rttMS: 199, loss: 0.019, jitterMS: 29}, protocol.QualityGood},
		{reading{known: true, rttMS: 200}, protocol.QualityFair},
		{reading{known: true, loss: 0.02}, protocol.QualityFair},
		{reading{known: true, jitterMS: 30}, protocol.QualityFair},
		{reading{known: true, rttMS: 499, loss: 0.079, jitterMS: 79}, protocol.QualityFair},
		{reading{known: true, rttMS: 500}, protocol.QualityPoor},
		{reading{known: true, loss: 0.08}, protocol.QualityPoor},
		{reading{known: true, jitterMS: 80}, protocol.QualityPoor},
		{reading{known: true, rttMS: 600, loss: 0}, protocol.QualityPoor},
	} {
		if got := c.rd.level(); got != c.want {
			t.Errorf("%+v graded %s, want %s", c.rd, got, c.want)
		}
	}
	v := reading{path: protocol.PathSFU, loss: 0.12345, jitterMS: 12.6, rttMS: 99.4}.view("x", protocol.QualityPoor)
	if v.LossPct != 12.3 || v.JitterMS != 13 || v.RTTMS != 99 || v.DownKbps != 0 {
		t.Errorf("figures %+v", v)
	}
}

// A downlink estimate is shown rounded, so that its small moves send no
// new quality message: to 10 kbit/s below 100, to 50 below 1000, to 100
// above; a positive one never rounds to nothing.
func TestDownlinkEstimatesAreRounded(t *testing.T) {
	for in, want := range map[int]int{-5: 0, 0: 0, 1: 10, 54: 50, 55: 60, 99: 100, 100: 100, 124: 100, 125: 150,
		974: 950, 975: 1000, 1049: 1000, 1050: 1100, 2468: 2500} {
		if got := roundKbps(in); got != want {
			t.Errorf("roundKbps(%d) = %d, want %d", in, got, want)
		}
		if v := (reading{downKbps: in}).view("x", protocol.QualityGood); v.DownKbps != want {
			t.Errorf("a reading of %d kbit/s shows %d", in, v.DownKbps)
		}
	}
}

// A mark moves only when two readings in a row agree that it should, and
// then no further than both support; the first figures show at once, and
// two readings without figures take the mark away.
func TestQualityMarkNeedsTwoReadingsToMove(t *testing.T) {
	const (
		g, f, p, u = protocol.QualityGood, protocol.QualityFair, protocol.QualityPoor, protocol.QualityUnknown
	)
	for _, c := range []struct {
		name     string
		readings []string
		shown    []string
	}{
		{"first figures show at once", []string{u, g, g}, []string{u, g, g}},
		{"a first poor shows at once", []string{p, p}, []string{p, p}},
		{"one bad reading does not flip", []string{g, p, g, p, g}, []string{g, g, g, g, g}},
		{"two bad readings do", []string{g, p, p, g, g}, []string{g, g, p, p, g}},
		{"to the nearer of two", []string{g, f, p, p}, []string{g, g, f, p}},
		{"recovering step by step", []string{p, g, f, g}, []string{p, p, f, f}},
		{"a reading on each side holds", []string{f, g, p, g, p}, []string{f, f, f, f, f}},
		{"one reading without figures holds", []string{g, u, g}, []string{g, g, g}},
		{"two take the mark away", []string{g, u, u, p, p}, []string{g, g, u, p, p}},
		{"after a gap it waits again", []string{g, u, p, p}, []string{g, g, g, p}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m qualityMark
			var got []string
			for _, l := range c.readings {
				got = append(got, m.next(l))
			}
			if strings.Join(got, ",") != strings.Join(c.shown, ",") {
				t.Fatalf("readings %v showed %v, want %v", c.readings, got, c.shown)
			}
		})
	}
}
