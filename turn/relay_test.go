package turn

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

func TestQuotaHoldsUnderConcurrentAcquire(t *testing.T) {
	q := newQuota(5, 8)
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "alice"
			if i%2 == 1 {
				user = "bob"
			}
			if q.acquire(user) {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	// 5 each would be 10, but the total of 8 binds first.
	if granted.Load() != 8 || q.count() != 8 {
		t.Fatalf("granted %d, count %d; want 8", granted.Load(), q.count())
	}
	if q.users["alice"] > 5 || q.users["bob"] > 5 {
		t.Fatalf("per-user quota exceeded: %v", q.users)
	}
	for user, n := range map[string]int{"alice": q.users["alice"], "bob": q.users["bob"]} {
		for range n {
			q.release(user)
		}
	}
	if q.count() != 0 || len(q.users) != 0 {
		t.Fatalf("after release: count %d, users %v", q.count(), q.users)
	}
}

// The relay wrapper sits on every relayed datagram: it must not add
// allocations to what the socket itself does.
func TestRelayConnAddsNoAllocations(t *testing.T) {
	raw, rc, dst := relayPair(t)
	payload := make([]byte, 1200)
	rawAllocs := testing.AllocsPerRun(200, func() { _, _ = raw.WriteTo(payload, dst) })
	wrapped := testing.AllocsPerRun(200, func() { _, _ = rc.WriteTo(payload, dst) })
	if wrapped > rawAllocs {
		t.Errorf("WriteTo allocates %.1f per call through the wrapper, %.1f without", wrapped, rawAllocs)
	}
}

func BenchmarkRelayConnWriteTo(b *testing.B) {
	_, rc, dst := relayPair(b)
	payload := make([]byte, 1200)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		_, _ = rc.WriteTo(payload, dst)
	}
}

// relayPair returns a UDP socket, the same socket wrapped as a relay, and a
// sink address that discards what it gets.
func relayPair(tb testing.TB) (net.PacketConn, *relayConn, net.Addr) {
	tb.Helper()
	raw, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = raw.Close()
		_ = sink.Close()
	})
	rc := &relayConn{PacketConn: raw, relayAddr: raw.LocalAddr()}
	return raw, rc, sink.LocalAddr()
}
