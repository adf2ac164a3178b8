package sfu

import (
	"errors"
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

// The newest segment of a down-track's sequence map (seqmap.go) starts
// baseKeep behind the newest packet once it falls baseSlide behind, so
// that int16 differences with it stay meaningful however long a call
// lasts.
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
	queue  chan uint32 // item(layer, sequence number)
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
	// tap: a recorder or forwarder, which takes the best layer there is
	// rather than what a downlink carries.
	tap bool

	// paused stops the track for this subscriber (allocate.go: its
	// downlink cannot carry it). The writer drops what arrives, and on
	// resuming waits for a keyframe and goes on with the next sequence
	// number, so the subscriber sees one stream with no gap to NACK.
	paused atomic.Bool
	// sel holds the layer forwarded and the layer wanted (simulcast.go).
	sel atomic.Uint32
	// view is how the subscriber shows the track (dynacast.go).
	view atomic.Uint64
	// seqs maps the subscriber's sequence numbers to the layer's: the
	// writer keeps it, the NACK reader reads it.
	seqs seqMap
	// probeBps is the padding the writer adds to probe the downlink
	// (probe.go); 0: none.
	probeBps atomic.Int64

	// Owned by the writer goroutine.
	buf        [packetcache.MaxPacket]byte
	ph         rtpx.Header
	hdr        rtp.Header
	pic        rtpx.Picture
	waitingKey bool
	askedAt    time.Time
	seenIn     [maxLayers]bool   // a packet of the layer came
	highIn     [maxLayers]uint16 // the layer's newest sequence number seen
	sentAny    bool              // a packet went out
	outCodec   codecID           // the codec of the last packet sent
	lastOut    uint16            // the highest sequence number sent
	offset     uint16            // the layer's minus subscriber's sequence numbers, now
	segStart   uint16            // where the newest segment of seqs starts
	resync     bool              // dropped for a pause: the next packet sent starts a new offset
	padTokens  float64           // bytes of padding due (probe.go)
	padAt      int64             // when they were last counted (unix ns)
	// Timestamps and VP8/VP9 picture ids are the layer's less an offset that
	// changes at a layer switch only, so that the stream goes on from
	// where the last layer left it (simulcast.go).
	tsOff      uint32
	lastTS     uint32 // the newest timestamp sent
	lastSentAt int64  // when (unix ns)
	picOff     uint16
	tl0Off     uint8
	lastPic    uint16
	lastTL0    uint8
	picSent    bool
	rtxSeq     uint16 // the last sequence number of the RTX stream (rtx.go)

	sent, dropped, retransmits atomic.Uint64
	padded                     atomic.Uint64 // padding packets sent to probe (probe.go)
	bytesOut, plisIn           atomic.Uint64 // bytes sent; PLIs and FIRs from the subscriber
	link                       linkState
}

type binding struct {
	ssrc   uint32
	writer RTPWriter
	// byCodec is the subscriber's payload type for each codec it
	// negotiated, 0 for the others (codec.go).
	byCodec [numCodecs]uint8
	// rtxSSRC and rtxPT are the down-track's RTX stream and the RTX
	// payload type of each codec, if the subscriber negotiated RTX
	// (rtx.go); 0 otherwise.
	rtxSSRC uint32
	rtxPT   [numCodecs]uint8
}

// RTPWriter is where a down-track sends: a subscriber's SRTP stream
// (webrtc.TrackLocalWriter) or a tap.
type RTPWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

var errNoCodec = errors.New("sfu: subscriber does not support the publisher's codec")

// newDownTrack makes a down-track of up, for a subscriber or a tap.
func newDownTrack(up *UpTrack, detach func(*DownTrack), tap bool) *DownTrack {
	d := &DownTrack{
		up:         up,
		detach:     detach,
		tap:        tap,
		queue:      make(chan uint32, queueLen),
		done:       make(chan struct{}),
		waitingKey: up.video,
	}
	if up.simulcast {
		d.sel.Store(sel(noLayer, startLayer(up, tap)))
	}
	return d
}

// ID is the server-wide track id (see TrackInfo).
func (d *DownTrack) ID() string { return d.up.info.ID }

// RID is empty: a subscriber receives one stream, whatever layer it is.
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

// Bind is called by pion once the subscriber's answer fixes the codecs
// it takes (codec.go: the publisher may change among them).
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	b := &binding{ssrc: uint32(ctx.SSRC()), writer: ctx.WriteStream()}
	c, ok := bindCodecs(b, d.up, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, errNoCodec
	}
	if d.up.video {
		bindRTX(b, ctx.SSRCRetransmission(), ctx.CodecParameters())
	}
	d.binding.Store(b)
	if d.up.video && d.isReady() {
		// A new subscriber needs a keyframe to start. Bind runs inside
		// SetRemoteDescription with the subscriber's lock held, and the
		// request writes to the network.
		_, target := d.Layer()
		go d.up.requestKeyframeOf(target)
	}
	return c, nil
}

// Unbind stops writing; pion calls it when the sender stops.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.binding.Store(nil)
	return nil
}

// enqueue hands an item (layer, sequence number) to the writer,
// dropping it when the subscriber is behind: never block the up-track's
// reader.
func (d *DownTrack) enqueue(it uint32) {
	select {
	case d.queue <- it:
	default:
		d.dropped.Add(1)
	}
}

func (d *DownTrack) writeLoop() {
	for {
		select {
		case it := <-d.queue:
			d.write(it)
		case <-d.done:
			return
		}
	}
}

// write sends one cached packet with the subscriber's SSRC and payload
// type. Header extensions are dropped: their ids were negotiated with the
// publisher, not with this subscriber.
func (d *DownTrack) write(it uint32) {
	b := d.binding.Load()
	if b == nil {
		return
	}
	li, seq := uint8(it>>16), uint16(it)
	lay := d.up.layer(li)
	if lay == nil {
		return
	}
	// Fresh packets come from the layer's reader in order; one that is
	// not newer than the newest seen is a retransmission.
	fresh := !d.seenIn[li] || int16(seq-d.highIn[li]) > 0
	if fresh {
		d.highIn[li], d.seenIn[li] = seq, true
	}
	if d.paused.Load() {
		if !d.resync {
			d.resync = true
			d.waitingKey = d.up.video
			d.askedAt = time.Time{} // ask for a keyframe as soon as it resumes
		}
		if fresh && d.sentAny && d.probeBps.Load() > 0 {
			// The probe before a resume (allocate.go): no frame is sent
			// to put the padding between.
			d.pad(b, li)
		}
		return
	}
	cur, target := d.Layer()
	switching := li != cur
	if !fresh {
		// A retransmission (the publisher's, or one a NACK asked for):
		// sent again under the number it had, if it has one.
		if !switching && d.sentAny && !d.resync {
			if out, ok := d.seqs.toOut(li, seq); ok {
				d.resend(b, lay, seq, out)
			}
		}
		return
	}
	if switching && li != target {
		return // a layer left behind
	}
	if !switching && cur != target {
		d.askKeyframe(target) // in case the first request was lost
	}
	n := lay.cache.Get(seq, d.buf[:])
	if n == 0 || rtpx.Parse(d.buf[:n], &d.ph) != nil {
		return
	}
	payload := d.buf[d.ph.PayloadStart:d.ph.PayloadEnd]
	// The codec the publisher sends in now (codec.go): one the subscriber
	// did not negotiate is not sent, and a change of codec starts again
	// at a keyframe, right after the last packet sent.
	codec := d.up.codecOf(d.ph.PayloadType)
	pt, ok := b.ptFor(codec)
	if codec == codecRED {
		pt, payload, ok = d.red(b, payload)
	}
	if !ok {
		d.waitingKey = d.up.video
		return
	}
	// Audio needs no keyframe: Opus and RED are one codec to a decoder.
	recodec := d.up.video && d.sentAny && codec != d.outCodec
	if recodec {
		d.waitingKey = true
	}
	starting := false
	if d.waitingKey || switching {
		if !keyframe.IsStart(codec.keyframe(), payload) {
			d.askKeyframe(li)
			return
		}
		starting = true
	}
	off, tsOff := d.offset, d.tsOff
	restart := d.resync || switching || recodec || !d.sentAny
	if restart && d.sentAny {
		off = seq - (d.lastOut + 1) // continue right after the last packet sent
	}
	if switching && d.sentAny {
		// The new layer's clock has its own origin: go on from the last
		// timestamp sent, by the time that passed since.
		gap := max(1, (nanotime()-d.lastSentAt)*int64(d.up.clockRate())/int64(time.Second))
		tsOff = d.ph.Timestamp - (d.lastTS + uint32(gap))
	}
	pic, tl0, picOff, tl0Off, renumber := d.renumberPicture(payload, codec, switching || recodec)
	out := seq - off
	d.header(pt, b.ssrc, out, d.ph.Timestamp-tsOff)
	// The map first: the subscriber can NACK the packet as soon as it is
	// written, before this goroutine runs again (seen on a busy machine).
	// A write that fails leaves a restart to be done again, and a slide
	// only forgets numbers long past.
	slide := !restart && int16(out-d.segStart) > baseSlide
	if restart {
		d.seqs.reset(li, off, out)
	} else if slide {
		d.seqs.slide(out - baseKeep)
	}
	// pion reports (0, nil) for a packet it dropped because the
	// subscriber's SRTP is not up yet: then the keyframe did not start
	// anything and the track keeps waiting for one.
	n, err := b.writer.WriteRTP(&d.hdr, payload)
	if err != nil || n == 0 {
		return
	}
	d.sent.Add(1)
	d.bytesOut.Add(uint64(n))
	if starting {
		d.waitingKey = false
	}
	d.outCodec = codec
	if switching {
		d.switched(li)
		d.tsOff, d.picOff, d.tl0Off = tsOff, picOff, tl0Off
	}
	if restart {
		d.offset, d.segStart, d.resync = off, out, false
	} else if slide {
		d.segStart = out - baseKeep
	}
	d.lastOut = out
	d.lastTS = d.hdr.Timestamp
	if d.up.simulcast {
		d.lastSentAt = nanotime() // for the timestamps of a switch
	}
	if renumber {
		d.lastPic, d.lastTL0, d.picSent = pic, tl0, true
	}
	if !d.sentAny && d.firstMedia != nil {
		d.firstMedia()
	}
	d.sentAny = true
	if d.ph.Marker {
		d.pad(b, li) // between frames, never inside one
	}
}

// resend writes a packet of the current layer again under the number out
// it was first sent with: on the RTX stream if the subscriber has one.
func (d *DownTrack) resend(b *binding, lay *layer, seq, out uint16) {
	n := lay.cache.Get(seq, d.buf[:])
	if n == 0 || rtpx.Parse(d.buf[:n], &d.ph) != nil {
		return
	}
	payload := d.buf[d.ph.PayloadStart:d.ph.PayloadEnd]
	if !d.up.video {
		return // audio is not resent (and RED would need unwrapping)
	}
	codec := d.up.codecOf(d.ph.PayloadType)
	pt, ok := b.ptFor(codec)
	if !ok || codec != d.outCodec {
		return // sent before a change of codec: the decoder has moved on
	}
	d.renumberPicture(payload, codec, false)
	var err error
	if rtx, ok := b.rtxFor(codec); ok {
		n, err = d.writeRTX(b, rtx, out, d.ph.Timestamp-d.tsOff, d.ph.PayloadStart, d.ph.PayloadEnd)
	} else {
		d.header(pt, b.ssrc, out, d.ph.Timestamp-d.tsOff)
		n, err = b.writer.WriteRTP(&d.hdr, payload)
	}
	if err == nil && n > 0 {
		d.sent.Add(1)
		d.bytesOut.Add(uint64(n))
	}
}

// header sets the header of the packet parsed into d.ph as the
// subscriber gets it: its payload type pt and SSRC, numbered seq, at ts.
func (d *DownTrack) header(pt uint8, ssrc uint32, seq uint16, ts uint32) {
	d.hdr = rtp.Header{
		Version:        2,
		Padding:        d.ph.PaddingSize > 0,
		PaddingSize:    d.ph.PaddingSize,
		Marker:         d.ph.Marker,
		PayloadType:    pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           ssrc,
	}
}

// renumberPicture rewrites a simulcast VP8 or VP9 packet's picture id
// and TL0PICIDX in place, less the down-track's offsets; at a switch (a
// keyframe of the new layer) the offsets are set so that the ids go on
// by one. It returns the ids written and the offsets used, and false if
// there were none.
func (d *DownTrack) renumberPicture(payload []byte, codec codecID, switching bool) (pic uint16, tl0 uint8, picOff uint16, tl0Off uint8, ok bool) {
	picOff, tl0Off = d.picOff, d.tl0Off
	if !d.up.simulcast {
		return 0, 0, picOff, tl0Off, false
	}
	switch codec {
	case codecVP8:
		ok = rtpx.ParseVP8(payload, &d.pic)
	case codecVP9:
		ok = rtpx.ParseVP9(payload, &d.pic)
	}
	if !ok || d.pic.PictureAt < 0 {
		return 0, 0, picOff, tl0Off, false
	}
	mask := d.pic.PictureMask()
	if switching && d.picSent {
		picOff = (d.pic.PictureID - (d.lastPic + 1)) & mask
		tl0Off = d.pic.TL0PicIdx - (d.lastTL0 + 1)
	}
	pic, tl0 = (d.pic.PictureID-picOff)&mask, d.pic.TL0PicIdx-tl0Off
	rtpx.SetPicture(payload, &d.pic, pic, tl0)
	return pic, tl0, picOff, tl0Off, true
}

// askKeyframe asks layer i's publisher for a keyframe, at most once per
// keyframeRetry for this down-track, and only once packets can reach the
// subscriber.
func (d *DownTrack) askKeyframe(i uint8) {
	if now := time.Now(); now.Sub(d.askedAt) > keyframeRetry && d.isReady() {
		d.askedAt = now
		d.up.requestKeyframeOf(i)
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
				// resume asks for its own keyframe. Only the layer it
				// receives is asked.
				if !d.paused.Load() {
					cur, target := d.Layer()
					if cur == noLayer {
						cur = target
					}
					d.up.requestKeyframeOf(cur)
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
// queue item of its layer's packet, false if none is known.
func (d *DownTrack) publisherSeq(seq uint16) (uint32, bool) {
	l, in, ok := d.seqs.toLayer(seq)
	return item(l, in), ok
}

func (d *DownTrack) close() {
	d.once.Do(func() { close(d.done) })
}
