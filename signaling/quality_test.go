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
	if v.LossPct != 12.3 || v.JitterMS != 13 || v.RTTMS != 99 {
		t.Errorf("figures %+v", v)
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
