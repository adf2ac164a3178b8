package main

import (
	"testing"
	"time"
)

// The pacer never lets bytes out faster than its rate (the lower bound
// is what matters; a busy machine may only make it slower).
func TestPacerHoldsTheRate(t *testing.T) {
	pc := newPacer(1e6) // 1 MB/s: 1000 bytes a millisecond
	stop := make(chan struct{})
	start := time.Now()
	for range 11 {
		if !pc.wait(1000, stop) {
			t.Fatal("stopped")
		}
	}
	// The first packet goes at once, the eleventh 10 ms of credit later,
	// less the slack that is carried rather than slept.
	if el := time.Since(start); el < 10*time.Millisecond-pacerSlack {
		t.Fatalf("11 packets of 1000 bytes at 1 MB/s took %v", el)
	}
}

func TestPacerStopsAndCanBeOff(t *testing.T) {
	pc := newPacer(1000) // a second per 1000 bytes
	stop := make(chan struct{})
	if !pc.wait(1000, stop) {
		t.Fatal("the first packet must go at once")
	}
	close(stop)
	if pc.wait(1000, stop) {
		t.Fatal("a wait that stop ended reported success")
	}
	off := newPacer(0)
	for range 1000 {
		if !off.wait(1200, nil) {
			t.Fatal("an unpaced wait failed")
		}
	}
}
