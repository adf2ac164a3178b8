package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/sfu/internal/keyframe"
	"consult/sfu/internal/packetcache"
)

// TrackInfo describes a published track. ID and StreamID are unique in the
// server (they are prefixed with the publisher's id), and are the track and
// stream ids subscribers see on their receiving PeerConnection.
type TrackInfo struct {
	ID          string
	StreamID    string
	Participant string
	Kind        string // "audio" or "video"
	Codec       string // MIME type, e.g. "video/VP8"
	// Source is SourceScreen for a screen share (the publisher named its
	// transceiver: Participant.SetScreen), else empty.
	Source string
}

// SourceScreen marks a screen share. Its stream id ends in ":screen", so
// a subscriber knows the track for a screen from the track alone.
const SourceScreen = "screen"

// UpTrack is one published track. A single goroutine reads it, stores
// every packet once in the shared cache and hands its sequence number to
// each down-track's queue; subscribers never block it.
type UpTrack struct {
	info   TrackInfo
	codec  keyframe.Codec
	remote *webrtc.TrackRemote
	cache  *packetcache.Cache
	kf     throttle
	log    *zap.Logger

	mu    sync.Mutex // serialises changes to downs
	downs atomic.Pointer[[]*DownTrack]

	// Owned by the reader: the last RTP timestamp, to notice a silence.
	lastTS uint32
	seenTS bool
	// level adds up an audio track's speech for the speaker detector
	// (level.go); its extension id is set before the reader starts.
	level levelMeter

	packets atomic.Uint64
	bytes   atomic.Uint64 // for the allocator's rate
	uplink  uplinkMeter   // what of the stream reaches the server (uplink.go)
	// gone holds the counts of down-tracks removed; retired, where the
	// whole track's counts go when it closes (the SFU's totals).
	gone     totals
	retired  *totals
	onReport func(kind string, l Link) // Config.OnLinkReport
	held     *atomic.Bool              // not forwarded while set (Participant.Hold); nil: never
	closed   atomic.Bool
	done     chan struct{}
}

func newUpTrack(info TrackInfo, remote *webrtc.TrackRemote, interval time.Duration, writeRTCP func([]rtcp.Packet) error, log *zap.Logger) *UpTrack {
	size := 512 // about 3 s of 1.5 Mbit/s video, more than any useful NACK horizon
	if info.Kind == "audio" {
		size = 64
	}
	t := &UpTrack{
		info:   info,
		codec:  keyframeCodec(info.Codec),
		remote: remote,
		cache:  packetcache.New(size),
		log:    log.With(zap.String("track", info.ID), zap.String("codec", info.Codec)),
		done:   make(chan struct{}),
	}
	ssrc := uint32(remote.SSRC())
	t.kf = throttle{interval: interval, send: func() {
		// FIR from a subscriber becomes a PLI too: every browser answers
		// PLI, and the publisher negotiated it.
		if err := writeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.log.Debug("keyframe request not sent", zap.Error(err))
		}
	}}
	empty := []*DownTrack{}
	t.downs.Store(&empty)
	return t
}

// videoClock is the RTP clock rate of every video codec the SFU takes.
const videoClock = 90000

// clockRate is the track's RTP clock rate (Opus: 48 kHz).
func (t *UpTrack) clockRate() uint32 {
	if t.info.Kind == "audio" {
		return 48000
	}
	return videoClock
}

// Info describes the track.
func (t *UpTrack) Info() TrackInfo { return t.info }

// run reads the remote track until it ends. It is the forwarding hot
// path: no allocation, no lock but the cache's, no network write.
func (t *UpTrack) run(onEnd func()) {
	defer onEnd()
	buf := make([]byte, packetcache.MaxPacket)
	for {
		n, _, err := t.remote.Read(buf)
		if err != nil {
			return
		}
		t.forward(buf[:n])
	}
}

func (t *UpTrack) forward(pkt []byte) {
	if len(pkt) < 12 {
		return
	}
	t.uplink.observe(pkt, t.clockRate()) // held or not: it measures the link
	if t.held != nil && t.held.Load() {
		return
	}
	t.observeLevel(pkt)
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	if t.codec != keyframe.Unknown {
		// Video back after half a second or more of silence (a network
		// outage, a camera turned back on): the subscribers' decoders have
		// lost the thread, so ask for a keyframe at once rather than wait
		// for each of them to notice and ask.
		ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
		if t.seenTS && int32(ts-t.lastTS) > videoClock/2 {
			t.requestKeyframe()
		}
		t.lastTS, t.seenTS = ts, true
	}
	t.cache.Store(seq, pkt)
	t.packets.Add(1)
	t.bytes.Add(uint64(len(pkt)))
	for _, d := range *t.downs.Load() {
		d.enqueue(seq)
	}
}

// requestKeyframe asks the publisher for a keyframe, throttled.
func (t *UpTrack) requestKeyframe() {
	if t.info.Kind == "video" {
		t.kf.request()
	}
}

func (t *UpTrack) addDown(d *DownTrack) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	old := *t.downs.Load()
	next := make([]*DownTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	t.downs.Store(&next)
	return true
}

func (t *UpTrack) removeDown(d *DownTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.downs.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	t.downs.Store(&next)
	// After the store: a reader of Stats may miss d for a moment, but
	// never counts it twice.
	if len(next) < len(old) {
		t.gone.add(d.stats())
	}
}

// close ends the track and every down-track fed by it.
func (t *UpTrack) close() {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return
	}
	// The room has stopped listing the track (for a moment the SFU's
	// Stats missed it), and a packet in flight may still count after
	// this: readers of Stats keep the highest value they have seen.
	var st Stats
	t.addStats(&st)
	if t.retired != nil {
		t.retired.add(st)
	}
	downs := *t.downs.Load()
	empty := []*DownTrack{}
	t.downs.Store(&empty)
	t.mu.Unlock()
	t.kf.stop()
	close(t.done)
	for _, d := range downs {
		d.detach(d)
	}
}

func (t *UpTrack) addStats(st *Stats) {
	st.PacketsIn += t.packets.Load()
	st.BytesIn += t.bytes.Load()
	st.KeyframeRequests += t.kf.count()
	st.addCounts(t.gone.load())
	downs := *t.downs.Load()
	st.DownTracks += len(downs)
	for _, d := range downs {
		st.addCounts(d.stats())
	}
}
