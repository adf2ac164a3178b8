package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The server's estimate of each subscriber's downlink: every packet sent
// to a subscriber carries a transport-wide sequence number (pion's twcc
// header-extension interceptor), the subscriber's transport-cc feedback
// says when each arrived, and a send-side estimator per PeerConnection
// (pion's GCC, draft-ietf-rmcat-gcc) turns that into the bitrate the link
// carries. It is what choosing a layer per subscriber and pausing video
// before audio suffers will work from; for now it is measured and shown
// (Participant.Downlink, /api/rooms). GCC's pacers would add a queue and
// a goroutine per subscriber, or hold a lock while writing to the
// network; the pacer here passes packets straight through.

// Estimate bounds, bits per second: GCC starts from estimateStart and
// climbs from what it is given, so the start is a consult's video plus
// audio rather than pion's 10 kbit/s.
const (
	estimateStart = 1_000_000
	estimateMin   = 50_000
	estimateMax   = 10_000_000
)

// estimators hands each new PeerConnection's estimator to whoever creates
// it. pion builds a connection's interceptors inside NewPeerConnection, on
// the caller's goroutine: newPC holds mu around that call, so the
// estimator built during it is the one for that connection, and only a
// subscribe connection gets a real one.
type estimators struct {
	mu   sync.Mutex
	want bool      // the connection being built sends media
	slot *twccOnly // the estimator built for it
}

func newEstimators() (*estimators, *cc.InterceptorFactory, error) {
	e := &estimators{}
	f, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		if !e.want {
			return idleEstimator{}, nil
		}
		est, err := newTWCCOnly()
		if err != nil {
			return nil, err
		}
		e.slot = est
		return e.slot, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return e, f, nil
}

// newTWCCOnly is a subscriber's estimator: pion's GCC within the
// estimate's bounds, sending through no pacer of its own.
func newTWCCOnly() (*twccOnly, error) {
	bwe, err := gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(estimateStart),
		gcc.SendSideBWEMinBitrate(estimateMin), gcc.SendSideBWEMaxBitrate(estimateMax),
		gcc.SendSideBWEPacer(&passPacer{}))
	if err != nil {
		return nil, err
	}
	return &twccOnly{SendSideBWE: bwe}, nil
}

// build runs newPC (which calls NewPeerConnection) and returns its
// connection with the estimator made for it (nil unless sends).
func (e *estimators) build(sends bool, newPC func() (*webrtc.PeerConnection, error)) (*webrtc.PeerConnection, *twccOnly, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.want, e.slot = sends, nil
	pc, err := newPC()
	est := e.slot
	e.want, e.slot = false, nil
	if err != nil {
		if est != nil {
			_ = est.Close()
		}
		return nil, nil, err
	}
	return pc, est, nil
}

// idleEstimator is what a connection that sends nothing gets: no GCC
// goroutines, no history.
type idleEstimator struct{}

func (idleEstimator) AddStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return w
}
func (idleEstimator) WriteRTCP([]rtcp.Packet, interceptor.Attributes) error { return nil }
func (idleEstimator) GetTargetBitrate() int                                 { return 0 }
func (idleEstimator) OnTargetBitrateChange(func(int))                       {}
func (idleEstimator) GetStats() map[string]any                              { return nil }
func (idleEstimator) Close() error                                          { return nil }

// twccOnly estimates from transport-cc feedback: a stream whose
// subscriber did not take the transport-cc header extension is not
// recorded packet by packet for feedback that will never come. A client
// that sends no transport-cc feedback but does send REMB (a receiver's
// own estimate, goog-remb; older and non-browser clients) is judged by
// its latest REMB instead (remb.go).
type twccOnly struct {
	*gcc.SendSideBWE
	fed      atomic.Bool  // transport-cc feedback arrived: the estimate means something
	lastFeed atomic.Int64 // when feedback last came (unix ns)
	loss     twccLoss     // what the feedback says arrived (quality.go)
	probe    atomic.Pointer[probe]
	remb     rembEstimate // the fallback (remb.go)
}

func (e *twccOnly) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	for _, x := range info.RTPHeaderExtensions {
		if x.URI == sdp.TransportCCURI {
			if info.SSRCRetransmission != 0 {
				// The down-track writes its RTX stream (rtx.go) through the
				// media stream's writer: GCC's pacer, which passes on
				// only the SSRCs it was given, must know it too.
				rtx := *info
				rtx.SSRC, rtx.SSRCRetransmission = info.SSRCRetransmission, 0
				e.SendSideBWE.AddStream(&rtx, w)
			}
			return &sendStamp{e: e, id: uint8(x.ID), next: e.SendSideBWE.AddStream(info, w)}
		}
	}
	return w
}

// WriteRTCP notes when transport-cc feedback comes, and what it says
// arrived.
func (e *twccOnly) WriteRTCP(pkts []rtcp.Packet, a interceptor.Attributes) error {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerCC:
			e.fed.Store(true)
			e.lastFeed.Store(time.Now().UnixNano())
			e.loss.count(p)
			e.heed(p)
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			e.remb.note(p, time.Now())
		}
	}
	err := e.SendSideBWE.WriteRTCP(pkts, a)
	e.watch()
	return err
}

// starved reports whether feedback has stopped (since before now-d):
// with nothing sent that carries it, the estimate no longer moves.
func (e *twccOnly) starved(now time.Time, d time.Duration) bool {
	return now.Sub(time.Unix(0, e.lastFeed.Load())) > d
}

// passPacer is a gcc.Pacer that sends at once, with no lock held while
// writing: the writers of a connection's streams are looked up in a map
// that is replaced, never changed.
type passPacer struct {
	mu      sync.Mutex // serialises AddStream
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
}

func (p *passPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := map[uint32]interceptor.RTPWriter{ssrc: w}
	if old := p.writers.Load(); old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	p.writers.Store(&next)
}

func (p *passPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if m := p.writers.Load(); m != nil {
		if w := (*m)[h.SSRC]; w != nil {
			return w.Write(h, payload, a)
		}
	}
	return 0, errUnknownStream
}

func (p *passPacer) SetTargetBitrate(int) {}
func (p *passPacer) Close() error         { return nil }

// Downlink is the server's view of a subscriber's downlink.
type Downlink struct {
	// EstimateKbps is the send-side estimate of what the link carries,
	// or the client's REMB when it sends no transport-cc feedback (0: no
	// estimate yet, or a client that sends neither).
	EstimateKbps int    `json:"estimateKbps"`
	Tracks       []Link `json:"tracks"`
	// KeyframeRequests counts the PLIs and FIRs the subscriber sent: each
	// a decoder whose picture broke up.
	KeyframeRequests uint64 `json:"keyframeRequests"`
}

// Downlink reports p's downlink: the estimate and each track's Link.
func (p *Participant) Downlink() Downlink {
	downs := p.downTracks()
	d := Downlink{Tracks: linksOf(downs)}
	for _, down := range downs {
		d.KeyframeRequests += down.plisIn.Load()
	}
	d.EstimateKbps = p.estimateKbps()
	return d
}

// estimateKbps is p's downlink estimate in kbit/s, 0 while there is none.
func (p *Participant) estimateKbps() int {
	if est := p.estimate.Load(); est != nil {
		if bps, _, ok := est.target(time.Now()); ok {
			return int(bps) / 1000
		}
	}
	return 0
}

// target is the estimate to allocate by, in bits per second: GCC's once
// transport-cc feedback has come, else the latest REMB; ok is false with
// neither. starved says the estimate has stopped moving: no feedback (or
// REMB) for starvedAfter.
func (e *twccOnly) target(now time.Time) (bps float64, starved, ok bool) {
	if e.fed.Load() {
		return float64(e.GetTargetBitrate()), e.starved(now, starvedAfter), true
	}
	return e.remb.read(now)
}
