// Package nackgen asks publishers to resend the packets the server missed,
// within bounds. pion's generator NACKs every gap in its window every
// 100 ms with no limit per packet: after a blackout a publisher was asked,
// ten times a second for many seconds, for packets long gone, and its send
// estimate collapsed under what it took for loss. Here a missing packet is
// asked for at most a few times, waits for reordering first (a wait that
// follows the stream's measured jitter), is asked again after the measured
// round trip, and is given up once it is older than any jitter buffer would
// wait for it. A gap longer than that (a blackout, a restarted transport)
// is not NACKed at all: what repairs it is a keyframe, which the SFU asks
// for when a publisher's media comes back.
package nackgen

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// Bounds. maxAge is the oldest a packet may be and still be worth asking
// for: a browser's video jitter buffer rarely waits longer, and audio far
// less. A retry waits for the measured round trip (plus jitter), within
// [minRetry, maxRetry]; before the first sample, defaultRTT.
const (
	maxTries   = 4
	maxAge     = time.Second
	maxPending = 512
	interval   = 20 * time.Millisecond
	minWait    = 10 * time.Millisecond
	maxWait    = 80 * time.Millisecond
	minRetry   = 40 * time.Millisecond
	maxRetry   = 400 * time.Millisecond
	defaultRTT = 100 * time.Millisecond
)

// Counters is what a Factory's interceptors have sent, for Stats.
type Counters struct {
	NACKs  uint64 // RTCP NACK packets
	Asked  uint64 // sequence numbers in them, retries included
	GaveUp uint64 // packets never recovered (too old or too many tries)
}

// Factory makes one interceptor per PeerConnection and adds up what they
// send.
type Factory struct {
	nacks, asked, gaveUp atomic.Uint64
	// streams are every generator's, by SSRC, for Repaired (the reader
	// that learns of a repair knows the SSRC, not the connection). Two
	// publishers on one SSRC would share an entry: the one left out is
	// asked again for its repaired packets, within maxTries, no more.
	streams sync.Map // uint32 -> *stream
}

// New returns a Factory to add to an interceptor.Registry.
func New() *Factory { return &Factory{} }

// Repaired tells the generator of the stream ssrc that packet seq (RTP
// timestamp ts) arrived after all, as a retransmission on a stream of its
// own (RTX): pion hands those to the track's reader without passing them
// through the media stream's interceptors, and a packet not known to
// have come would be asked for again, up to maxTries times.
func (f *Factory) Repaired(ssrc uint32, seq uint16, ts uint32) {
	if v, ok := f.streams.Load(ssrc); ok {
		s := v.(*stream)
		s.add(seq, ts, time.Since(s.base))
	}
}

// Counters returns the totals so far.
func (f *Factory) Counters() Counters {
	return Counters{NACKs: f.nacks.Load(), Asked: f.asked.Load(), GaveUp: f.gaveUp.Load()}
}

// NewInterceptor implements interceptor.Factory.
func (f *Factory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &generator{f: f, base: time.Now(), streams: map[uint32]*stream{}, done: make(chan struct{}),
		ssrc: rand.Uint32()}, nil
}

type generator struct {
	interceptor.NoOp
	f    *Factory
	base time.Time // stream clocks count from here
	ssrc uint32    // sender SSRC of the NACKs

	mu      sync.Mutex
	streams map[uint32]*stream
	writer  interceptor.RTCPWriter
	started bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// BindRTCPWriter keeps the writer the NACKs go through.
func (g *generator) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writer = w
	return w
}

// startLocked starts the loop once there is a stream to watch: a
// connection that only sends (a subscriber's) never wakes for nothing.
func (g *generator) startLocked() {
	if g.started || g.writer == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	g.started = true
	g.wg.Add(1)
	go g.loop(g.writer)
}

// BindRemoteStream watches the sequence numbers of a stream that
// negotiated NACK.
func (g *generator) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if !wantsNACK(info) {
		return r
	}
	s := newStream(info.SSRC, info.ClockRate)
	s.base = g.base
	g.f.streams.Store(info.SSRC, s)
	g.mu.Lock()
	g.streams[info.SSRC] = s
	g.startLocked()
	g.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err == nil && n >= 12 && b[0]>>6 == 2 {
			seq := uint16(b[2])<<8 | uint16(b[3])
			ts := uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
			s.add(seq, ts, time.Since(g.base))
		}
		return n, a, err
	})
}

// UnbindRemoteStream forgets a stream.
func (g *generator) UnbindRemoteStream(info *interceptor.StreamInfo) {
	g.mu.Lock()
	if s := g.streams[info.SSRC]; s != nil {
		g.f.streams.CompareAndDelete(info.SSRC, s)
	}
	delete(g.streams, info.SSRC)
	g.mu.Unlock()
}

// Close stops the loop.
func (g *generator) Close() error {
	g.mu.Lock()
	select {
	case <-g.done:
	default:
		close(g.done)
	}
	g.mu.Unlock()
	g.wg.Wait()
	return nil
}

func wantsNACK(info *interceptor.StreamInfo) bool {
	if strings.HasSuffix(strings.ToLower(info.MimeType), "/rtx") || info.ClockRate == 0 {
		return false
	}
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

func (g *generator) loop(w interceptor.RTCPWriter) {
	defer g.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var streams []*stream
	var seqs []uint16
	for {
		select {
		case <-g.done:
			return
		case <-tick.C:
		}
		streams = streams[:0]
		g.mu.Lock()
		for _, s := range g.streams {
			streams = append(streams, s)
		}
		g.mu.Unlock()
		now := time.Since(g.base)
		for _, s := range streams {
			var gaveUp int
			seqs, gaveUp = s.due(now, seqs[:0])
			g.f.gaveUp.Add(uint64(gaveUp))
			if len(seqs) == 0 {
				continue
			}
			// Written with no lock held: the writer goes to the network.
			pkt := &rtcp.TransportLayerNack{SenderSSRC: g.ssrc, MediaSSRC: s.ssrc,
				Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
			if _, err := w.Write([]rtcp.Packet{pkt}, nil); err == nil {
				g.f.nacks.Add(1)
				g.f.asked.Add(uint64(len(seqs)))
			}
		}
	}
}
