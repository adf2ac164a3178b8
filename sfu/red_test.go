package sfu

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
)

// redAPI is a client's pion with Opus and RED, as a browser has.
func redAPI(t *testing.T) *webrtc.API {
	t.Helper()
	return pionWith(t, func(m *webrtc.MediaEngine) error {
		if err := m.RegisterDefaultCodecs(); err != nil {
			return err
		}
		return m.RegisterCodec(redCodec, webrtc.RTPCodecTypeAudio)
	})
}

// redTrack is a microphone sent as RED when its connection negotiated
// it: each packet holds the previous packet's audio and its own.
type redTrack struct {
	mu        sync.Mutex
	red, opus uint8 // negotiated payload types
	writer    webrtc.TrackLocalWriter
	ssrc      uint32
}

func (s *redTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first webrtc.RTPCodecParameters
	for i, c := range ctx.CodecParameters() {
		switch strings.ToLower(c.MimeType) {
		case "audio/red":
			s.red = uint8(c.PayloadType)
		case "audio/opus":
			s.opus = uint8(c.PayloadType)
		}
		if i == 0 {
			first = c
		}
	}
	s.writer, s.ssrc = ctx.WriteStream(), uint32(ctx.SSRC())
	return first, nil
}

func (s *redTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (s *redTrack) ID() string                            { return "mic" }
func (s *redTrack) RID() string                           { return "" }
func (s *redTrack) StreamID() string                      { return "stream-a" }
func (s *redTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeAudio }

// opusFrame is packet n's audio: a TOC byte and n.
func opusFrame(n int) []byte {
	return append([]byte{0x78, byte(n >> 8), byte(n)}, bytes.Repeat([]byte{byte(n)}, 40+n%7)...)
}

// plainFirst is how many packets go out as plain Opus before RED starts,
// as from a browser whose renegotiation put RED first.
const plainFirst = 10

// send writes packet n as RED (with packet n-1 inside), or as plain Opus
// for the first few; false until bound.
func (s *redTrack) send(n int) bool {
	s.mu.Lock()
	w, red, opus, ssrc := s.writer, s.red, s.opus, s.ssrc
	s.mu.Unlock()
	if w == nil || red == 0 {
		return false
	}
	prev, cur := opusFrame(n-1), opusFrame(n)
	payload := append([]byte{0x80 | opus, 0x03, 0xc0 | byte(len(prev)>>8), byte(len(prev)), opus}, prev...)
	payload = append(payload, cur...)
	pt := red
	if n <= plainFirst {
		pt, payload = opus, cur
	}
	h := &rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(n), Timestamp: uint32(n * 960), SSRC: ssrc}
	_, err := w.WriteRTP(h, payload)
	return err == nil
}

// audioLog is what a subscriber reads of the microphone.
type audioLog struct {
	mu   sync.Mutex
	mime []string
	data [][]byte
}

func (l *audioLog) read(tr *webrtc.TrackRemote) {
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.mime = append(l.mime, strings.ToLower(tr.Codec().MimeType))
		l.data = append(l.data, p.Payload)
		l.mu.Unlock()
	}
}

func (l *audioLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.data)
}

// A publisher that sends RED (answered with RED first; it starts with
// plain Opus, as after a renegotiation) reaches a
// subscriber that negotiated RED with the redundancy, its blocks named
// with that subscriber's Opus payload type, and one without RED with the
// primary block alone, as Opus, byte for byte; so does a recorder's tap.
func TestREDReachesEachSubscriberAsItTakesIt(t *testing.T) {
	s := newTestSFU(t)
	a := joinPeerOn(t, s, "r", "a", redAPI(t))
	withRED := joinPeerOn(t, s, "r", "red", redAPI(t))
	plain := joinPeer(t, s, "r", "plain")
	mic := &redTrack{}
	a.publishTrack(mic)
	if !strings.Contains(strings.ToLower(a.answer()), "red/48000") {
		t.Fatal("the answer has no RED")
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if mic.send(i) {
				i++
			}
		}
	}()
	defer func() { close(stop); <-done }()

	var lr, lp audioLog
	go lr.read(withRED.awaitTrack(5 * time.Second))
	go lp.read(plain.awaitTrack(5 * time.Second))
	tap := &tapWriter{}
	info, stopTap, err := s.Tap("r", "a:mic", tap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stopTap()
	if info.Codec != webrtc.MimeTypeOpus {
		t.Fatalf("the tap is told %s, want Opus", info.Codec)
	}
	testenv.Eventually(t, 5*time.Second, "audio at both subscribers and the tap", func() bool {
		return lr.len() >= plainFirst+20 && lp.len() >= 20 && tap.len() >= 20
	})

	primaries := func(who string, mime []string, data [][]byte) {
		t.Helper()
		for i, b := range data {
			if mime[i] != "audio/opus" {
				t.Fatalf("%s got %s", who, mime[i])
			}
			if len(b) < 3 || !bytes.Equal(b, opusFrame(int(b[1])<<8|int(b[2]))) {
				t.Fatalf("%s's packet %d is not a primary block: % x", who, i, b[:min(8, len(b))])
			}
		}
	}
	lp.mu.Lock()
	primaries("the plain subscriber", lp.mime, lp.data)
	lp.mu.Unlock()
	tap.mu.Lock()
	primaries("the tap", tap.mime, tap.data)
	tap.mu.Unlock()
	lr.mu.Lock()
	red := 0
	for i, b := range lr.data {
		if lr.mime[i] == "audio/opus" && red == 0 {
			continue // from before the publisher wrapped it in RED
		}
		red++
		if lr.mime[i] != "audio/red" {
			t.Fatalf("the RED subscriber got %s after RED had started", lr.mime[i])
		}
		if len(b) < 5 || b[0] != 0x80|111 || b[4] != 111 {
			t.Fatalf("the RED subscriber's packet %d: blocks not under its Opus payload type: % x", i, b[:min(8, len(b))])
		}
	}
	lr.mu.Unlock()
	if red < 20 {
		t.Fatalf("the RED subscriber got %d RED packets", red)
	}
}

// tapWriter records what a tap writes, as a recorder would read it.
type tapWriter struct {
	mu   sync.Mutex
	mime []string
	data [][]byte
}

func (w *tapWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	mime := "audio/opus"
	if h.PayloadType != 111 {
		mime = fmt.Sprintf("payload type %d", h.PayloadType)
	}
	w.mime = append(w.mime, mime)
	w.data = append(w.data, append([]byte(nil), payload...))
	return len(payload), nil
}

func (w *tapWriter) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.data)
}
