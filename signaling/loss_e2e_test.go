package signaling_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/sfu"
)

// seqLog records the sequence numbers of a track's packets, unwrapped.
type seqLog struct {
	arrivals // when packets came (for flowing)
	mu       sync.Mutex
	seen     map[int64]bool
	top      int64 // highest unwrapped sequence number
	last     uint16
	n        int
}

func logSeqs(r *webrtc.TrackRemote) *seqLog {
	l := &seqLog{seen: map[int64]bool{}}
	go func() {
		for {
			p, _, err := r.ReadRTP()
			if err != nil {
				return
			}
			l.mu.Lock()
			ext := int64(p.SequenceNumber)
			if l.n > 0 {
				ext = l.top + int64(int16(p.SequenceNumber-l.last))
			}
			l.seen[ext] = true
			if l.n == 0 || ext > l.top {
				l.top, l.last = ext, p.SequenceNumber
			}
			l.n++
			l.mu.Unlock()
			l.arrivals.mu.Lock()
			l.arrivals.times = append(l.arrivals.times, time.Now())
			l.arrivals.mu.Unlock()
		}
	}()
	return l
}

// mark is the highest sequence number so far.
func (l *seqLog) mark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.top
}

// firstAfter is the lowest sequence number received above s.
func (l *seqLog) firstAfter(s int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.top
	for q := range l.seen {
		if q > s && q < first {
			first = q
		}
	}
	return first
}

// missing counts the sequence numbers in [from, to] never received.
func (l *seqLog) missing(from, to int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for s := from; s <= to; s++ {
		if !l.seen[s] {
			n++
		}
	}
	return n
}

// lossOver waits for drain to pass (what a queue held when the link
// changed), then counts the packets of the next three seconds: how many
// were sent (the span of their numbers) and how many never came.
func (l *seqLog) lossOver(t *testing.T, drain time.Duration) (lost int, n int64) {
	t.Helper()
	settle := time.Now().Add(drain)
	testenv.Eventually(t, 2*drain+5*time.Second, "the queue to drain", func() bool { return time.Now().After(settle) })
	from := l.mark() + 1
	end := time.Now().Add(3 * time.Second)
	testenv.Eventually(t, 10*time.Second, "three seconds of packets", func() bool { return time.Now().After(end) })
	to := l.mark()
	return l.missing(from, to), to - from + 1
}

// A patient on an uplink that loses 5 % of its packets: the server asks
// for what it missed, and the doctor receives the patient's video almost
// whole. Without repair the doctor would miss about one packet in twenty.
func TestALossyUplinkIsRepaired(t *testing.T) {
	mw := newMediaWorld(t, 0)
	doctor := mw.member(t, "Dr", "1.2.3.20")
	mw.member(t, "Pat", "1.2.3.21")
	video := doctor.awaitTrackKind(t, webrtc.RTPCodecTypeVideo)
	seqs := logSeqs(video)
	testenv.Eventually(t, 10*time.Second, "the patient's video at the doctor", func() bool { return seqs.mark() > 0 })

	mw.setLoss("1.2.3.21", 0.05)
	from := seqs.mark() + 1
	before := mw.e.sfu.Stats()
	end := time.Now().Add(6 * time.Second)
	testenv.Eventually(t, 15*time.Second, "six seconds of lossy media", func() bool { return time.Now().After(end) })
	to := seqs.mark()
	mw.setLoss("1.2.3.21", 0)
	// What is still to be repaired has a second more to arrive.
	settled := time.Now().Add(time.Second)
	testenv.Eventually(t, 5*time.Second, "repairs in flight", func() bool { return time.Now().After(settled) })

	sent := to - from + 1
	lost := seqs.missing(from, to)
	after := mw.e.sfu.Stats()
	t.Logf("%d of %d packets never reached the doctor; the server sent %d NACKs for %d packets, gave up on %d",
		lost, sent, after.NACKsSent-before.NACKsSent, after.NACKedPackets-before.NACKedPackets,
		after.LostUnrepaired-before.LostUnrepaired)
	if sent < 100 { // 50 a second nominally; fewer on a loaded machine
		t.Fatalf("only %d packets in six seconds", sent)
	}
	if after.NACKedPackets == before.NACKedPackets {
		t.Fatal("the server asked for nothing on a lossy uplink")
	}
	if float64(lost) > 0.01*float64(sent) {
		t.Errorf("%d of %d packets lost after repair (%.1f %%), want at most 1 %%", lost, sent, 100*float64(lost)/float64(sent))
	}
}

// The server's view of each subscriber's downlink, from its receiver
// reports, is in /api/rooms: the doctor's lossy downlink shows loss and a
// round trip, the patient's clean one shows none.
func TestSubscribersLinksAreMeasured(t *testing.T) {
	mw := newMediaWorld(t, 0)
	doctor := mw.member(t, "Dr", "1.2.3.20")
	patient := mw.member(t, "Pat", "1.2.3.21")
	// pion's receiver reports count what the application reads.
	record(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	record(patient.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	mw.setLossTo("1.2.3.20", 0.1)

	link := func(id, kind string) (sfu.Link, bool) {
		for _, r := range mw.e.sig.AllRooms() {
			for _, l := range r.Downlinks[id].Tracks {
				if l.Kind == kind {
					return l, true
				}
			}
		}
		return sfu.Link{}, false
	}
	var dl, pl sfu.Link
	testenv.Eventually(t, 15*time.Second, "loss and a round trip on the doctor's video link, a round trip on the patient's", func() bool {
		var ok1, ok2 bool
		dl, ok1 = link(doctor.ID(), "video")
		pl, ok2 = link(patient.ID(), "video")
		return ok1 && ok2 && dl.Lost > 0 && dl.RTTMS > 0 && pl.RTTMS > 0
	})
	t.Logf("doctor's video link %+v; patient's %+v", dl, pl)
	if pl.Lost != 0 || pl.Loss != 0 {
		t.Errorf("loss on the patient's clean downlink: %+v", pl)
	}
	if dl.RTTMS > 2000 || pl.RTTMS > 2000 {
		t.Errorf("round trips %v ms / %v ms on a local network", dl.RTTMS, pl.RTTMS)
	}
	if dl.Track == "" || dl.Track == pl.Track {
		t.Errorf("links name tracks %q and %q", dl.Track, pl.Track)
	}
}

// The server's send-side estimate of a subscriber's downlink follows the
// link: with the doctor's downlink capped at 120 kbit/s (a third of the
// patient's video), the doctor's estimate falls to the cap, while the
// patient's uncapped downlink keeps an estimate well above it.
func TestTheServerEstimatesEachDownlink(t *testing.T) {
	const capBits = 120_000
	// Audio first off: a paused video would let the estimate climb.
	mw := newMediaWorld(t, 0, func(w *world) { w.keepVideo = true })
	doctor := mw.memberOn(t, "Dr", downCap(capBits), "1.2.3.20")
	patient := mw.member(t, "Pat", "1.2.3.21")
	// Every track read: pion's transport-cc feedback counts only the
	// packets the application reads, and reports the others lost.
	for _, p := range []*peer{doctor, patient} {
		record(p.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
		record(p.awaitTrackKind(t, webrtc.RTPCodecTypeAudio))
	}
	estimate := func(id string) int {
		for _, r := range mw.e.sig.AllRooms() {
			if d, ok := r.Downlinks[id]; ok {
				return d.EstimateKbps
			}
		}
		return 0
	}
	var d, p int
	testenv.Eventually(t, 20*time.Second, "the doctor's estimate at its 120 kbit/s cap", func() bool {
		d, p = estimate(doctor.ID()), estimate(patient.ID())
		return d > 0 && d*1000 <= capBits*5/4
	})
	t.Logf("estimates: doctor (capped at %d kbit/s) %d kbit/s, patient %d kbit/s", capBits/1000, d, p)
	if p*1000 < 2*capBits || p < 2*d {
		t.Errorf("the uncapped patient's estimate (%d kbit/s) is not clearly above the capped doctor's (%d kbit/s)", p, d)
	}
}
