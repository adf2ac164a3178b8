package signaling_test

import (
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
)

// simLayers are the test publisher's layers, as a browser's simulcast
// for a consult: rid, bytes per frame at 25 frames a second (150 kbit/s,
// 600 kbit/s, 1 Mbit/s), and the picture size its keyframes give.
var simLayers = []struct {
	rid           string
	bytes         int
	width, height int
}{{"q", 750, 320, 180}, {"h", 3000, 640, 360}, {"f", 5000, 1280, 720}}

// simPublisher sends a three-layer VP8 camera and Opus. Each frame's last
// byte names its layer, so a subscriber can tell which one it gets; a
// keyframe request for a layer is answered on that layer alone.
type simPublisher struct {
	layers []*client.SimulcastLayer
	audio  *webrtc.TrackLocalStaticRTP
	keyReq [3]chan struct{}
	asked  [3]atomic.Int64 // keyframe requests per layer
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newSimPublisher() *simPublisher {
	sp := &simPublisher{stop: make(chan struct{})}
	for i := range sp.keyReq {
		sp.keyReq[i] = make(chan struct{}, 1)
	}
	return sp
}

// onKeyframe is the publisher's client's Config.OnLayerKeyframeRequest.
func (sp *simPublisher) onKeyframe(_, rid string) {
	for i, l := range simLayers {
		if l.rid == rid {
			sp.asked[i].Add(1)
			select {
			case sp.keyReq[i] <- struct{}{}:
			default:
			}
		}
	}
}

func (sp *simPublisher) start(t *testing.T, p *peer) {
	t.Helper()
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for _, l := range simLayers {
		sp.layers = append(sp.layers, client.NewSimulcastLayer(vp8, "cam", "av", l.rid))
	}
	sp.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "av")
	if _, err := p.Publish(ctxT(t, 5*time.Second), sp.audio); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PublishSimulcast(ctxT(t, 5*time.Second), sp.layers...); err != nil {
		t.Fatal(err)
	}
	sp.wg.Add(1)
	go sp.run()
	t.Cleanup(func() {
		close(sp.stop)
		sp.wg.Wait()
	})
}

func (sp *simPublisher) run() {
	defer sp.wg.Done()
	var vps []rtp.Packetizer
	for i := range simLayers {
		vps = append(vps, rtp.NewPacketizer(1200, 96, uint32(10+i), &codecs.VP8Payloader{EnablePictureID: true},
			rtp.NewRandomSequencer(), 90000))
	}
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-sp.stop:
			return
		case <-tick.C:
		}
		opus := []byte{0xfc, byte(n), byte(n >> 8), 0x55, 0xaa}
		for _, p := range ap.Packetize(opus, 960) {
			_ = sp.audio.WriteRTP(p)
		}
		if n%2 == 1 {
			continue // video at 25 frames a second
		}
		for i, l := range simLayers {
			key := n == 0
			select {
			case <-sp.keyReq[i]:
				key = true
			default:
			}
			body := make([]byte, l.bytes)
			if key {
				body = append(append([]byte(nil), vp8Key[:10]...), make([]byte, 2*l.bytes)...)
				body[6], body[7], body[8], body[9] = byte(l.width), byte(l.width>>8), byte(l.height), byte(l.height>>8)
			} else {
				copy(body, vp8Delta[:3])
			}
			body[len(body)-1] = l.rid[0]
			for _, p := range vps[i].Packetize(body, 3600) {
				_ = sp.layers[i].WriteRTP(p)
			}
		}
	}
}

// frameLog follows a subscriber's video as frames: when each ended, its
// layer (its last byte), and whether all its packets had come by then.
type frameLog struct {
	mu     sync.Mutex
	frames []frameSeen
}

type frameSeen struct {
	at       time.Time
	layer    byte
	complete bool
}

func logFrames(r *webrtc.TrackRemote) *frameLog {
	f := &frameLog{}
	go func() {
		seen := map[int64]bool{}
		var top, lastMarker int64 = -1, -1
		var last uint16
		for {
			p, _, err := r.ReadRTP()
			if err != nil {
				return
			}
			ext := int64(p.SequenceNumber)
			if top >= 0 {
				ext = top + int64(int16(p.SequenceNumber-last))
			}
			if top < 0 || ext > top {
				top, last = ext, p.SequenceNumber
			}
			seen[ext] = true
			if !p.Marker || len(p.Payload) == 0 {
				continue
			}
			complete := lastMarker >= 0
			for s := lastMarker + 1; complete && s < ext; s++ {
				complete = seen[s]
			}
			for s := range seen {
				if s < ext-1000 {
					delete(seen, s)
				}
			}
			lastMarker = ext
			f.mu.Lock()
			f.frames = append(f.frames, frameSeen{at: time.Now(), layer: p.Payload[len(p.Payload)-1], complete: complete})
			f.mu.Unlock()
		}
	}()
	return f
}

// since is the frames that ended after t.
func (f *frameLog) since(t time.Time) []frameSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := sort.Search(len(f.frames), func(i int) bool { return f.frames[i].at.After(t) })
	return append([]frameSeen(nil), f.frames[i:]...)
}

// first is when the first frame came (zero: none yet).
func (f *frameLog) first() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.frames) == 0 {
		return time.Time{}
	}
	return f.frames[0].at
}

// awaitLayer waits until the last n frames were all of layer, and
// returns when the first of them came.
func (f *frameLog) awaitLayer(t *testing.T, what string, layer byte, n int, within time.Duration) time.Time {
	t.Helper()
	var at time.Time
	testenv.Eventually(t, within, what, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.frames) < n {
			return false
		}
		for _, fr := range f.frames[len(f.frames)-n:] {
			if fr.layer != layer {
				return false
			}
		}
		at = f.frames[len(f.frames)-n].at
		return true
	})
	return at
}

// freeze is the longest time between complete frames in frames (from
// from on, to to), and the layers seen.
func freeze(frames []frameSeen, from, to time.Time) (time.Duration, map[byte]int) {
	layers := map[byte]int{}
	prev, worst := from, time.Duration(0)
	for _, fr := range frames {
		if fr.at.After(to) {
			break
		}
		layers[fr.layer]++
		if fr.complete {
			worst = max(worst, fr.at.Sub(prev))
			prev = fr.at
		}
	}
	return max(worst, to.Sub(prev)), layers
}

// Simulcast over a virtual network: the doctor publishes three layers,
// the family member's downlink is good and the patient's is capped. The
// patient settles on the low layer and its picture does not freeze; with
// the cap lifted it climbs to the top layer; capped at 60 kbit/s its
// video pauses and its audio arrives whole. The family member is never
// sent the low layer and its picture does not freeze.
//
// How long settling and climbing take is logged, not bounded tightly:
// the 5 s and 15 s held in quiet runs (2-3 s and 6-9 s), but on
// a machine whose cores are taken by other tests GCC reads scheduling
// delays as queues and probes fail, and climbing took up to 28 s.
func TestSimulcastLayerFollowsEachSubscribersDownlink(t *testing.T) {
	mw := newMediaWorld(t, 0)
	sp := newSimPublisher()
	doctor := mw.joinOn(t, "Dr", nil, func(c *client.Config) { c.OnLayerKeyframeRequest = sp.onKeyframe }, "1.2.3.30")
	sp.start(t, doctor)
	family := mw.joinOn(t, "Fam", nil, nil, "1.2.3.31")
	famVideo := logFrames(family.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	record(family.awaitTrackKind(t, webrtc.RTPCodecTypeAudio))
	famAt := famVideo.awaitLayer(t, "the family member on the top layer", 'f', 25, 30*time.Second)
	t.Logf("the family member reached the top layer %v after its first frame", famAt.Sub(famVideo.first()))

	down := downCap(400_000)
	patient := mw.joinOn(t, "Pat", down, nil, "1.2.3.32")
	patVideo := logFrames(patient.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	patAudio := logSeqs(patient.awaitTrackKind(t, webrtc.RTPCodecTypeAudio))
	testenv.Eventually(t, 10*time.Second, "the patient's first frame", func() bool { return !patVideo.first().IsZero() })
	// Settled: a second of frames, all of the low layer.
	settled := patVideo.awaitLayer(t, "the patient on the low layer", 'q', 25, 20*time.Second)
	t.Logf("at 400 kbit/s the patient settled on the low layer %v after its first frame (the issue asks for 5 s)",
		settled.Sub(patVideo.first()))

	// Ten seconds on the capped link: the patient's probes for the
	// middle layer fail, and cost neither it nor the family a frozen
	// picture; the family's top layer is asked for no keyframe.
	askedTop := sp.asked[2].Load()
	from := time.Now()
	end := from.Add(10 * time.Second)
	testenv.Eventually(t, 20*time.Second, "ten seconds", func() bool { return time.Now().After(end) })
	worst, layers := freeze(patVideo.since(from), from, end)
	t.Logf("capped: the patient's longest freeze %v, frames per layer %v", worst, layers)
	if worst > time.Second {
		t.Errorf("the patient's picture froze for %v on the capped link", worst)
	}
	if layers['h'] > 0 || layers['f'] > 0 {
		t.Errorf("the patient got frames of higher layers on a link that cannot carry them: %v", layers)
	}
	worst, layers = freeze(famVideo.since(from), from, end)
	t.Logf("meanwhile the family: longest freeze %v, frames per layer %v", worst, layers)
	if worst > time.Second || layers['q'] > 0 {
		t.Errorf("the family's picture: longest freeze %v, layers %v (want no freeze, never the low layer)", worst, layers)
	}
	// Keyframes of the top layer: only the family receives it, so while
	// the family stays on it, nobody should ask for one.
	if n := sp.asked[2].Load() - askedTop; n > 0 && layers['h'] == 0 {
		t.Errorf("the top layer was asked for %d keyframes while only the patient's link changed", n)
	}

	// The cap lifted: up to the top layer, a layer at a time.
	down.SetRate(20_000_000)
	lifted := time.Now()
	at := patVideo.awaitLayer(t, "the patient on the top layer", 'f', 10, 60*time.Second)
	t.Logf("the cap lifted, the patient reached the top layer after %v (the issue asks for 15 s)", at.Sub(lifted))

	// 60 kbit/s: not even the low layer fits. Video pauses, audio goes on.
	down.SetRate(60_000)
	awaitPaused(t, patient, doctor.ID(), "video", true, 30*time.Second)
	// What was queued when the pause came drains first: the bucket's
	// queue, sized for 400 kbit/s, holds over 3 s at 60 kbit/s.
	lost, n := patAudio.lossOver(t, 4*time.Second)
	t.Logf("at 60 kbit/s, video paused: %d of %d audio packets lost", lost, n)
	if n < 30 || float64(lost) > 0.01*float64(n) {
		t.Errorf("audio at 60 kbit/s: %d of %d packets lost", lost, n)
	}
	if family.said(`"track-paused"`) {
		t.Error("the family, on a good link, was told a track paused")
	}
}
