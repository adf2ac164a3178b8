package nackgen

import (
	"slices"
	"testing"
	"time"

	"consult/internal/testenv"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

const ms = time.Millisecond

// feed is a 90 kHz stream sending a packet every 10 ms, in step with now.
type feed struct {
	s   *stream
	seq uint16
	now time.Duration
}

func newFeed() *feed {
	f := &feed{s: newStream(1, 90000), seq: 65530} // wraps soon
	f.s.add(f.seq, f.ts(), f.now)
	return f
}

func (f *feed) ts() uint32 { return uint32(f.now / (time.Second / 90000)) }

// next advances 10 ms and delivers the next packet unless lost.
func (f *feed) next(lost bool) uint16 {
	f.seq++
	f.now += 10 * ms
	if !lost {
		f.s.add(f.seq, f.ts(), f.now)
	}
	return f.seq
}

// ask runs the generator's loop at t and returns what it asks for.
func (f *feed) ask(t time.Duration) []uint16 {
	seqs, _ := f.s.due(t, nil)
	return seqs
}

func TestALostPacketIsAskedForAFewTimesThenGivenUp(t *testing.T) {
	f := newFeed()
	lost := f.next(true)
	f.next(false)
	if got := f.ask(f.now); len(got) != 0 {
		t.Fatalf("asked for %v before the reordering wait", got)
	}
	var times []time.Duration
	for at := f.now; at < f.now+2*time.Second; at += interval {
		if got := f.ask(at); len(got) > 0 {
			if !slices.Equal(got, []uint16{lost}) {
				t.Fatalf("asked for %v, want only %d", got, lost)
			}
			times = append(times, at)
		}
	}
	if len(times) != maxTries {
		t.Fatalf("asked %d times (at %v), want %d", len(times), times, maxTries)
	}
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d < defaultRTT {
			t.Errorf("asked again after %v, before a round trip", d)
		}
	}
	if len(f.s.pending) != 0 {
		t.Errorf("still pending after giving up: %+v", f.s.pending)
	}
}

func TestAnAnsweredNACKStopsAndTimesTheRoundTrip(t *testing.T) {
	f := newFeed()
	lost := f.next(true)
	f.next(false)
	var first time.Duration
	for at := f.now; first == 0; at += interval {
		if len(f.ask(at)) > 0 {
			first = at
		}
	}
	f.s.add(lost, 0, first+30*ms) // the retransmission, 30 ms later
	for at := first; at < first+2*time.Second; at += interval {
		if got := f.ask(at); len(got) > 0 {
			t.Fatalf("asked for %v after the packet came", got)
		}
	}
	if f.s.rtt != 30*ms {
		t.Errorf("round trip %v, want 30ms", f.s.rtt)
	}
}

func TestPacketsReorderedWithinTheJitterAreNotAskedFor(t *testing.T) {
	f := newFeed()
	late := f.next(true)
	f.next(false)
	f.s.add(late, f.ts()-900, f.now+5*ms) // 15 ms late, within the wait
	if got := f.ask(f.now + 2*minWait); len(got) != 0 {
		t.Fatalf("asked for the reordered packet: %v", got)
	}
}

func TestTheWaitFollowsTheJitter(t *testing.T) {
	f := newFeed()
	// Arrivals 0 or 30 ms late, alternately: a jittery path.
	for i := 0; i < 200; i++ {
		f.seq++
		f.now += 10 * ms
		f.s.add(f.seq, f.ts(), f.now+time.Duration(i%2)*30*ms)
	}
	jit := time.Duration(f.s.jitter * float64(time.Second))
	if jit < 5*ms {
		t.Fatalf("jitter %v on a path 0–30 ms late", jit)
	}
	f.next(true)
	f.next(false)
	if got := f.ask(f.now + minWait); len(got) != 0 {
		t.Errorf("asked after %v with jitter %v", minWait, jit)
	}
	if got := f.ask(f.now + maxWait); len(got) != 1 {
		t.Errorf("not asked after %v (jitter %v): %v", maxWait, jit, got)
	}
}

// A publisher far away: the round trip is timed from the first NACK, so
// retries wait for it instead of shrinking until they all come before
// any answer could.
func TestALongRoundTripIsMeasuredFromTheFirstNACK(t *testing.T) {
	f := newFeed()
	for round := 0; round < 5; round++ {
		lost := f.next(true)
		f.next(false)
		var asked []time.Duration
		at := f.now
		for ; len(asked) == 0 || at < asked[0]+300*ms; at += interval {
			if len(f.ask(at)) > 0 {
				asked = append(asked, at)
			}
		}
		f.s.add(lost, 0, asked[0]+300*ms) // answers the first NACK, 300 ms on
		f.now = at
	}
	if f.s.rtt < 250*ms {
		t.Fatalf("round trip %v, want about 300 ms", f.s.rtt)
	}
	lost := f.next(true)
	f.next(false)
	var times []time.Duration
	for at := f.now; at < f.now+time.Second; at += interval {
		if got := f.ask(at); len(got) > 0 && got[0] == lost {
			times = append(times, at)
		}
	}
	if len(times) < 2 || times[1]-times[0] < 300*ms {
		t.Errorf("asked at %v: retries faster than the round trip", times)
	}
}

// A slow source (a still screen share) that loses a packet across a long
// stretch of RTP time is asked for it: that is no blackout.
func TestASlowSourceIsNACKed(t *testing.T) {
	s := newStream(1, 90000)
	s.add(10, 0, 0)
	s.add(12, 2*90000, 2*time.Second) // two seconds on, one packet lost
	if got, _ := s.due(2*time.Second+maxWait, nil); len(got) != 1 || got[0] != 11 {
		t.Fatalf("asked for %v, want 11", got)
	}
}

// After a blackout longer than maxAge nothing is asked for: neither the
// packets of the blackout nor those missing from before it.
func TestABlackoutIsNotNACKed(t *testing.T) {
	f := newFeed()
	f.next(true)
	f.next(false)
	for i := 0; i < 300; i++ { // 3 s of packets lost
		f.next(true)
	}
	f.next(false)
	for at := f.now; at < f.now+2*time.Second; at += interval {
		if got := f.ask(at); len(got) != 0 {
			t.Fatalf("asked for %d packets after a 3 s blackout", len(got))
		}
	}
}

// A burst shorter than maxAge is asked for in full, in one NACK.
func TestABurstIsAskedForInFull(t *testing.T) {
	f := newFeed()
	var want []uint16
	for i := 0; i < 30; i++ {
		want = append(want, f.next(true))
	}
	f.next(false)
	if got := f.ask(f.now + maxWait); !slices.Equal(got, want) {
		t.Fatalf("asked for %v, want %v", got, want)
	}
}

// Through the interceptor: packets read from a stream that negotiated NACK
// lead to a NACK written on the PeerConnection's RTCP writer.
func TestTheInterceptorWritesNACKs(t *testing.T) {
	fac := New()
	it, err := fac.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	got := make(chan *rtcp.TransportLayerNack, 16)
	it.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok {
				got <- n
			}
		}
		return 0, nil
	}))
	var next []byte
	r := it.BindRemoteStream(&interceptor.StreamInfo{SSRC: 7, ClockRate: 90000, MimeType: "video/VP8",
		RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}},
		interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
			return copy(b, next), a, nil
		}))
	plain := it.BindRemoteStream(&interceptor.StreamInfo{SSRC: 8, ClockRate: 90000, MimeType: "video/VP8"}, nil)
	if plain != nil {
		t.Fatal("a stream without NACK feedback was wrapped")
	}
	buf := make([]byte, 1500)
	for _, seq := range []uint16{100, 101, 103} {
		next = []byte{0x80, 96, byte(seq >> 8), byte(seq), 0, 0, byte(seq), 0, 0, 0, 0, 7}
		if _, _, err := r.Read(buf, nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-got:
		if n.MediaSSRC != 7 || !slices.Equal(n.Nacks[0].PacketList(), []uint16{102}) {
			t.Fatalf("NACK %+v, want 102 of SSRC 7", n)
		}
	case <-time.After(testenv.Scale(2 * time.Second)):
		t.Fatal("no NACK for the lost packet")
	}
	// Counted once the loop has stopped (a retry may have gone out too).
	_ = it.Close()
	if c := fac.Counters(); c.NACKs < 1 || c.Asked < 1 || c.Asked > maxTries {
		t.Errorf("counters %+v", c)
	}
}

// Any sequence of arrivals: nothing pending beyond the bound, nothing
// asked twice in one NACK, nothing older than maxAge asked for.
func FuzzStream(f *testing.F) {
	f.Add([]byte{1, 1, 1, 3, 1, 1, 0xff, 0xff, 2, 1, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newStream(1, 48000)
		var seq uint16
		var ts uint32
		var now time.Duration
		for i := 0; i+2 < len(b); i += 3 {
			seq += uint16(int8(b[i]))
			ts += uint32(b[i+1]) * 480
			now += time.Duration(b[i+2]) * ms
			s.add(seq, ts, now)
			if len(s.pending) > maxPending {
				t.Fatalf("%d pending", len(s.pending))
			}
			since := map[uint16]time.Duration{}
			for _, m := range s.pending {
				since[m.seq] = m.since
			}
			asked, _ := s.due(now, nil)
			seen := map[uint16]bool{}
			for _, q := range asked {
				if seen[q] {
					t.Fatalf("asked for %d twice in one NACK", q)
				}
				seen[q] = true
				if now-since[q] > maxAge {
					t.Fatalf("asked for %d, missing for %v", q, now-since[q])
				}
			}
		}
	})
}
