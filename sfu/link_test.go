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

// A report is evidence of a bottleneck only if it covers time after the
// transport came up: the one after a first report does, and on a
// transport that came up once only, so does the first.
func TestTheFirstReportCountsOnAFreshTransport(t *testing.T) {
	up := time.Now()
	after := up.Add(-3 * time.Second)
	lossy := rtcp.ReceptionReport{FractionLost: 128, LastSequenceNumber: 10}
	var l linkState
	l.update(lossy, up.Add(time.Second), videoClock)
	if lost, _ := l.congested(after, up, false); lost {
		t.Error("the first report after a reconnection counted: it may span the outage")
	}
	if lost, _ := l.congested(after, up, true); !lost {
		t.Error("the first report on a fresh transport did not count")
	}
	if lost, _ := l.congested(after, up.Add(2*time.Second), true); lost {
		t.Error("a report from before the transport came up counted")
	}
	lossy.LastSequenceNumber = 20
	l.update(lossy, up.Add(2*time.Second), videoClock)
	if lost, _ := l.congested(after, up, false); !lost {
		t.Error("the second report did not count")
	}
}
