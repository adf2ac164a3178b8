package main

import (
	"fmt"
	"strconv"
	"strings"
)

// Sweep varies one setting over a list of values, one run each.
type Sweep struct {
	Key    string
	Values []int
}

// sweepKeys are the settings a sweep can vary, and how each applies.
var sweepKeys = map[string]func(*RunConfig, int){
	"subscribers": func(c *RunConfig, v int) { c.Subscribers = v },
	"rooms":       func(c *RunConfig, v int) { c.Rooms = v },
	"publishers":  func(c *RunConfig, v int) { c.Publishers = v },
	"video-kbps":  func(c *RunConfig, v int) { c.Media.VideoKbps = v },
}

// parseSweep reads "key=v1,v2,...", values positive and increasing (the
// knee is the first step that fails, so the order is the load's).
func parseSweep(s string) (Sweep, error) {
	key, list, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || sweepKeys[key] == nil {
		return Sweep{}, fmt.Errorf("-sweep wants key=v1,v2,... with key one of subscribers, rooms, publishers, video-kbps; got %q", s)
	}
	sw := Sweep{Key: key}
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return Sweep{}, fmt.Errorf("-sweep value %q: want a positive integer", f)
		}
		if n := len(sw.Values); n > 0 && v <= sw.Values[n-1] {
			return Sweep{}, fmt.Errorf("-sweep values must increase: %d after %d", v, sw.Values[n-1])
		}
		sw.Values = append(sw.Values, v)
	}
	return sw, nil
}

// Apply returns base with the sweep's key set to v.
func (s Sweep) Apply(base RunConfig, v int) RunConfig {
	sweepKeys[s.Key](&base, v)
	return base
}

// KneeRule says when a load is more than the server carries.
type KneeRule struct {
	MaxLossPct float64 `json:"max_loss_pct"`
	MaxP99ms   float64 `json:"max_p99_ms"`
}

// Step is one sweep value's outcome, as the knee finder and the plot see
// it.
type Step struct {
	Value     int     `json:"value"`
	LossPct   float64 `json:"loss_pct"`
	P99ms     float64 `json:"p99_ms"`
	ServerCPU float64 `json:"server_cpu_pct"` // negative when unknown
	Saturated bool    `json:"harness_saturated"`
	Failed    string  `json:"failed,omitempty"` // the run did not complete
}

// Over reports whether a step breaks the rule, and why.
func (k KneeRule) Over(s Step) (bool, string) {
	switch {
	case s.Failed != "":
		return true, "run failed: " + s.Failed
	case s.LossPct > k.MaxLossPct:
		return true, fmt.Sprintf("loss %.2f %% > %.2g %%", s.LossPct, k.MaxLossPct)
	case s.P99ms > k.MaxP99ms:
		return true, fmt.Sprintf("p99 %.1f ms > %.0f ms", s.P99ms, k.MaxP99ms)
	}
	return false, ""
}

// Knee is where a sweep first broke the rule.
type Knee struct {
	Found bool `json:"found"`
	// Index of the first failing step; LastGood is the value before it
	// (0 when even the first step failed).
	Index    int    `json:"index"`
	Value    int    `json:"value"`
	LastGood int    `json:"last_good"`
	Reason   string `json:"reason,omitempty"`
}

// findKnee returns the first step over the rule. Later steps are not
// consulted: a server that recovers at a higher load (noise on a shared
// machine) has still shown its limit once.
func findKnee(steps []Step, rule KneeRule) Knee {
	for i, s := range steps {
		if over, why := rule.Over(s); over {
			k := Knee{Found: true, Index: i, Value: s.Value, Reason: why}
			if i > 0 {
				k.LastGood = steps[i-1].Value
			}
			return k
		}
	}
	return Knee{}
}

// stepOf condenses a run's result (nil with err for a failed run).
func stepOf(v int, res *Result, err error) Step {
	if err != nil || res == nil {
		msg := "no result"
		if err != nil {
			msg = err.Error()
		}
		return Step{Value: v, ServerCPU: -1, Failed: msg}
	}
	s := Step{Value: v, LossPct: res.LossPct, P99ms: res.Latency.P99ms, ServerCPU: -1,
		Saturated: res.Harness.Saturated}
	if res.Server != nil {
		s.ServerCPU = res.Server.CPUPct
	}
	return s
}
