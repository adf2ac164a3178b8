package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

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

// UpTrack is one published track. Each of its layers (one, or up to
// three for simulcast: simulcast.go) is read by a goroutine of its own,
// which stores every packet once in the layer's cache and hands its
// sequence number to each down-track that wants that layer; subscribers
// never block it.
type UpTrack struct {
	info TrackInfo
	// first is the track's first codec; pts, each payload type's, as the
	// publisher changes codec (codec.go).
	first codecID
	video bool
	pts   atomic.Pointer[ptCodecs]
	ptMu  sync.Mutex // serialises learnPT's stores
	log   *zap.Logger
	// layers are indexed by quality, lowest first; a track without
	// simulcast has layer 0 alone. A layer is set once, when its first
	// packet arrives, and never replaced.
	layers [maxLayers]atomic.Pointer[layer]
	// simulcast is set when the track's encodings carry rids: its
	// down-tracks then choose a layer (allocate.go).
	simulcast bool
	interval  time.Duration             // between keyframe requests, per layer
	writeRTCP func([]rtcp.Packet) error // to the publisher
	readers   atomic.Int32              // layer readers still running
	onEnd     func()                    // when the last reader stops
	// onRepaired tells the NACK generator of a packet that came on the
	// publisher's RTX stream (rtx.go).
	onRepaired func(ssrc uint32, seq uint16, ts uint32)

	mu    sync.Mutex // serialises changes to downs
	downs atomic.Pointer[[]*DownTrack]

	// level adds up an audio track's speech for the speaker detector
	// (level.go); its extension id is set before the reader starts.
	level levelMeter

	packets atomic.Uint64
	bytes   atomic.Uint64 // every layer's, for stats
	// gone holds the counts of down-tracks removed; retired, where the
	// whole track's counts go when it closes (the SFU's totals).
	gone     totals
	retired  *totals
	onReport func(kind string, l Link) // Config.OnLinkReport
	held     *atomic.Bool              // not forwarded while set (Participant.Hold); nil: never
	closed   atomic.Bool
	done     chan struct{}
	dyn      dynacast // the layers the publisher is asked for (dynacast.go)
}

// layer is one encoding of a track: its own SSRC, sequence numbers,
// cache and keyframe throttle.
type layer struct {
	rid    string
	ssrc   uint32
	remote *webrtc.TrackRemote
	cache  *packetcache.Cache
	kf     throttle
	uplink uplinkMeter // what reaches the server, kept by the base layer (uplink.go)
	// Of a simulcast layer: its media bytes, and when its last media
	// packet came (unix ns). A browser stops sending a layer its own
	// uplink cannot carry, and a down-track waiting for it would wait for
	// ever.
	bytes  atomic.Uint64
	lastAt atomic.Int64
	// size is the picture's width<<16 | height, from its last VP8
	// keyframe (0: not known), for the subscribers' views (dynacast.go).
	size atomic.Uint32

	// Owned by the reader: the last RTP timestamp, to notice a silence,
	// and payload type, to notice a change of codec.
	lastTS uint32
	seenTS bool
	pt     uint8
	seenPT bool
}

func newUpTrack(info TrackInfo, interval time.Duration, writeRTCP func([]rtcp.Packet) error, log *zap.Logger) *UpTrack {
	t := &UpTrack{
		info:      info,
		first:     codecOfMime(info.Codec),
		video:     info.Kind == "video",
		interval:  interval,
		writeRTCP: writeRTCP,
		log:       log.With(zap.String("track", info.ID), zap.String("codec", info.Codec)),
		done:      make(chan struct{}),
	}
	empty := []*DownTrack{}
	t.downs.Store(&empty)
	t.pts.Store(&ptCodecs{})
	t.dyn.asked = maxLayers - 1 // a publisher starts with every layer on
	return t
}

// newLayer makes layer i of t, reading ssrc's packets (remote may be nil
// in tests). It returns nil if the slot is taken.
func (t *UpTrack) newLayer(i int, rid string, ssrc uint32, remote *webrtc.TrackRemote) *layer {
	size := 512 // about 3 s of 1.5 Mbit/s video, more than any useful NACK horizon
	if t.info.Kind == "audio" {
		size = 64
	}
	l := &layer{rid: rid, ssrc: ssrc, remote: remote, cache: packetcache.New(size)}
	l.kf = throttle{interval: t.interval, send: func() {
		// FIR from a subscriber becomes a PLI too: every browser answers
		// PLI, and the publisher negotiated it.
		if t.writeRTCP == nil {
			return
		}
		if err := t.writeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.log.Debug("keyframe request not sent", zap.String("rid", rid), zap.Error(err))
		}
	}}
	if !t.layers[i].CompareAndSwap(nil, l) {
		return nil
	}
	return l
}

// addLayer takes in the encoding named rid (empty: the track's only
// one), and counts its reader, which the caller starts. It returns a nil
// layer for an encoding whose slot is taken: a fourth, or a duplicate.
func (t *UpTrack) addLayer(rid string, ssrc uint32, remote *webrtc.TrackRemote) (uint8, *layer) {
	i := layerOfRID(rid)
	if i < 0 {
		for j := range t.layers {
			if t.layers[j].Load() == nil {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return 0, nil
	}
	l := t.newLayer(i, rid, ssrc, remote)
	if l == nil {
		return 0, nil
	}
	t.readers.Add(1)
	return uint8(i), l
}

// layer returns layer i, nil if it has not arrived.
func (t *UpTrack) layer(i uint8) *layer {
	if int(i) >= maxLayers {
		return nil
	}
	return t.layers[i].Load()
}

// base is the lowest layer there is: the one whose link stats stand for
// the publisher's uplink (every layer crosses the same link).
func (t *UpTrack) base() *layer {
	for i := range t.layers {
		if l := t.layers[i].Load(); l != nil {
			return l
		}
	}
	return nil
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

// run reads one layer until it ends; the track ends with its last
// layer. It is the forwarding hot path: no allocation, no lock but the
// cache's, no network write.
func (t *UpTrack) run(i uint8, l *layer) {
	defer func() {
		if t.readers.Add(-1) == 0 && t.onEnd != nil {
			t.onEnd()
		}
	}()
	buf := make([]byte, packetcache.MaxPacket)
	for {
		n, attrs, err := l.remote.Read(buf)
		if err != nil {
			return
		}
		if attrs != nil && attrs.Get(webrtc.AttributeRtxSsrc) != nil {
			t.repaired(i, l, buf[:n])
			continue
		}
		t.forward(i, l, buf[:n])
	}
}

func (t *UpTrack) forward(i uint8, l *layer, pkt []byte) { t.forwardOf(i, l, pkt, false) }

// forwardOf forwards a packet of layer i; repaired: one that came on the
// publisher's RTX stream (rtx.go).
func (t *UpTrack) forwardOf(i uint8, l *layer, pkt []byte, repaired bool) {
	if len(pkt) < 12 {
		return
	}
	if l == t.base() && !repaired {
		// Held or not: it measures the link, which every layer crosses
		// (the quality reads the lowest layer's alone).
		l.uplink.observe(pkt, t.clockRate())
	}
	if t.held != nil && t.held.Load() {
		return
	}
	t.observeLevel(pkt)
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	if pt := pkt[1] & 0x7f; pt != l.pt || !l.seenPT {
		l.pt, l.seenPT = pt, true
		t.learnPT(l, pt)
	}
	if t.video {
		// Video back after half a second or more of silence (a network
		// outage, a camera turned back on): the subscribers' decoders have
		// lost the thread, so ask for a keyframe at once rather than wait
		// for each of them to notice and ask.
		ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
		if l.seenTS && int32(ts-l.lastTS) > videoClock/2 {
			l.kf.request()
		}
		// A retransmission is older: not the newest timestamp, which
		// would make the next packet look like the end of a silence.
		if !l.seenTS || int32(ts-l.lastTS) > 0 {
			l.lastTS, l.seenTS = ts, true
		}
	}
	l.cache.Store(seq, pkt)
	if t.simulcast && t.codecOf(l.pt) == codecVP8 {
		t.observeSize(l, pkt)
	}
	if t.simulcast && !paddingOnly(pkt) {
		// What the layer choice needs (layers.go). A browser pads a layer
		// to probe its own uplink, and keeps padding one whose frames it
		// stopped: that is not a layer that flows, nor what it costs.
		l.bytes.Add(uint64(len(pkt)))
		l.lastAt.Store(nanotime())
	}
	t.packets.Add(1)
	t.bytes.Add(uint64(len(pkt)))
	for _, d := range *t.downs.Load() {
		if d.wants(i) {
			d.enqueue(item(i, seq))
		}
	}
}

// requestKeyframe asks the publisher for a keyframe of every layer,
// throttled per layer.
func (t *UpTrack) requestKeyframe() {
	for i := range t.layers {
		t.requestKeyframeOf(uint8(i))
	}
}

// requestKeyframeOf asks for a keyframe of layer i, throttled.
func (t *UpTrack) requestKeyframeOf(i uint8) {
	if l := t.layer(i); l != nil && t.info.Kind == "video" {
		l.kf.request()
	}
}

func (t *UpTrack) addDown(d *DownTrack) bool {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return false
	}
	old := *t.downs.Load()
	next := make([]*DownTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	t.downs.Store(&next)
	t.mu.Unlock()
	t.reviewLayers(false)
	return true
}

func (t *UpTrack) removeDown(d *DownTrack) {
	t.mu.Lock()
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
	t.mu.Unlock()
	t.reviewLayers(false)
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
	t.stopDynacast()
	for i := range t.layers {
		if l := t.layers[i].Load(); l != nil {
			l.kf.stop()
		}
	}
	close(t.done)
	for _, d := range downs {
		d.detach(d)
	}
}

func (t *UpTrack) addStats(st *Stats) {
	st.PacketsIn += t.packets.Load()
	st.BytesIn += t.bytes.Load()
	for i := range t.layers {
		if l := t.layers[i].Load(); l != nil {
			st.KeyframeRequests += l.kf.count()
		}
	}
	st.addCounts(t.gone.load())
	downs := *t.downs.Load()
	st.DownTracks += len(downs)
	for _, d := range downs {
		st.addCounts(d.stats())
	}
}
