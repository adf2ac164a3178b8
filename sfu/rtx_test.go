package sfu

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
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

// wirePacket is a packet as a down-track wrote it.
type wirePacket struct {
	ssrc    uint32
	pt      uint8
	seq     uint16
	ts      uint32
	marker  bool
	pad     bool // padding alone
	payload []byte
}

// wireWriter records what a down-track sends, on any SSRC.
type wireWriter struct{ pkts []wirePacket }

func (w *wireWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.pkts = append(w.pkts, wirePacket{h.SSRC, h.PayloadType, h.SequenceNumber, h.Timestamp, h.Marker,
		h.Padding && len(payload) == 0, append([]byte(nil), payload...)})
	return 12 + len(payload) + int(h.PaddingSize), nil
}

// of is what went out on ssrc.
func (w *wireWriter) of(ssrc uint32) []wirePacket {
	var out []wirePacket
	for _, p := range w.pkts {
		if p.ssrc == ssrc {
			out = append(out, p)
		}
	}
	return out
}

// To a subscriber that negotiated RTX, a probe's padding and the packets
// it NACKs go on the RTX stream: the media stream's numbers run on with
// no padding among them, and a repair carries the number and payload
// the packet was first sent with.
func TestRepairsAndProbesGoOnTheRTXStream(t *testing.T) {
	r := newSimRig()
	w := &wireWriter{}
	b := testBinding(r.up, 7, 96, w)
	b.rtxSSRC, b.rtxPT[codecVP8] = 8, 97
	r.down.binding.Store(b)
	r.frame(0, 1, 2)
	r.frame()
	r.down.probeBps.Store(2_000_000)
	r.down.padAt = nanotime() - int64(50*time.Millisecond) // 50 ms of it due at the next frame
	r.frame()
	r.frame()
	r.down.probeBps.Store(0)
	r.frame()

	media, rtx := w.of(7), w.of(8)
	if len(media) < 4 || len(rtx) == 0 {
		t.Fatalf("%d media packets and %d on the RTX stream: no padding sent while probing", len(media), len(rtx))
	}
	for i, p := range media {
		if p.pad || p.pt != 96 {
			t.Fatalf("media packet %d: padding %v, payload type %d", i, p.pad, p.pt)
		}
		if i > 0 && p.seq != media[i-1].seq+1 {
			t.Fatalf("media numbers jump at %d: %d then %d", i, media[i-1].seq, p.seq)
		}
	}
	for i, p := range rtx {
		if !p.pad || p.pt != 97 || p.seq != uint16(i+1) {
			t.Fatalf("RTX packet %d: padding %v, payload type %d, number %d", i, p.pad, p.pt, p.seq)
		}
	}
	if int(r.down.padded.Load()) != len(rtx) {
		t.Errorf("padded counts %d, %d went out", r.down.padded.Load(), len(rtx))
	}

	// A NACK for the packet before the last.
	want := media[len(media)-2]
	it, ok := r.down.publisherSeq(want.seq)
	if !ok {
		t.Fatalf("media packet %d maps to nothing", want.seq)
	}
	r.down.write(it)
	if n := len(w.of(7)); n != len(media) {
		t.Fatalf("the repair went out on the media stream (%d packets, was %d)", n, len(media))
	}
	all := w.of(8)
	if len(all) != len(rtx)+1 {
		t.Fatalf("%d repairs on the RTX stream, want 1", len(all)-len(rtx))
	}
	got := all[len(all)-1]
	if got.pad || got.pt != 97 || got.seq != uint16(len(rtx)+1) || got.ts != want.ts || got.marker != want.marker {
		t.Fatalf("repair: padding %v, payload type %d, number %d, ts %d, marker %v; want 97, %d, %d, %v",
			got.pad, got.pt, got.seq, got.ts, got.marker, len(rtx)+1, want.ts, want.marker)
	}
	if len(got.payload) < 2 || binary.BigEndian.Uint16(got.payload) != want.seq || !bytes.Equal(got.payload[2:], want.payload) {
		t.Fatalf("repair payload % x, want the number %d then % x", got.payload, want.seq, want.payload)
	}
}

// A pion subscriber that negotiated RTX, as browsers do: what it NACKs
// comes back on the RTX stream, under the number and with the payload it
// had, and the sender reports go on counting the media stream's packets
// alone (pion counts whatever goes through the stream's writer).
func TestSubscriberRepairsComeOnTheRTXStream(t *testing.T) {
	vc := startVideoCall(t)
	b, remote := vc.b, vc.remote
	if remote.RtxSSRC() == 0 {
		t.Fatal("the subscriber was offered no RTX stream")
	}
	var recv *webrtc.RTPReceiver
	for _, r := range b.sub.GetReceivers() {
		if r.Track() == remote {
			recv = r
		}
	}
	if recv == nil {
		t.Fatal("no receiver for the track")
	}
	var (
		mu       sync.Mutex
		payloads = map[uint16][]byte{}
		high     uint16
		repaired = map[uint16]int{}
		bad      []string
		reports  []struct{ count, high uint32 }
	)
	go func() {
		for {
			p, a, err := remote.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			if a != nil && a.Get(webrtc.AttributeRtxSsrc) != nil {
				if a.Get(webrtc.AttributeRtxSsrc) != uint32(remote.RtxSSRC()) {
					bad = append(bad, "a repair on another SSRC")
				} else if orig, ok := payloads[p.SequenceNumber]; !ok || !bytes.Equal(orig, p.Payload) {
					bad = append(bad, "a repair that differs from the packet")
				}
				repaired[p.SequenceNumber]++
			} else if _, dup := payloads[p.SequenceNumber]; dup {
				bad = append(bad, "a packet again on the media stream")
			} else {
				payloads[p.SequenceNumber] = append([]byte(nil), p.Payload...)
				if len(payloads) == 1 || int16(p.SequenceNumber-high) > 0 {
					high = p.SequenceNumber
				}
			}
			mu.Unlock()
		}
	}()
	go func() {
		for {
			pkts, _, err := recv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(remote.SSRC()) {
					mu.Lock()
					reports = append(reports, struct{ count, high uint32 }{sr.PacketCount, uint32(high)})
					mu.Unlock()
				}
			}
		}
	}()
	// A sender report after a hundred packets, then NACKs for forty of
	// them (pion's receiver holds no more than 50 repairs unread), then
	// the next report.
	testenv.Eventually(t, 10*time.Second, "a hundred packets and a sender report", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(payloads) >= 100 && len(reports) > 0
	})
	mu.Lock()
	first := reports[len(reports)-1]
	nReports := len(reports)
	var asked []uint16
	for q := high - 50; q != high-10; q++ {
		if _, ok := payloads[q]; ok {
			asked = append(asked, q)
		}
	}
	mu.Unlock()
	if len(asked) < 35 {
		t.Fatalf("only %d of the last packets came", len(asked))
	}
	nack := &rtcp.TransportLayerNack{MediaSSRC: uint32(remote.SSRC())}
	for _, q := range asked {
		nack.Nacks = append(nack.Nacks, rtcp.NackPair{PacketID: q})
	}
	if err := b.sub.WriteRTCP([]rtcp.Packet{nack}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the repairs and the next sender report", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(repaired) < len(asked) {
			nReports = len(reports) // the report to read comes after them
		}
		return len(repaired) == len(asked) && len(reports) > nReports
	})
	mu.Lock()
	defer mu.Unlock()
	for _, q := range asked {
		if repaired[q] != 1 {
			t.Errorf("packet %d repaired %d times", q, repaired[q])
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d wrong packets, the first: %s", len(bad), bad[0])
	}
	// The reports' packet counts move with the media stream's numbers, not
	// by the repairs as well (a few packets either way: the report and the
	// media are read on two goroutines).
	last := reports[len(reports)-1]
	counted, numbered := int(last.count-first.count), int(uint16(last.high-first.high))
	t.Logf("between two sender reports: %d packets counted, %d numbered, %d repaired", counted, numbered, len(asked))
	if counted > numbered+len(asked)/4 {
		t.Errorf("the sender reports counted %d packets for %d numbered: the RTX stream was counted", counted, numbered)
	}
	if counted < numbered-len(asked)/4 {
		t.Errorf("the sender reports counted %d packets for %d numbered", counted, numbered)
	}
}
