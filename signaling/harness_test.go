package signaling_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/internal/testlog"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

type env struct {
	t   *testing.T
	url string
	sig *signaling.Server
	sfu *sfu.SFU
}

// startServer runs the real SFU and signaling on loopback.
func startServer(t *testing.T, tweak func(*signaling.Config, *sfu.Config)) *env {
	t.Helper()
	log := testlog.New(t)
	scfg := sfu.Config{Logger: log.Named("sfu"), ICE: sfu.ICEConfig{IncludeLoopback: true}}
	cfg := signaling.Config{Logger: log.Named("signaling"), RingTimeout: 2 * time.Second}
	if tweak != nil {
		tweak(&cfg, &scfg)
	}
	var sig *signaling.Server
	if scfg.OnSpeakers == nil { // wired as main wires it
		scfg.OnSpeakers = func(room string, sp sfu.Speakers) { sig.Speakers(room, sp) }
	}
	s, err := sfu.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Media = signaling.SFUMedia(s)
	sig = signaling.New(cfg)
	hs := httptest.NewServer(sig.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
		defer cancel()
		_ = sig.Shutdown(ctx)
		hs.Close()
		_ = s.Close()
	})
	return &env{t: t, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", sig: sig, sfu: s}
}

// ctxT bounds a wait by d, scaled to the machine (testenv).
func ctxT(t *testing.T, d time.Duration) context.Context { return testenv.Context(t, d) }

// peer is a test participant: a client plus what it received.
type peer struct {
	*client.Client
	t        *testing.T
	mu       sync.Mutex
	received map[string]*webrtc.TrackRemote
	trackCh  chan *webrtc.TrackRemote
	keyReq   chan struct{} // keyframe requests for this peer's tracks
	plis     atomic.Int64
	raw      [][]byte // every message from the server, in order
}

func (e *env) dial(t *testing.T) *peer {
	t.Helper()
	return e.dialOpts(t, nil)
}

func (e *env) dialOpts(t *testing.T, state func(string, webrtc.PeerConnectionState)) *peer {
	t.Helper()
	return e.dialWith(t, nil, func(c *client.Config) { c.OnConnectionState = state })
}

// dialWith connects a test peer whose media goes through se (nil: real
// loopback), with its client configuration adjusted by tweak.
func (e *env) dialWith(t *testing.T, se *webrtc.SettingEngine, tweak func(*client.Config)) *peer {
	t.Helper()
	p := &peer{t: t, received: map[string]*webrtc.TrackRemote{}, trackCh: make(chan *webrtc.TrackRemote, 16),
		keyReq: make(chan struct{}, 1)}
	if se == nil {
		se = testSettingEngine()
	}
	api, err := client.DefaultAPI(se)
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Config{URL: e.url, API: api,
		OnKeyframeRequest: p.onKeyframeRequest,
		OnMessage: func(b []byte) {
			p.mu.Lock()
			p.raw = append(p.raw, b)
			p.mu.Unlock()
		},
		OnTrack: func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			p.mu.Lock()
			p.received[r.ID()] = r
			p.mu.Unlock()
			p.trackCh <- r
		}}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := client.Dial(ctxT(t, 5*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Client = c
	t.Cleanup(func() { _ = c.Close() })
	return p
}

func testSettingEngine() *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return se
}

func (e *env) join(t *testing.T, room, name string, live bool) (*peer, *protocol.Joined) {
	t.Helper()
	p := e.dial(t)
	j, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: room, Name: name, Live: live})
	if err != nil {
		t.Fatal(err)
	}
	return p, j
}

// joinAs joins with a role (open mode: the server takes the client's word).
func (e *env) joinAs(t *testing.T, room, name, role string, live bool) (*peer, *protocol.Joined) {
	t.Helper()
	p := e.dial(t)
	j, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: room, Name: name, Live: live, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return p, j
}

// said reports whether any message the peer received so far contains s.
func (p *peer) said(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.raw {
		if strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

// await fails the test unless an event of typ arrives in time.
func (p *peer) await(typ string, body any) {
	p.t.Helper()
	e, err := p.Await(ctxT(p.t, 5*time.Second), typ)
	if err != nil {
		p.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if body != nil {
		if err := e.Decode(body); err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p *peer) awaitCall(state string) protocol.Call {
	p.t.Helper()
	var c protocol.Call
	e, err := p.AwaitMatch(ctxT(p.t, 5*time.Second), func(e client.Event) bool {
		if e.Type != protocol.TypeCall {
			return false
		}
		var x protocol.Call
		return e.Decode(&x) == nil && x.State == state
	})
	if err != nil {
		p.t.Fatalf("waiting for call %s: %v", state, err)
	}
	_ = e.Decode(&c)
	return c
}

func (p *peer) awaitError(code string) protocol.Error {
	p.t.Helper()
	var pe protocol.Error
	p.await(protocol.TypeError, &pe)
	if pe.Code != code {
		p.t.Fatalf("error %q (%s), want %q", pe.Code, pe.Message, code)
	}
	return pe
}

func (p *peer) onKeyframeRequest(string) {
	p.plis.Add(1)
	select {
	case p.keyReq <- struct{}{}:
	default:
	}
}

// publisher sends codec-valid Opus and VP8 over RTP, remembers every
// payload it sent by sequence number, and answers PLIs with a keyframe.
type publisher struct {
	audio, video *webrtc.TrackLocalStaticRTP
	mu           sync.Mutex
	sent         map[string]map[uint16][]byte // track id → seq → payload
	keyReq       chan struct{}
	stop         chan struct{}
	wg           sync.WaitGroup
}

func startPublisher(t *testing.T, p *peer) *publisher {
	t.Helper()
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "av")
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "av")
	pub := &publisher{audio: audio, video: video, sent: map[string]map[uint16][]byte{"mic": {}, "cam": {}},
		keyReq: p.keyReq, stop: make(chan struct{})}
	if _, err := p.Publish(ctxT(t, 5*time.Second), audio, video); err != nil {
		t.Fatal(err)
	}
	pub.wg.Add(1)
	go pub.run()
	t.Cleanup(pub.close)
	return pub
}

func (pub *publisher) close() {
	select {
	case <-pub.stop:
	default:
		close(pub.stop)
	}
	pub.wg.Wait()
}

var (
	vp8Key   = append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}, make([]byte, 3000)...)
	vp8Delta = append([]byte{0x11, 0x02, 0x00}, make([]byte, 900)...)
)

func (pub *publisher) run() {
	defer pub.wg.Done()
	vp := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frame := 0
	for {
		select {
		case <-pub.stop:
			return
		case <-tick.C:
		}
		data := vp8Delta
		select {
		case <-pub.keyReq:
			data = vp8Key
		default:
		}
		if frame == 0 {
			data = vp8Key
		}
		frame++
		// Distinct bytes per frame, so a mix-up between packets shows.
		body := append([]byte(nil), data...)
		body[len(body)-1] = byte(frame)
		pub.send("cam", pub.video, vp.Packetize(body, 1800))
		opus := []byte{0xfc, byte(frame), byte(frame >> 8), 0x55, 0xaa}
		pub.send("mic", pub.audio, ap.Packetize(opus, 960))
	}
}

func (pub *publisher) send(id string, tr *webrtc.TrackLocalStaticRTP, pkts []*rtp.Packet) {
	for _, p := range pkts {
		pub.mu.Lock()
		pub.sent[id][p.SequenceNumber] = append([]byte(nil), p.Payload...)
		pub.mu.Unlock()
		_ = tr.WriteRTP(p)
	}
}

func (pub *publisher) payload(id string, seq uint16) ([]byte, bool) {
	pub.mu.Lock()
	defer pub.mu.Unlock()
	b, ok := pub.sent[id][seq]
	return b, ok
}

// awaitMatch waits for an event of typ about participant id (any member
// when id is empty): participant-joined/-updated carry it in
// participant.id, the others in participant.
func (p *peer) awaitMatch(typ, id string) {
	p.t.Helper()
	p.awaitMatchInto(typ, id, nil)
}

func (p *peer) awaitMatchInto(typ, id string, body any) {
	p.t.Helper()
	e, err := p.AwaitMatch(ctxT(p.t, 5*time.Second), func(e client.Event) bool {
		if e.Type != typ {
			return false
		}
		if id == "" {
			return true
		}
		var x struct {
			Participant json.RawMessage `json:"participant"`
		}
		if e.Decode(&x) != nil {
			return false
		}
		var pe protocol.Participant
		if json.Unmarshal(x.Participant, &pe) == nil && pe.ID == id {
			return true
		}
		var s string
		return json.Unmarshal(x.Participant, &s) == nil && s == id
	})
	if err != nil {
		p.t.Fatalf("waiting for %s about %q: %v", typ, id, err)
	}
	if body != nil {
		if err := e.Decode(body); err != nil {
			p.t.Fatal(err)
		}
	}
}

// awaitTrackKind returns a received track of kind (the first in id
// order), waiting for one; tracks of the other kind stay where they are.
func (p *peer) awaitTrackKind(t *testing.T, kind webrtc.RTPCodecType) *webrtc.TrackRemote {
	t.Helper()
	var found *webrtc.TrackRemote
	testenv.Eventually(t, 10*time.Second, "a "+kind.String()+" track", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for id, r := range p.received {
			if r.Kind() == kind && (found == nil || id < found.ID()) {
				found = r
			}
		}
		return found != nil
	})
	return found
}
