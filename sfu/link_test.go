package sfu

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// The round trip is the report's arrival less the sender report's time
// (LSR) less how long the subscriber held it (DLSR), in 1/65536 s.
func TestLinkFromAReceiverReport(t *testing.T) {
	now := time.Now()
	sent := now.Add(-150 * time.Millisecond)
	var l linkState
	l.update(rtcp.ReceptionReport{
		FractionLost:     64,       // a quarter
		TotalLost:        0xFFFFFF, // -1: duplicates outnumber the lost
		Jitter:           900,
		LastSenderReport: ntpMiddle(sent),
		Delay:            uint32(50 * 65536 / 1000), // held 50 ms
	}, now, videoClock)
	got := l.get()
	if got.Loss != 0.25 || got.Lost != -1 || got.JitterMS != 10 || got.Reports != 1 {
		t.Fatalf("link %+v", got)
	}
	if math.Abs(got.RTTMS-100) > 0.1 {
		t.Errorf("round trip %v ms, want 100", got.RTTMS)
	}

	// A report that names a sender report from the future (a forged or
	// garbled LSR) is no measurement: the last good one stands.
	l.update(rtcp.ReceptionReport{LastSenderReport: ntpMiddle(now.Add(time.Second))}, now, videoClock)
	if got := l.get(); math.Abs(got.RTTMS-100) > 0.1 || got.Reports != 2 {
		t.Errorf("after a report from the future: %+v", got)
	}
}
