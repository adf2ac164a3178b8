package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/protocol"
)

// Media shapes what each publisher sends.
const (
	maxRTP          = 1200 // bytes on the wire before SRTP, as browsers packetise
	keyframeScale   = 4    // a keyframe is this many average delta frames
	maxFramePackets = 250  // the stamp's count is a byte
	audioInterval   = 20 * time.Millisecond
	audioMinBytes   = 80 // Opus at 32–64 kbit/s, 20 ms frames
	audioMaxBytes   = 160
	videoWidth      = 1280
	videoHeight     = 720
)

// Track kinds, indexing the last counters halt returns.
const (
	kindVideo = 0
	kindAudio = 1
)

// publisher is one live participant sending VP8 and Opus-sized audio, each
// packet stamped, and answering keyframe requests (PLI/FIR) with the next
// frame.
type publisher struct {
	rcv   *receiver // what it receives from the room's other publishers
	cl    *client.Client
	id    string
	media MediaConfig
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP
	// Next stamp counters, and keyframes asked for, per video layer (a
	// camera of one layer is layer 0; simulcast.go has three).
	videoNext [3]atomic.Uint32
	videoKey  [3]atomic.Bool
	audioNext atomic.Uint32
	layers    [3]*client.SimulcastLayer // with simulcast
	plis      atomic.Uint64
	keys      atomic.Uint64
	errs      atomic.Uint64
	lagMu     sync.Mutex
	lag       Histogram      // how late the send loops woke for their ticks
	stalls    FreezeDetector // gaps > 200 ms between frames sent: every subscriber sees these
	stop      chan struct{}
	measuring *atomic.Bool   // the run's window is open
	send      sync.WaitGroup // the send loops
}

// MediaConfig is the publishers' media.
type MediaConfig struct {
	VideoKbps        int           `json:"video_kbps"`
	FPS              int           `json:"fps"`
	Audio            bool          `json:"audio"`
	KeyframeInterval time.Duration `json:"-"`
	// Pacing spreads video packets at this multiple of the bitrate, as
	// a browser's pacer does (libwebrtc: 2.5); 0 sends each frame as one
	// burst, the worst case for the server's fan-out.
	Pacing float64 `json:"pacing"`
	// Simulcast sends the camera as three layers (simulcast.go).
	Simulcast bool `json:"simulcast,omitempty"`
}

// frameSizes returns delta and keyframe sizes whose mix averages the
// configured bitrate: over k frames between periodic keyframes,
// (k-1)·delta + scale·delta = k·average.
func (m MediaConfig) frameSizes() (delta, key int) {
	avg := m.VideoKbps * 1000 / 8 / m.FPS
	k := max(1, int(m.KeyframeInterval.Seconds()*float64(m.FPS)))
	delta = max(avg*k/(k+keyframeScale-1), 64)
	key = delta * keyframeScale
	limit := maxFramePackets * (maxRTP - 12 - StampLen - 4)
	return min(delta, limit), min(key, limit)
}

// vp8Frame fills a frame of n bytes (n ≥ 10) with a valid VP8 frame
// header (RFC 6386 9.1): a keyframe has the start code and dimensions w×h,
// so the server's keyframe detection and any depacketiser accept it. The
// partition data after it is filler: nothing decodes it.
func vp8Frame(n int, key bool, w, h uint16) []byte {
	b := make([]byte, n)
	part := min(n/2, 1<<19-1)             // first partition size, 19 bits
	tag := uint32(1)<<4 | uint32(part)<<5 // show_frame, version 0
	if !key {
		tag |= 1 // inter frame
	}
	b[0], b[1], b[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	if key {
		b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
		// w and h are 14 bits each, scale 0.
		b[6], b[7] = byte(w), byte(w>>8)
		b[8], b[9] = byte(h), byte(h>>8)
	}
	for i := 10; i < n; i++ {
		b[i] = byte(i * 7) // not all zeros, in case anything on the path compresses
	}
	return b
}

// newPublisher joins room, publishes its tracks and waits until the
// server announced them, so subscribers that join next receive them.
func newPublisher(ctx context.Context, r *run, room string, n int) (*publisher, error) {
	api, err := r.apis.publisher()
	if err != nil {
		return nil, err
	}
	p := &publisher{media: r.cfg.Media, stop: make(chan struct{}),
		measuring: &r.measuring}
	p.rcv = newReceiver(r, room, roleInterPublisher)
	cl, err := client.Dial(ctx, client.Config{URL: r.entry(), API: api, OnTrack: p.rcv.onTrack,
		OnKeyframeRequest: p.onKeyframeRequest, OnLayerKeyframeRequest: p.onLayerKeyframeRequest})
	if err != nil {
		return nil, err
	}
	p.cl = cl
	if err := r.join(ctx, cl, room, fmt.Sprintf("publisher-%d", n)); err != nil {
		_ = cl.Close()
		return nil, err
	}
	p.id = cl.ID()
	r.addPublisher(p)
	var tracks []webrtc.TrackLocal
	if !p.media.Simulcast {
		p.video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "av")
		tracks = append(tracks, p.video)
	}
	if p.media.Audio {
		p.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "av")
		tracks = append(tracks, p.audio)
	}
	announced := len(tracks)
	if len(tracks) > 0 {
		if _, err := cl.Publish(ctx, tracks...); err != nil {
			return p, fmt.Errorf("publish: %w", err)
		}
	}
	p.send.Add(1)
	if p.media.Simulcast {
		if err := p.publishLayers(ctx); err != nil {
			p.send.Done()
			return p, fmt.Errorf("publish simulcast: %w", err)
		}
		announced++
		go p.sendLayers()
	} else {
		go p.sendVideo()
	}
	if p.audio != nil {
		p.send.Add(1)
		go p.sendAudio()
	}
	// The server announces a track once its first packets arrive.
	for range announced {
		if _, err := cl.AwaitMatch(ctx, func(e client.Event) bool {
			var te protocol.TrackEvent
			return e.Type == protocol.TypeTrackPublished && e.Decode(&te) == nil && te.Participant == p.id
		}); err != nil {
			return p, fmt.Errorf("waiting for the server to announce the published tracks: %w", err)
		}
	}
	return p, nil
}

// onKeyframeRequest is the client's hook for a PLI or FIR on one of the
// published tracks (the client reads the senders' RTCP, which also feeds
// pion's interceptors): the next video frame is a keyframe.
func (p *publisher) onKeyframeRequest(trackID string) {
	if trackID != "cam" {
		return
	}
	p.plis.Add(1)
	p.videoKey[0].Store(true)
}

// noteLag records how late a send loop woke for a tick: from the tick, or
// from when the previous frame's pacing ended if that was later (a paced
// keyframe outlasts a frame interval by design; that is not lag).
func (p *publisher) noteLag(tick, ready time.Time) {
	lag := time.Since(tick)
	if ready.After(tick) {
		lag = time.Since(ready)
	}
	p.lagMu.Lock()
	p.lag.Record(lag)
	p.lagMu.Unlock()
}

func (p *publisher) sendVideo() {
	delta, key := p.media.frameSizes()
	p.sendFrames([]videoLayer{{
		delta: vp8Frame(delta, false, videoWidth, videoHeight), key: vp8Frame(key, true, videoWidth, videoHeight),
		kbps: p.media.VideoKbps, next: &p.videoNext[0], out: p.video,
		asked: func() bool { return p.videoKey[0].Swap(false) },
	}})
}

// videoLayer is one encoding the send loop makes at each frame time:
// its frames, its counter, whether a keyframe was asked of it, and where
// its packets go.
type videoLayer struct {
	delta, key []byte
	kbps       int
	layer      uint8
	next       *atomic.Uint32
	asked      func() bool
	out        interface{ WriteRTP(*rtp.Packet) error }
}

// sendFrames sends one frame of every layer per frame time, lowest first,
// paced together as a browser's encoder and pacer send them. A keyframe
// goes out on the timer (every layer) and on request (that layer).
func (p *publisher) sendFrames(ls []videoLayer) {
	defer p.send.Done()
	pks := make([]rtp.Packetizer, len(ls))
	total := 0
	for i := range ls {
		pks[i] = rtp.NewPacketizer(maxRTP-StampLen, 96, 0, &codecs.VP8Payloader{EnablePictureID: true},
			rtp.NewRandomSequencer(), 90000)
		total += ls[i].kbps
	}
	tick := time.NewTicker(time.Second / time.Duration(p.media.FPS))
	defer tick.Stop()
	start := time.Now()
	pace := newPacer(float64(total) * 1000 / 8 * p.media.Pacing)
	defer pace.timer.Stop()
	var lastKey, ready time.Time
	for {
		var now time.Time
		select {
		case <-p.stop:
			return
		case now = <-tick.C:
		}
		p.noteLag(now, ready)
		periodic := lastKey.IsZero() || now.Sub(lastKey) >= p.media.KeyframeInterval
		if p.measuring.Load() {
			p.lagMu.Lock()
			p.stalls.Frame(time.Now())
			p.lagMu.Unlock()
		}
		ts := uint32(now.Sub(start) / (time.Second / 90000))
		keys := 0
		for i := range ls {
			l := &ls[i]
			frame := l.delta
			if l.asked() || periodic {
				frame = l.key
				keys++
				p.keys.Add(1)
			}
			pkts := pks[i].Packetize(frame, 0)
			for j, pkt := range pkts {
				if !pace.wait(12+len(pkt.Payload)+StampLen, p.stop) {
					return
				}
				pkt.Timestamp = ts
				c := l.next.Add(1) - 1
				pkt.Payload = AppendStamp(pkt.Payload, Stamp{Index: uint8(j), Count: uint8(len(pkts)),
					Layer: l.layer, Sent: time.Now().UnixNano(), Counter: c})
				if err := l.out.WriteRTP(pkt); err != nil {
					p.errs.Add(1)
				}
			}
		}
		if keys == len(ls) {
			lastKey = now // every layer started again: the timer too
		}
		ready = time.Now()
	}
}

// pacer lets packets out at a byte rate. Waits shorter than pacerSlack
// are not slept but carried over, so timer granularity does not slow the
// rate down.
type pacer struct {
	rate  float64 // bytes per second; 0: no pacing
	next  time.Time
	timer *time.Timer
}

const pacerSlack = 200 * time.Microsecond

func newPacer(rate float64) *pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pacer{rate: rate, timer: t}
}

// wait returns when a packet of size bytes may go, or false if stop
// closed first.
func (pc *pacer) wait(size int, stop <-chan struct{}) bool {
	if pc.rate <= 0 {
		return true
	}
	now := time.Now()
	if pc.next.Before(now) {
		pc.next = now // idle: no credit is saved up for a later burst
	} else if d := pc.next.Sub(now); d > pacerSlack {
		pc.timer.Reset(d)
		select {
		case <-pc.timer.C:
		case <-stop:
			return false
		}
	}
	pc.next = pc.next.Add(time.Duration(float64(size) / pc.rate * float64(time.Second)))
	return true
}

func (p *publisher) sendAudio() {
	defer p.send.Done()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	buf := make([]byte, 0, audioMaxBytes)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(rng.Uint32())}}
	tick := time.NewTicker(audioInterval)
	defer tick.Stop()
	for {
		var now time.Time
		select {
		case <-p.stop:
			return
		case now = <-tick.C:
		}
		p.noteLag(now, time.Time{})
		size := audioMinBytes + rng.IntN(audioMaxBytes-audioMinBytes+1)
		body := buf[:size-StampLen]
		body[0] = 0xfc // Opus TOC: CELT fullband 20 ms, stereo, one frame
		for i := 1; i < len(body); i++ {
			body[i] = byte(rng.Uint32())
		}
		c := p.audioNext.Add(1) - 1
		pkt.Payload = AppendStamp(body, Stamp{Index: 0, Count: 1, Sent: time.Now().UnixNano(), Counter: c})
		if err := p.audio.WriteRTP(pkt); err != nil {
			p.errs.Add(1)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += 960 // 20 ms at 48 kHz
	}
}

// halt stops sending and returns, per kind, the last counter sent (the
// loss accounting's end; 0 when nothing was sent).
func (p *publisher) halt() (last [2]uint32) {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.send.Wait()
	for k, next := range [2]*atomic.Uint32{kindVideo: &p.videoNext[0], kindAudio: &p.audioNext} {
		if n := next.Load(); n > 0 {
			last[k] = n - 1
		}
	}
	return last
}

// sent is the number of packets sent so far, every track and layer.
func (p *publisher) sent() uint64 {
	n := uint64(p.audioNext.Load())
	for i := range p.videoNext {
		n += uint64(p.videoNext[i].Load())
	}
	return n
}
