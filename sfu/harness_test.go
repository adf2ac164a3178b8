package sfu

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/internal/testlog"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/zap"
)

// testPeer is a client made of two pion PeerConnections wired straight to
// a Participant, without signaling: the media path alone under test.
type testPeer struct {
	t        *testing.T
	p        *Participant
	pub, sub *webrtc.PeerConnection
	tracks   chan *webrtc.TrackRemote
	work     chan func() // serialises the client's reactions to events

	mu        sync.Mutex
	published map[webrtc.RTPCodecType]*webrtc.RTPSender
}

func newTestSFU(t *testing.T) *SFU {
	t.Helper()
	s, err := New(Config{Logger: testlog.New(t), ICE: ICEConfig{IncludeLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func clientAPI(t *testing.T) *webrtc.API { return newClientAPI(t, true) }

// newClientAPI is a client's pion; browserLike adds what a browser has
// beyond pion's codecs: transport-wide sequence numbers on what it sends,
// the audio level extension offered, and RTCP reports. Neither has a NACK
// responder (tests send their own NACKs).
func newClientAPI(t *testing.T, browserLike bool) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if browserLike {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, ir); err != nil {
			t.Fatal(err)
		}
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// The NACK test asks again for a packet it did receive; SRTP replay
	// protection would rightly drop the duplicate.
	se.DisableSRTPReplayProtection(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(ir))
}

func joinPeer(t *testing.T, s *SFU, room, id string) *testPeer {
	t.Helper()
	return joinPeerOn(t, s, room, id, clientAPI(t))
}

// joinPeerOn is joinPeer with the client's pion made by api.
func joinPeerOn(t *testing.T, s *SFU, room, id string, api *webrtc.API) *testPeer {
	t.Helper()
	tp := &testPeer{t: t, tracks: make(chan *webrtc.TrackRemote, 16), work: make(chan func(), 64),
		published: map[webrtc.RTPCodecType]*webrtc.RTPSender{}}
	var err error
	if tp.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if tp.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	tp.sub.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { tp.tracks <- r })
	done := make(chan struct{})
	joined := make(chan struct{}) // tp.p is set: an offer can come during Join
	exited := make(chan struct{})
	// closing: the test is over and closes the peer; what the worker
	// still does fails, and is not the test's failure (nor may it be
	// reported once the test has ended).
	var closing atomic.Bool
	fail := func(format string, args ...any) {
		if !closing.Load() {
			t.Errorf(format, args...)
		}
	}
	go func() {
		defer close(exited)
		select {
		case <-joined:
		case <-done:
			return
		}
		for {
			select {
			case f := <-tp.work:
				f()
			case <-done:
				return
			}
		}
	}()
	ev := Events{
		Offer: func(sdp string) {
			tp.work <- func() {
				if err := tp.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
					// Likewise an offer that comes once the test has
					// closed this side (a publisher leaving renegotiates
					// a subscriber that is leaving too).
					if !errors.Is(err, webrtc.ErrConnectionClosed) {
						fail("client: %v", err)
					}
					return
				}
				ans, _ := tp.sub.CreateAnswer(nil)
				_ = tp.sub.SetLocalDescription(ans)
				// An offer can still be on its way when the test closes
				// the participant; the answer then finds it closed.
				if err := tp.p.Answer(ans.SDP); err != nil && !errors.Is(err, ErrClosed) {
					fail("server rejected answer: %v", err)
				}
			}
		},
		Answer: func(sdp string) {
			tp.work <- func() {
				if err := tp.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
					fail("client: %v", err)
				}
			}
		},
		Candidate: func(role Role, c webrtc.ICECandidateInit) {
			tp.work <- func() {
				pc := tp.sub
				if role == RolePublish {
					pc = tp.pub
				}
				if err := pc.AddICECandidate(c); err != nil {
					fail("client candidate: %v", err)
				}
			}
		},
	}
	onCand := func(role Role) func(*webrtc.ICECandidate) {
		return func(c *webrtc.ICECandidate) {
			if c != nil {
				tp.work <- func() { _ = tp.p.AddCandidate(role, c.ToJSON()) }
			}
		}
	}
	tp.pub.OnICECandidate(onCand(RolePublish))
	tp.sub.OnICECandidate(onCand(RoleSubscribe))
	tp.p, err = s.Join(room, ParticipantParams{ID: id, CanPublish: true, CanSubscribe: true, Events: ev})
	close(joined)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		closing.Store(true)
		tp.p.Close()
		_ = tp.pub.Close()
		_ = tp.sub.Close()
		close(done)
		<-exited
	})
	return tp
}

// publish adds a sample track and negotiates it.
func (tp *testPeer) publish(mime, id string) *webrtc.TrackLocalStaticSample {
	tp.t.Helper()
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime}, id, "stream-"+tp.p.id)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.publishTrack(tr)
	return tr
}

// publishTrack adds tr and negotiates it.
func (tp *testPeer) publishTrack(tr webrtc.TrackLocal) {
	tp.t.Helper()
	sender, err := tp.pub.AddTrack(tr)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.mu.Lock()
	tp.published[tr.Kind()] = sender
	tp.mu.Unlock()
	tp.offer()
}

// offer sends the server a new publish offer, from the peer's goroutine.
func (tp *testPeer) offer() {
	tp.t.Helper()
	errc := make(chan error, 1)
	tp.work <- func() {
		offer, err := tp.pub.CreateOffer(nil)
		if err == nil {
			err = tp.pub.SetLocalDescription(offer)
		}
		if err == nil {
			err = tp.p.Offer(offer.SDP)
		}
		errc <- err
	}
	if err := <-errc; err != nil {
		tp.t.Fatal(err)
	}
}

// answer waits for the server's answer to the peer's publish offer to
// be applied (that happens on the peer's own goroutine) and returns it.
func (tp *testPeer) answer() string {
	tp.t.Helper()
	var sdp string
	testenv.Eventually(tp.t, 5*time.Second, "the server's answer applied", func() bool {
		if d := tp.pub.RemoteDescription(); d != nil {
			sdp = d.SDP
		}
		return sdp != ""
	})
	return sdp
}

// awaitTrack returns the next track this peer receives.
func (tp *testPeer) awaitTrack(timeout time.Duration) *webrtc.TrackRemote {
	tp.t.Helper()
	select {
	case r := <-tp.tracks:
		return r
	case <-testenv.After(timeout):
		tp.t.Fatal("no remote track arrived")
		return nil
	}
}

var (
	vp8Key   = append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}, make([]byte, 2500)...)
	vp8Delta = append([]byte{0x11, 0x02, 0x00}, make([]byte, 800)...)
)

// sendVideo writes frames until stop closes, a keyframe first and then
// whenever key is signalled.
func sendVideo(tr *webrtc.TrackLocalStaticSample, key <-chan struct{}, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	first := true
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		frame := vp8Delta
		select {
		case <-key:
			frame = vp8Key
		default:
		}
		if first {
			frame, first = vp8Key, false
		}
		_ = tr.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
	}
}

// videoCall is peer a publishing VP8 (answering PLIs with keyframes) to
// peer b, which has the track.
type videoCall struct {
	s      *SFU
	a, b   *testPeer
	remote *webrtc.TrackRemote
	fb     *publisherFeedback
}

func startVideoCall(t *testing.T) *videoCall {
	t.Helper()
	s := newTestSFU(t)
	a := joinPeer(t, s, "r", "a")
	b := joinPeer(t, s, "r", "b")
	tr := a.publish(webrtc.MimeTypeVP8, "cam")
	stop, key := make(chan struct{}), make(chan struct{}, 1)
	t.Cleanup(func() { close(stop) })
	fb := watchFeedback(a.published[webrtc.RTPCodecTypeVideo], key)
	go sendVideo(tr, key, stop)
	return &videoCall{s: s, a: a, b: b, remote: b.awaitTrack(5 * time.Second), fb: fb}
}

// testBinding binds a down-track of up to w, in up's first codec under
// payload type pt.
func testBinding(up *UpTrack, ssrc uint32, pt uint8, w RTPWriter) *binding {
	b := &binding{ssrc: ssrc, writer: w}
	b.byCodec[up.first] = pt
	return b
}

// testUpTrack is an up-track fed by hand (UpTrack.forward) with n layers:
// one is a plain track, more a simulcast one (rids q, h, f).
func testUpTrack(info TrackInfo, n int) *UpTrack {
	t := newUpTrack(info, 0, nil, zap.NewNop())
	if n == 1 {
		t.addLayer("", 1, nil)
		return t
	}
	t.simulcast = true
	for i, rid := range []string{"q", "h", "f"}[:n] {
		t.addLayer(rid, uint32(10+i), nil)
	}
	return t
}
