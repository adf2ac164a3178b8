package client

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Talker stands in for a browser's microphone where the server's speaker
// detection is concerned: a 20 ms Opus-like packet every 20 ms (it decodes
// to nothing useful), each with the audio level extension (RFC 6464) set
// to the level the caller chooses, as browsers set it from what the
// microphone hears. Publish Track, then Start with its sender.
type Talker struct {
	track *webrtc.TrackLocalStaticRTP

	mu    sync.Mutex
	level uint8      // -dBov: 0 the loudest, 127 silence
	burst []burstReq // queued bursts, first one sending
	start chan *webrtc.RTPSender
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type burstReq struct {
	level   uint8
	packets int
	sent    chan struct{}
}

// Silence is the level of a microphone that hears nothing.
const Silence = 127

// talkFrame is a Talker's packet duration.
const talkFrame = 20 * time.Millisecond

// NewTalker makes a silent talker whose track has the given ids.
func NewTalker(id, stream string) (*Talker, error) {
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, id, stream)
	if err != nil {
		return nil, err
	}
	t := &Talker{track: tr, level: Silence, start: make(chan *webrtc.RTPSender, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t, nil
}

// Track is what to publish.
func (t *Talker) Track() *webrtc.TrackLocalStaticRTP { return t.track }

// Start begins sending, with the extension id negotiated on sender (what
// Publish returned for Track). A nil sender, or one that negotiated no
// level, sends packets without it. It may be called once.
func (t *Talker) Start(sender *webrtc.RTPSender) {
	select {
	case t.start <- sender:
	default:
	}
}

// SetLevel sets the level, in -dBov, of the packets from now on.
func (t *Talker) SetLevel(level uint8) {
	t.mu.Lock()
	t.level = min(level, Silence)
	t.mu.Unlock()
}

// Burst sends d (rounded to whole packets) at level, then goes back to
// the level set, as a cough does; it returns once the burst is sent.
func (t *Talker) Burst(level uint8, d time.Duration) error {
	b := burstReq{level: min(level, Silence), packets: max(int(d/talkFrame), 1), sent: make(chan struct{})}
	t.mu.Lock()
	t.burst = append(t.burst, b)
	t.mu.Unlock()
	select {
	case <-b.sent:
		return nil
	case <-t.done:
		return errTalkerClosed
	}
}

var errTalkerClosed = errors.New("client: talker closed")

// Close stops sending.
func (t *Talker) Close() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

// next is the level of the next packet.
func (t *Talker) next() uint8 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.burst) == 0 {
		return t.level
	}
	b := &t.burst[0]
	b.packets--
	if b.packets == 0 {
		close(b.sent)
		t.burst = t.burst[1:]
	}
	return b.level
}

func (t *Talker) run() {
	defer close(t.done)
	var sender *webrtc.RTPSender
	select {
	case sender = <-t.start:
	case <-t.stop:
		return
	}
	tick := time.NewTicker(talkFrame)
	defer tick.Stop()
	seq, ts := uint16(rand.Uint32()), rand.Uint32()
	var id uint8
	// Packets follow the clock, as a microphone's do: a tick that comes
	// late (a busy machine) sends the frames that were due meanwhile,
	// instead of stretching the sender's time.
	began, sent := time.Now(), 0
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		if id == 0 {
			id = AudioLevelID(sender)
		}
		due := int(time.Since(began) / talkFrame)
		if due-sent > maxCatchUp { // frames that old are lost, not late
			skip := due - sent - maxCatchUp
			seq += uint16(skip)
			ts += uint32(skip) * frameTicks
			sent += skip
		}
		for ; sent < due; sent++ {
			_ = t.track.WriteRTP(t.packet(seq, ts, id))
			seq++
			ts += frameTicks
		}
	}
}

const (
	frameTicks = uint32(48000 * talkFrame / time.Second) // RTP clock per frame
	maxCatchUp = 10                                      // frames sent late at most (200 ms)
)

// packet is the next frame, with its level in extension id (0: none).
func (t *Talker) packet(seq uint16, ts uint32, id uint8) *rtp.Packet {
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts},
		Payload: []byte{0xfc, 0xff, 0xfe}} // one 20 ms CELT frame, all but empty
	level := t.next()
	if id != 0 {
		// The voice flag as a browser's detector would set it.
		v := level
		if level <= 50 {
			v |= 0x80
		}
		_ = p.SetExtension(id, []byte{v})
	}
	return p
}

// AudioLevelID is the id sender negotiated for the audio level extension
// (0: none, or nil sender).
func AudioLevelID(sender *webrtc.RTPSender) uint8 {
	if sender == nil {
		return 0
	}
	for _, e := range sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI && e.ID > 0 && e.ID < 256 {
			return uint8(e.ID)
		}
	}
	return 0
}
