package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
)

// dropFirst is a lossy uplink inside a publisher's pion, below its NACK
// responder: every nth video packet's first transmission is lost, and
// what the responder resends (on the RTX stream) gets through.
type dropFirst struct {
	interceptor.NoOp
	n       uint16
	dropped atomic.Int64
	mu      sync.Mutex
	seen    map[uint16]bool
}

func (d *dropFirst) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if info.MimeType != webrtc.MimeTypeVP8 {
		return w
	}
	media := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == media && h.SequenceNumber%d.n == 0 {
			d.mu.Lock()
			first := !d.seen[h.SequenceNumber]
			d.seen[h.SequenceNumber] = true
			d.mu.Unlock()
			if first {
				d.dropped.Add(1)
				return len(payload), nil
			}
		}
		return w.Write(h, payload, a)
	})
}

type dropFactory struct{ d *dropFirst }

func (f dropFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.d, nil }

// rtxPublisherAPI is a browser-like publisher: pion's codecs with RTX,
// a NACK responder that resends on the RTX stream, and d under it.
func rtxPublisherAPI(t *testing.T, d *dropFirst) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	ir.Add(dropFactory{d}) // first added: nearest the network on a write
	resp, err := nack.NewResponderInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	ir.Add(resp)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// A publisher that negotiates RTX loses one video packet in twenty on
// its uplink: the server's NACKs are answered on the RTX stream, each
// lost packet is asked for about once (the generator hears of every
// repair) and none is given up, the subscriber gets every packet in
// order with no gap, and the server's view of the uplink still shows the
// loss.
func TestRTXFromAPublisherRepairsItsUplink(t *testing.T) {
	s := newTestSFU(t)
	d := &dropFirst{n: 20, seen: map[uint16]bool{}}
	a := joinPeerOn(t, s, "r", "a", rtxPublisherAPI(t, d))
	b := joinPeer(t, s, "r", "b")
	tr := a.publish(webrtc.MimeTypeVP8, "cam")
	if sdp := a.answer(); !strings.Contains(strings.ToLower(sdp), "rtx/90000") {
		t.Fatal("the server's answer has no RTX")
	}
	stop, key := make(chan struct{}), make(chan struct{}, 1)
	defer close(stop)
	// Reading the sender's RTCP answers PLIs with keyframes, and runs the
	// responder's NACK handling.
	watchFeedback(a.published[webrtc.RTPCodecTypeVideo], key)
	go sendVideo(tr, key, stop)
	remote := b.awaitTrack(5 * time.Second)

	var mu sync.Mutex
	var seqs []uint16
	go func() {
		for {
			p, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			seqs = append(seqs, p.SequenceNumber)
			mu.Unlock()
		}
	}()
	before := s.nacks.Counters()
	dropped0 := d.dropped.Load()
	testenv.Eventually(t, 10*time.Second, "200 packets at the subscriber", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs) >= 200
	})
	dropped := d.dropped.Load() - dropped0
	testenv.Eventually(t, 5*time.Second, "the NACKs to settle", func() bool {
		c := s.nacks.Counters()
		return c.Asked-before.Asked >= uint64(dropped)
	})
	after := s.nacks.Counters()
	asked, gaveUp := after.Asked-before.Asked, after.GaveUp-before.GaveUp
	t.Logf("dropped %d, asked %d, gave up %d", dropped, asked, gaveUp)
	if dropped < 5 {
		t.Fatalf("only %d packets dropped", dropped)
	}
	if float64(asked) > 1.5*float64(dropped)+2 {
		t.Errorf("asked for %d packets for %d lost: repairs on the RTX stream were not noticed", asked, dropped)
	}
	if gaveUp > 1 {
		t.Errorf("gave up %d packets that RTX repaired", gaveUp)
	}
	// No gaps: a repaired packet reaches the subscriber late, under the
	// number it would have had.
	mu.Lock()
	got := map[uint16]bool{}
	first, last := seqs[0], seqs[len(seqs)-1]
	for _, q := range seqs {
		got[q] = true
	}
	mu.Unlock()
	missing := 0
	for q := first; q != last-10; q++ { // the newest may still be on their way
		if !got[q] {
			missing++
		}
	}
	if missing > 1 {
		t.Errorf("the subscriber misses %d packets of %d", missing, uint16(last-first))
	}
	q := a.p.Quality()
	t.Logf("uplink loss as the server sees it: %.1f %%", q.LossUp*100)
	if q.LossUp < 0.02 {
		t.Errorf("the server sees %.1f %% uplink loss where 5 %% of the packets were lost", q.LossUp*100)
	}
}
