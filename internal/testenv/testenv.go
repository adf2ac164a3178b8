// Package testenv scales the deadlines of tests to the machine they run
// on. A deadline in a test is a bound on how long the machine may take, not
// a claim about the product: on a busy or slow machine (CI under load, the
// race detector, a laptop on battery) the same work takes longer, and a
// test that fails there only says the machine was slow. Every deadline in
// the suite goes through Scale, which multiplies it by CONSULT_TEST_SLOWDOWN
// (default 1; e.g. 3 on a machine known to be three times slower). Targets
// the product itself must meet (gaps, latencies) are asserted on what the
// product controls, or measured in benchmarks, never by a wall-clock bound
// that scales.
package testenv

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

var factor = sync.OnceValue(func() float64 {
	f, err := strconv.ParseFloat(os.Getenv("CONSULT_TEST_SLOWDOWN"), 64)
	if err != nil || f < 1 {
		return 1
	}
	return f
})

// Slowdown is the CONSULT_TEST_SLOWDOWN factor (at least 1).
func Slowdown() float64 { return factor() }

// Scale stretches a deadline by the slowdown factor.
func Scale(d time.Duration) time.Duration { return time.Duration(float64(d) * factor()) }

// Context returns a context that ends after the scaled d, or with the test.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Scale(d))
	t.Cleanup(cancel)
	return ctx
}

// After is time.After with the scaled d: the bound of a select that waits
// for an event.
func After(d time.Duration) <-chan time.Time { return time.After(Scale(d)) }

// Poll is how often Eventually checks its condition.
const Poll = 10 * time.Millisecond

// Eventually checks cond every Poll until it holds, and fails the test
// with what if it does not within the scaled d. It returns when cond holds.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", Scale(d), what)
	}
}

// Within reports whether cond held, checked every Poll, within the scaled d.
func Within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(Scale(d))
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Poll)
	}
}
