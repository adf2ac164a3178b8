package main

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// role is why a client receives media.
type role int

const (
	roleSubscriber     role = iota // joined during the ramp
	roleRejoiner                   // joined in place of one that left (churn)
	roleInterPublisher             // a publisher receiving the room's other publishers
)

// receiver is one client's receiving side: its tracks' statistics and
// when its first media and first video arrived.
type receiver struct {
	r      *run
	room   string
	role   role
	dialAt time.Time
	media  chan struct{} // closed at the first media packet
	video  chan struct{} // closed at the first video packet

	mu          sync.Mutex
	tracks      []*trackStats
	gotMedia    bool
	gotVideo    bool
	connectedAt time.Time  // the subscribing PeerConnection's first "connected"
	leftAt      time.Time  // set when churn closed it
	last        lastPacket // when a packet last came (resume.go)
	capped      bool       // receives through the shaper (simulcast.go)
	pauses      int        // video pauses the server announced in the window
}

// onConnectionState is the client's hook: it notes when media can first
// flow (ICE and DTLS done), which splits a join's wait for its first
// keyframe into connecting and the server's keyframe request.
func (rc *receiver) onConnectionState(pc string, s webrtc.PeerConnectionState) {
	if pc != protocol.PCSubscribe || s != webrtc.PeerConnectionStateConnected {
		return
	}
	rc.mu.Lock()
	if rc.connectedAt.IsZero() {
		rc.connectedAt = time.Now()
	}
	rc.mu.Unlock()
}

func newReceiver(r *run, room string, ro role) *receiver {
	return &receiver{r: r, room: room, role: ro, dialAt: time.Now(), media: make(chan struct{}),
		video: make(chan struct{})}
}

// trackStats is everything measured on one received track. Its read loop
// is the only writer; the report reads it after the loop has stopped
// counting, and the mutex makes that hand-over explicit.
type trackStats struct {
	rcv     *receiver
	id      string
	video   bool
	mu      sync.Mutex
	lat     Histogram
	loss    LossTracker
	jit     Jitter
	frames  frameAssembler
	freeze  FreezeDetector
	packets uint64 // distinct packets counted in the measuring window
	bytes   uint64
	foreign uint64 // packets without a stamp
	// A simulcast track's loss is counted per run of one layer
	// (simulcast.go): runs holds the finished ones.
	layered     bool
	layer       uint8
	newRun      bool
	runs        LossResult
	layerFrames [3]uint64 // complete frames per layer
}

// onTrack is the client's OnTrack hook; pion calls it on a goroutine of
// its own, which becomes the track's read loop.
func (rc *receiver) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	ts := &trackStats{rcv: rc, id: tr.ID(), video: video, layered: video && rc.r.cfg.Media.Simulcast}
	if !rc.r.addTrack(ts) {
		return // the run is closing
	}
	defer rc.r.readers.Done()
	rc.mu.Lock()
	rc.tracks = append(rc.tracks, ts)
	rc.mu.Unlock()
	rc.read(tr, ts)
}

// read is the receive hot path: no allocation, one uncontended lock, so a
// hundred of them in one process leave the server the bottleneck.
func (rc *receiver) read(tr *webrtc.TrackRemote, ts *trackStats) {
	buf := make([]byte, 1600)
	first := true
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		rc.last.mark(now)
		payload, rtpTS, ok := rtpPayload(buf[:n])
		if first && ok {
			first = false
			rc.firstPacket(now, ts.video, payload)
		}
		s, stamped := ReadStamp(payload)
		rc.r.rxPackets.Add(1)
		rc.r.rxBytes.Add(uint64(n))
		if !rc.r.measuring.Load() {
			continue
		}
		if !ok || !stamped {
			ts.mu.Lock()
			ts.foreign++
			ts.mu.Unlock()
			continue
		}
		ts.observe(now, s, rtpTS, n)
	}
}

func (t *trackStats) observe(now time.Time, s Stamp, rtpTS uint32, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.layered {
		t.observeLayer(s)
	}
	if t.loss.Add(s.Counter) != arrivalNew {
		return
	}
	t.packets++
	t.bytes += uint64(size)
	transit := time.Duration(now.UnixNano() - s.Sent)
	t.lat.Record(transit)
	t.jit.Add(transit)
	if t.video && t.frames.Add(rtpTS, s.Count) {
		t.freeze.Frame(now)
		if s.Layer < 3 {
			t.layerFrames[s.Layer]++
		}
	}
}

// firstPacket records join times: socket opened to first media, and to
// first video (which must start a keyframe: the server holds a new
// subscriber's video until one comes).
func (rc *receiver) firstPacket(now time.Time, video bool, payload []byte) {
	if rc.role == roleInterPublisher {
		return
	}
	rc.mu.Lock()
	firstMedia := !rc.gotMedia
	firstVideo := video && !rc.gotVideo
	rc.gotMedia = true
	rc.gotVideo = rc.gotVideo || video
	connected := rc.connectedAt
	rc.mu.Unlock()
	if firstMedia {
		rc.r.noteJoin(rc.role, now.Sub(rc.dialAt))
		close(rc.media)
	}
	if firstVideo {
		sinceConnect := time.Duration(-1) // unknown
		if !connected.IsZero() {
			sinceConnect = now.Sub(connected)
		}
		rc.r.noteFirstVideo(rc.role, now.Sub(rc.dialAt), sinceConnect, isVP8KeyframeStart(payload))
		close(rc.video)
	}
}

// left marks the receiver closed by churn at t.
func (rc *receiver) left(t time.Time) {
	rc.mu.Lock()
	rc.leftAt = t
	rc.mu.Unlock()
}

func (rc *receiver) leftTime() time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.leftAt
}

// rtpPayload returns an RTP packet's payload (after CSRCs and header
// extension, before padding) and timestamp, without allocating.
func rtpPayload(b []byte) (payload []byte, ts uint32, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return nil, 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return nil, 0, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		end -= int(b[end-1])
	}
	if off > end {
		return nil, 0, false
	}
	return b[off:end], binary.BigEndian.Uint32(b[4:]), true
}

// isVP8KeyframeStart reads the VP8 payload descriptor (RFC 7741) and the
// frame tag: the first packet of a keyframe.
func isVP8KeyframeStart(payload []byte) bool {
	var d codecs.VP8Packet
	b, err := d.Unmarshal(payload)
	return err == nil && d.S == 1 && d.PID == 0 && len(b) > 0 && b[0]&1 == 0
}
