package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/sfu/internal/keyframe"
)

// h264API is a client's pion that decodes H.264 alone (as an old phone).
func h264API(t *testing.T) *webrtc.API {
	t.Helper()
	return pionWith(t, func(m *webrtc.MediaEngine) error {
		opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
			ClockRate: 48000, Channels: 2}, PayloadType: 111}
		if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
			return err
		}
		return m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
			PayloadType: 102}, webrtc.RTPCodecTypeVideo)
	})
}

// pionWith is a client's pion on loopback with the codecs register sets
// up, and no interceptors.
func pionWith(t *testing.T, register func(*webrtc.MediaEngine) error) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := register(m); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// switchingTrack is a publisher's video that changes codec on the same
// RTP stream, as a browser does when the answer's order changes: it
// writes each packet with the payload type its codec negotiated.
type switchingTrack struct {
	mu     sync.Mutex
	pts    map[string]uint8 // MIME type (lower case) -> payload type
	writer webrtc.TrackLocalWriter
	ssrc   uint32
}

func (s *switchingTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pts = map[string]uint8{}
	var vp8 webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		mime := strings.ToLower(c.MimeType)
		if _, ok := s.pts[mime]; !ok {
			s.pts[mime] = uint8(c.PayloadType)
		}
		if mime == "video/vp8" {
			vp8 = c
		}
	}
	s.writer, s.ssrc = ctx.WriteStream(), uint32(ctx.SSRC())
	return vp8, nil
}

func (s *switchingTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (s *switchingTrack) ID() string                            { return "cam" }
func (s *switchingTrack) RID() string                           { return "" }
func (s *switchingTrack) StreamID() string                      { return "stream-a" }
func (s *switchingTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeVideo }

// send writes one one-packet frame in codec mime; false before Bind or
// if the codec was not negotiated.
func (s *switchingTrack) send(mime string, seq uint16, ts uint32, payload []byte) bool {
	s.mu.Lock()
	w, pt, ok := s.writer, s.pts[strings.ToLower(mime)], s.pts != nil
	s.mu.Unlock()
	if !ok || w == nil || pt == 0 {
		return false
	}
	h := &rtp.Header{Version: 2, Marker: true, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: s.ssrc}
	_, err := w.WriteRTP(h, payload)
	return err == nil
}

var (
	h264Key   = append([]byte{0x65, 0x88, 0x84, 0x00}, make([]byte, 600)...) // an IDR slice
	h264Delta = append([]byte{0x41, 0x9a, 0x02, 0x00}, make([]byte, 300)...) // a non-IDR slice
)

// received is what a subscriber reads of one track.
type received struct {
	mu   sync.Mutex
	pkts []rtp.Header
	keys []bool // whether each packet starts a keyframe of its codec
	mime map[uint8]string
}

func (r *received) read(tr *webrtc.TrackRemote) {
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		mime := strings.ToLower(tr.Codec().MimeType)
		r.mu.Lock()
		r.pkts = append(r.pkts, p.Header)
		r.keys = append(r.keys, keyframe.IsStart(keyframeCodec(mime), p.Payload))
		r.mime[p.PayloadType] = mime
		r.mu.Unlock()
	}
}

// count is how many packets came in codec mime.
func (r *received) count(mime string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.pkts {
		if r.mime[h.PayloadType] == mime {
			n++
		}
	}
	return n
}

// A publisher that changes codec mid-stream reaches every subscriber in
// the new codec, on the same down-track: one that takes both codecs sees
// the payload type change with sequence numbers going on by one and the
// new codec starting at a keyframe; one that decodes H.264 alone gets the
// track (not refused, as it was) but nothing until the publisher sends
// H.264, and then from a keyframe.
func TestPublisherChangesCodecMidStream(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	both := joinPeer(t, s, "r", "both")
	only := joinPeerOn(t, s, "r", "only", h264API(t))
	track := &switchingTrack{}
	a.publishTrack(track)

	var codec atomic.Value
	codec.Store("video/vp8")
	stop := make(chan struct{})
	done := make(chan struct{})
	defer func() { close(stop); <-done }()
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var seq uint16 = 65000 // wraps during the test
		var ts uint32
		last, since := "", 0
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mime := codec.Load().(string)
			if mime != last {
				since = 0
			}
			// A new codec starts with a keyframe, as an encoder does; a
			// delta frame goes first here, as if the keyframe's first
			// packet were overtaken: nobody may get it.
			key := n%25 == 0 && since > 0 || since == 1
			since++
			payload := vp8Delta
			switch {
			case mime == "video/vp8" && key:
				payload = vp8Key[:900] // one packet
			case mime == "video/h264" && key:
				payload = h264Key
			case mime == "video/h264":
				payload = h264Delta
			}
			if track.send(mime, seq, ts, payload) {
				seq++
				last = mime
			}
			ts += 1800
		}
	}()

	var rb, ro received
	rb.mime, ro.mime = map[uint8]string{}, map[uint8]string{}
	go rb.read(both.awaitTrack(5 * time.Second))
	testenv.Eventually(t, 5*time.Second, "VP8 at the subscriber that has it", func() bool { return rb.count("video/vp8") >= 20 })
	// pion reports a track on its first packet: none has come.
	select {
	case <-only.tracks:
		t.Fatal("the H.264-only subscriber got packets of VP8")
	default:
	}
	if st := only.p.Downlink(); len(st.Tracks) != 1 {
		t.Fatalf("the H.264-only subscriber has %d tracks, want the camera (not refused)", len(st.Tracks))
	}

	codec.Store("video/h264")
	go ro.read(only.awaitTrack(5 * time.Second))
	testenv.Eventually(t, 5*time.Second, "H.264 at both subscribers", func() bool {
		return rb.count("video/h264") >= 20 && ro.count("video/h264") >= 20
	})

	for name, r := range map[string]*received{"both": &rb, "only": &ro} {
		r.mu.Lock()
		var prev *rtp.Header
		started := map[string]bool{}
		for i := range r.pkts {
			h := &r.pkts[i]
			mime := r.mime[h.PayloadType]
			if !started[mime] {
				if !r.keys[i] {
					t.Errorf("%s: the first %s packet (seq %d) is not a keyframe", name, mime, h.SequenceNumber)
				}
				started[mime] = true
			}
			if prev != nil {
				if d := h.SequenceNumber - prev.SequenceNumber; d != 1 {
					t.Errorf("%s: sequence number went from %d to %d", name, prev.SequenceNumber, h.SequenceNumber)
				}
				if int32(h.Timestamp-prev.Timestamp) < 0 {
					t.Errorf("%s: timestamp went back from %d to %d", name, prev.Timestamp, h.Timestamp)
				}
				if h.SSRC != prev.SSRC {
					t.Errorf("%s: the SSRC changed", name)
				}
			}
			prev = h
		}
		r.mu.Unlock()
	}
	// Back to VP8 (the H.264-only member left the room, say): the
	// subscriber that has it follows; the other waits, without asking
	// for keyframes it cannot use.
	before := ro.count("video/h264")
	codec.Store("video/vp8")
	n := rb.count("video/vp8")
	testenv.Eventually(t, 5*time.Second, "VP8 again", func() bool { return rb.count("video/vp8") >= n+20 })
	if got := ro.count("video/h264"); got > before+1 || ro.count("video/vp8") != 0 {
		t.Fatalf("the H.264-only subscriber got %d more H.264 and %d VP8 packets after the change back", got-before, ro.count("video/vp8"))
	}
}

// PreferCodec puts the room's codec first in the answer to a publisher's
// offer, whatever the offer's order, and keeps the others.
func TestPreferCodecOrdersTheAnswer(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	a.p.PreferCodec(webrtc.MimeTypeH264)
	a.publish(webrtc.MimeTypeVP8, "cam")
	// The answer reaches the client's PeerConnection on its own
	// goroutine: until then there is none, or the previous one.
	first := func() (string, []string) {
		rd := a.pub.RemoteDescription()
		if rd == nil {
			return "", nil
		}
		var d sdp.SessionDescription
		if err := d.UnmarshalString(rd.SDP); err != nil {
			t.Fatal(err)
		}
		for _, m := range d.MediaDescriptions {
			if m.MediaName.Media != "video" {
				continue
			}
			var names []string
			for _, f := range m.MediaName.Formats {
				for _, at := range m.Attributes {
					if at.Key == "rtpmap" && strings.HasPrefix(at.Value, f+" ") {
						names = append(names, strings.ToUpper(strings.SplitN(strings.Fields(at.Value)[1], "/", 2)[0]))
					}
				}
			}
			return names[0], names
		}
		t.Fatal("no video in the answer")
		return "", nil
	}
	var all []string
	testenv.Eventually(t, 5*time.Second, "the answer", func() bool {
		_, all = first()
		return all != nil
	})
	if all[0] != "H264" || len(all) < 2 {
		t.Fatalf("answer's video codecs %v, want H264 first and the rest kept", all)
	}
	// A later offer, after the room changed its mind.
	a.p.PreferCodec(webrtc.MimeTypeVP8)
	a.offer()
	testenv.Eventually(t, 5*time.Second, "the second answer", func() bool {
		got, _ := first()
		return got == "VP8"
	})
}
