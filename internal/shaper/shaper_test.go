package shaper

import (
	"net"
	"testing"
	"time"

	pturn "github.com/pion/turn/v5"

	"consult/internal/testenv"
)

// relayed allocates on the shaper with pion's TURN client and returns the
// relay socket and a peer on loopback that echoes what it gets.
func relayed(t *testing.T, s *Shaper) (net.PacketConn, net.Addr) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := pturn.NewClient(&pturn.ClientConfig{TURNServerAddr: s.addr.String(), STUNServerAddr: s.addr.String(),
		Username: User, Password: Pass, Realm: realm, Conn: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); _ = c.Close() })
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := cl.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := peer.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = peer.WriteTo(buf[:n], from)
		}
	}()
	return relay, peer.LocalAddr()
}

// echo sends one packet through the relay and returns the round trip, or
// false if nothing came back within wait.
func echo(t *testing.T, relay net.PacketConn, peer net.Addr, wait time.Duration) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	if _, err := relay.WriteTo([]byte("ping"), peer); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	if _, _, err := relay.ReadFrom(buf); err != nil {
		return 0, false
	}
	return time.Since(start), true
}

func TestTheShaperRelaysDelaysAndBlacksOut(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	relay, peer := relayed(t, s)
	if _, ok := echo(t, relay, peer, testenv.Scale(2*time.Second)); !ok {
		t.Fatal("nothing came back through the relay")
	}

	s.Set(Link{Delay: 60 * time.Millisecond}, Link{Delay: 40 * time.Millisecond})
	if rtt, ok := echo(t, relay, peer, testenv.Scale(2*time.Second)); !ok || rtt < 100*time.Millisecond {
		t.Fatalf("round trip %v with 60 + 40 ms of delay (%v)", rtt, ok)
	}

	s.Set(Link{}, Link{})
	s.Blackout(true)
	if _, ok := echo(t, relay, peer, 300*time.Millisecond); ok {
		t.Fatal("a packet crossed a blackout")
	}
	s.Blackout(false)
	// The blacked-out ping may still be queued at the peer's side: drain.
	if _, ok := echo(t, relay, peer, testenv.Scale(2*time.Second)); !ok {
		t.Fatal("nothing came back after the blackout")
	}
}

// A rate cap lets through what the rate allows and drops what would wait
// longer than the queue.
func TestTheShaperCapsTheRate(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	relay, peer := relayed(t, s)
	s.Set(Link{Kbps: 80, Queue: 100 * time.Millisecond}, Link{})
	payload := make([]byte, 1000) // 8 kbit: 10 a second at 80 kbit/s
	for range 50 {
		if _, err := relay.WriteTo(payload, peer); err != nil {
			t.Fatal(err)
		}
	}
	got := drain(relay)
	// 100 ms of queue holds 1 packet, and the link sends 10 a second: of a
	// burst of 50, one or two get through.
	if got < 1 || got > 4 {
		t.Fatalf("%d of 50 packets crossed an 80 kbit/s link with a 100 ms queue", got)
	}
}

// The downlink's counts: what reached it, and what its full queue
// dropped, which is what did not cross.
func TestTheShaperCountsWhatItsQueueDrops(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	relay, peer := relayed(t, s)
	s.Set(Link{}, Link{Kbps: 80, Queue: 100 * time.Millisecond})
	payload := make([]byte, 1000)
	for range 50 {
		if _, err := relay.WriteTo(payload, peer); err != nil {
			t.Fatal(err)
		}
	}
	// Every echo reaches the relay's downlink, and each is either counted
	// dropped or delivered.
	testenv.Eventually(t, 5*time.Second, "the 50 echoes at the relay", func() bool { return s.Down().Offered >= 50 })
	got := drain(relay)
	c := s.Down()
	if c.Offered != 50 || c.Overflowed != c.Offered-uint64(got) || c.Overflowed < 40 {
		t.Fatalf("offered %d, overflowed %d, %d delivered", c.Offered, c.Overflowed, got)
	}
}

// drain counts what the relay socket receives in the next second.
func drain(relay net.PacketConn) int {
	got := 0
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := relay.ReadFrom(buf); err != nil {
			return got
		}
		got++
	}
}
