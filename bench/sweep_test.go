package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFindKnee(t *testing.T) {
	rule := KneeRule{MaxLossPct: 1, MaxP99ms: 50}
	ok := func(v int) Step { return Step{Value: v, LossPct: 0.01, P99ms: 8, ServerCPU: float64(v)} }
	cases := []struct {
		name  string
		steps []Step
		want  Knee
	}{
		{"none", []Step{ok(10), ok(25), ok(50)}, Knee{}},
		{"loss", []Step{ok(10), ok(25), {Value: 50, LossPct: 1.5, P99ms: 9}}, Knee{Found: true, Index: 2, Value: 50, LastGood: 25, Reason: "loss 1.50 % > 1 %"}},
		{"p99", []Step{ok(10), {Value: 25, P99ms: 51}, ok(50)}, Knee{Found: true, Index: 1, Value: 25, LastGood: 10, Reason: "p99 51.0 ms > 50 ms"}},
		{"the first step already over", []Step{{Value: 10, LossPct: 5}}, Knee{Found: true, Value: 10, Reason: "loss 5.00 % > 1 %"}},
		{"at the limits is not over", []Step{{Value: 10, LossPct: 1, P99ms: 50}}, Knee{}},
		{"a failed run is over", []Step{ok(10), {Value: 25, Failed: "joins timed out"}}, Knee{Found: true, Index: 1, Value: 25, LastGood: 10, Reason: "run failed: joins timed out"}},
		{"empty sweep", nil, Knee{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := findKnee(c.steps, rule); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseSweep(t *testing.T) {
	sw, err := parseSweep("subscribers=10, 25,50")
	if err != nil || sw.Key != "subscribers" || len(sw.Values) != 3 || sw.Values[2] != 50 {
		t.Fatalf("%+v %v", sw, err)
	}
	base := RunConfig{Rooms: 1, Subscribers: 3}
	if c := sw.Apply(base, 25); c.Subscribers != 25 || base.Subscribers != 3 {
		t.Fatal("Apply must set the copy only")
	}
	for _, bad := range []string{"", "subscribers", "cats=1,2", "subscribers=10,5", "rooms=0", "rooms=1,x"} {
		if _, err := parseSweep(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStepOfAFailedRun(t *testing.T) {
	s := stepOf(7, nil, errors.New("boom"))
	if s.Failed != "boom" || s.ServerCPU >= 0 {
		t.Fatalf("%+v", s)
	}
	s = stepOf(7, &Result{LossPct: 0.2, Latency: Summary{P99ms: 3}, Server: &ServerStats{CPUPct: 40}}, nil)
	if s.Failed != "" || s.P99ms != 3 || s.ServerCPU != 40 {
		t.Fatalf("%+v", s)
	}
}

func TestSweepSVGIsWellFormedAndShowsTheKnee(t *testing.T) {
	steps := []Step{
		{Value: 10, LossPct: 0, P99ms: 3, ServerCPU: 5},
		{Value: 100, LossPct: 0.1, P99ms: 9, ServerCPU: 45},
		{Value: 200, LossPct: 2.5, P99ms: 180, ServerCPU: 130, Saturated: true},
		{Value: 400, ServerCPU: -1, Failed: "no media"},
	}
	rule := KneeRule{MaxLossPct: 1, MaxP99ms: 50}
	knee := findKnee(steps, rule)
	var buf bytes.Buffer
	if err := writeSweepSVG(&buf, "CPU & p99 <vs> load", "1 room", "2 × CPU", "subscribers", steps, knee, rule); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	polylines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	svg := buf.String()
	for _, want := range []string{"knee at 200: loss 2.50 % &gt; 1 %", "CPU &amp; p99 &lt;vs&gt; load", "p99 limit 50 ms", "loss 2.50%*", "failed"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
	if polylines != 2 {
		t.Fatalf("%d series drawn, want CPU and p99", polylines)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 7: 10, 60: 100, 110: 200, 240: 500} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}
