package sfu

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/sfu/internal/keyframe"
	"consult/sfu/internal/packetcache"
	"consult/sfu/internal/rtpx"
)

// queueLen bounds a down-track's backlog. A subscriber that falls this far
// behind loses packets (and may NACK them) instead of slowing anyone else.
const queueLen = 256

// base, the first publisher sequence number under the current offset,
// moves up to baseKeep behind the newest packet once it falls baseSlide
// behind, so that int16 differences with it stay meaningful however long
// a call lasts.
const (
	baseSlide = 0x4000
	baseKeep  = 0x1000
)

// keyframeRetry is how long a new subscriber waits for a keyframe before
// asking again, in case the publisher's answer was lost.
const keyframeRetry = time.Second

// DownTrack is one published track as sent to one subscriber. It is a
// webrtc.TrackLocal. Its writer goroutine is the only one that writes to
// the subscriber's stream; fresh packets and retransmissions both arrive
// on its queue as sequence numbers into the up-track's cache.
type DownTrack struct {
	up *UpTrack
	// detach runs when the up-track ends: it unsubscribes a subscriber's
	// down-track, or ends a tap.
	detach func(*DownTrack)
	queue  chan uint16
	done   chan struct{}
	once   sync.Once

	binding atomic.Pointer[binding]
	sender  *webrtc.RTPSender // set by the subscriber before RTCP is read
	// ready reports whether packets can reach the subscriber now (nil:
	// always, as for a tap). A keyframe asked for before then would be
	// lost, and would hold the publisher's throttle window shut for the
	// request that counts, made when the subscriber connects.
	ready func() bool
	// firstMedia, when set, runs once the first packet has gone out.
	firstMedia func()

	// paused stops the track for this subscriber (allocate.go: its
	// downlink cannot carry it). The writer drops what arrives, and on
	// resuming waits for a keyframe and goes on with the next sequence
	// number, so the subscriber sees one stream with no gap to NACK.
	paused atomic.Bool
	// seqMap is the writer's current mapping, for the NACK reader: bit 32
	// set once anything was sent, then offset<<16 | base, where a
	// subscriber's sequence number s is the publisher's s+offset, valid
	// from the publisher's base on.
	seqMap atomic.Uint64

	// Owned by the writer goroutine.
	buf        [packetcache.MaxPacket]byte
	ph         rtpx.Header
	hdr        rtp.Header
	waitingKey bool
	askedAt    time.Time
	seenIn     bool   // a packet came
	highIn     uint16 // the publisher's newest sequence number seen
	sentAny    bool   // a packet went out
	lastOut    uint16 // the highest sequence number sent
	offset     uint16 // publisher's minus subscriber's sequence numbers
	base       uint16 // the publisher's first sequence number under offset
	resync     bool   // dropped for a pause: the next packet sent starts a new offset

	sent, dropped, retransmits atomic.Uint64
	bytesOut, plisIn           atomic.Uint64 // bytes sent; PLIs and FIRs from the subscriber
	link                       linkState
}

type binding struct {
	ssrc   uint32
	pt     uint8
	writer RTPWriter
}

// RTPWriter is where a down-track sends: a subscriber's SRTP stream
// (webrtc.TrackLocalWriter) or a tap.
type RTPWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

var errNoCodec = errors.New("sfu: subscriber does not support the publisher's codec")

func newDownTrack(up *UpTrack, detach func(*DownTrack)) *DownTrack {
	return &DownTrack{
		up:         up,
		detach:     detach,
		queue:      make(chan uint16, queueLen),
		done:       make(chan struct{}),
		waitingKey: up.codec != keyframe.Unknown,
	}
}

// ID is the server-wide track id (see TrackInfo).
func (d *DownTrack) ID() string { return d.up.info.ID }

// RID is empty: no simulcast yet.
func (d *DownTrack) RID() string { return "" }

// StreamID groups a publisher's tracks for lip sync.
func (d *DownTrack) StreamID() string { return d.up.info.StreamID }

// Kind is audio or video.
func (d *DownTrack) Kind() webrtc.RTPCodecType {
	if d.up.info.Kind == "audio" {
		return webrtc.RTPCodecTypeAudio
	}
	return webrtc.RTPCodecTypeVideo
}

func (d *DownTrack) isReady() bool { return d.ready == nil || d.ready() }

// Bind is called by pion once the subscriber's answer fixes the codec.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.up.info.Codec) {
			d.binding.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), writer: ctx.WriteStream()})
			if d.up.info.Kind == "video" && d.isReady() {
				// A new subscriber needs a keyframe to start. Bind runs
				// inside SetRemoteDescription with the subscriber's lock
				// held, and the request writes to the network.
				go d.up.requestKeyframe()
			}
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

// Unbind stops writing; pion calls it when the sender stops.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.binding.Store(nil)
	return nil
}

// enqueue hands a sequence number to the writer, dropping it when the
// subscriber is behind: never block the up-track's reader.
func (d *DownTrack) enqueue(seq uint16) {
	select {
	case d.queue <- seq:
	default:
		d.dropped.Add(1)
	}
}

func (d *DownTrack) writeLoop() {
	for {
		select {
		case seq := <-d.queue:
			d.write(seq)
		case <-d.done:
			return
		}
	}
}

// write sends one cached packet with the subscriber's SSRC and payload
// type. Header extensions are dropped: their ids were negotiated with the
// publisher, not with this subscriber.
func (d *DownTrack) write(seq uint16) {
	b := d.binding.Load()
	if b == nil {
		return
	}
	// Fresh packets come from the up-track in order; one that is not
	// newer than the newest seen is a retransmission.
	fresh := !d.seenIn || int16(seq-d.highIn) > 0
	if fresh {
		d.highIn, d.seenIn = seq, true
	}
	if d.paused.Load() {
		if !d.resync {
			d.resync = true
			d.waitingKey = d.up.codec != keyframe.Unknown
			d.askedAt = time.Time{} // ask for a keyframe as soon as it resumes
		}
		return
	}
	// A stream resumes on a fresh packet, never on an old one resent
	// (an old keyframe would restart it in the past), and a retransmission
	// from before the current offset began would land on another packet's
	// number in the subscriber's stream.
	if !fresh && d.sentAny && (d.resync || int16(seq-d.base) < 0) {
		return
	}
	n := d.up.cache.Get(seq, d.buf[:])
	if n == 0 || rtpx.Parse(d.buf[:n], &d.ph) != nil {
		return
	}
	payload := d.buf[d.ph.PayloadStart:d.ph.PayloadEnd]
	starting := false
	if d.waitingKey {
		if !keyframe.IsStart(d.up.codec, payload) {
			if now := time.Now(); now.Sub(d.askedAt) > keyframeRetry && d.isReady() {
				d.askedAt = now
				d.up.requestKeyframe()
			}
			return
		}
		starting = true
	}
	off := d.offset
	if d.resync && d.sentAny {
		off = seq - (d.lastOut + 1) // continue right after the last packet sent
	}
	d.hdr = rtp.Header{
		Version:        2,
		Padding:        d.ph.PaddingSize > 0,
		PaddingSize:    d.ph.PaddingSize,
		Marker:         d.ph.Marker,
		PayloadType:    b.pt,
		SequenceNumber: seq - off,
		Timestamp:      d.ph.Timestamp,
		SSRC:           b.ssrc,
	}
	// pion reports (0, nil) for a packet it dropped because the
	// subscriber's SRTP is not up yet: then the keyframe did not start
	// anything and the track keeps waiting for one.
	if n, err := b.writer.WriteRTP(&d.hdr, payload); err == nil && n > 0 {
		d.sent.Add(1)
		d.bytesOut.Add(uint64(n))
		if starting {
			d.waitingKey = false
		}
		out := seq - off
		if !d.sentAny || d.resync {
			d.offset, d.base, d.resync = off, seq, false
			d.seqMap.Store(1<<32 | uint64(off)<<16 | uint64(seq))
		} else if fresh && int16(seq-d.base) > baseSlide {
			// Keep base within reach of the int16 comparisons: nothing
			// older than a few thousand packets is in the cache anyway.
			d.base = seq - baseKeep
			d.seqMap.Store(1<<32 | uint64(off)<<16 | uint64(d.base))
		}
		if !d.sentAny || int16(out-d.lastOut) > 0 {
			d.lastOut = out
		}
		if !d.sentAny && d.firstMedia != nil {
			d.firstMedia()
		}
		d.sentAny = true
	}
}

// readRTCP handles the subscriber's feedback for this track: keyframe
// requests go to the publisher (throttled there), NACKs are answered from
// the shared cache within the retransmission budget, receiver reports
// about this track's stream become its Link.
func (d *DownTrack) readRTCP() {
	buf := make([]byte, 1500)
	var lim nackLimiter
	for {
		n, _, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue // hostile or broken feedback is ignored, not fatal
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.plisIn.Add(1)
				// A paused subscriber's decoder starves and asks; the
				// resume asks for its own keyframe.
				if !d.paused.Load() {
					d.up.requestKeyframe()
				}
			case *rtcp.ReceiverReport:
				// A compound packet reaches every sender it names: keep
				// only the block about this stream.
				if b := d.binding.Load(); b != nil {
					for _, r := range p.Reports {
						if r.SSRC == b.ssrc {
							l := d.link.update(r, time.Now(), d.up.clockRate())
							d.link.sentBy(d.sent.Load())
							if d.up.onReport != nil {
								d.up.onReport(d.up.info.Kind, l)
							}
						}
					}
				}
			case *rtcp.TransportLayerNack:
				now := time.Now()
				for _, pair := range p.Nacks {
					for _, seq := range pair.PacketList() {
						in, ok := d.publisherSeq(seq)
						if ok && lim.allow(seq, now) {
							d.retransmits.Add(1)
							d.enqueue(in)
						}
					}
				}
			}
		}
	}
}

// publisherSeq maps a sequence number of the subscriber's stream to the
// publisher's, false if it falls before the current mapping.
func (d *DownTrack) publisherSeq(seq uint16) (uint16, bool) {
	m := d.seqMap.Load()
	if m == 0 {
		return seq, true
	}
	in := seq + uint16(m>>16)
	return in, int16(in-uint16(m)) >= 0
}

func (d *DownTrack) close() {
	d.once.Do(func() { close(d.done) })
}
