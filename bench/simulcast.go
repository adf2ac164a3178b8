package main

// Simulcast and capped downlinks. With -simulcast every publisher sends
// its camera as three layers, q, h and f (a tenth, two fifths and all of
// -video-kbps, as a browser's quarter, half and full size come out), and
// the server picks one per subscriber. With -subscriber-kbps a share of
// the subscribers receive through a shaping TURN relay on loopback
// (internal/shaper) that caps their downlink, as a weak phone link does;
// the others are left alone. The report then gives each class of
// subscriber (capped, uncapped) the layers its video came on, how often
// the server paused its video to keep the audio, and its loss and
// freezes: what the per-subscriber layer choice and audio first are
// worth under load, measured over the public protocol alone.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/shaper"
	"consult/protocol"
)

// The layers, lowest first, as the server names them.
var (
	layerRIDs  = [3]string{"q", "h", "f"}
	layerShare = [3]float64{0.1, 0.4, 1} // of -video-kbps
	layerScale = [3]int{4, 2, 1}         // the picture is this much smaller
)

// layerMedia is the media of layer i: its share of the bitrate, the
// frame rate and keyframe timer of the whole.
func (m MediaConfig) layerMedia(i int) MediaConfig {
	l := m
	l.VideoKbps = max(20, int(float64(m.VideoKbps)*layerShare[i]))
	return l
}

// publishLayers publishes the camera as three layers (PublishSimulcast).
func (p *publisher) publishLayers(ctx context.Context) error {
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for i, rid := range layerRIDs {
		p.layers[i] = client.NewSimulcastLayer(vp8, "cam", "av", rid)
	}
	_, err := p.cl.PublishSimulcast(ctx, p.layers[:]...)
	return err
}

// onLayerKeyframeRequest is the client's hook for a PLI or FIR on one
// layer: that layer's next frame is a keyframe.
func (p *publisher) onLayerKeyframeRequest(trackID, rid string) {
	if trackID != "cam" {
		return
	}
	for i, r := range layerRIDs {
		if r == rid {
			p.plis.Add(1)
			p.videoKey[i].Store(true)
		}
	}
}

// sendLayers is sendVideo for a simulcast camera: three layers, each at
// its share of the bitrate and its picture size.
func (p *publisher) sendLayers() {
	ls := make([]videoLayer, len(layerRIDs))
	for i := range ls {
		lm := p.media.layerMedia(i)
		d, k := lm.frameSizes()
		w, h := uint16(videoWidth/layerScale[i]), uint16(videoHeight/layerScale[i])
		ls[i] = videoLayer{delta: vp8Frame(d, false, w, h), key: vp8Frame(k, true, w, h), kbps: lm.VideoKbps,
			layer: uint8(i), next: &p.videoNext[i], out: p.layers[i],
			asked: func() bool { return p.videoKey[i].Swap(false) }}
	}
	p.sendFrames(ls)
}

// startShaper runs the relay capped subscribers receive through.
func startShaper(kbps int) (*shaper.Shaper, error) {
	s, err := shaper.Start()
	if err != nil {
		return nil, err
	}
	s.Set(shaper.Link{}, shaper.Link{Kbps: kbps})
	return s, nil
}

// shapedICE is a capped subscriber's only ICE server.
func (r *run) shapedICE() []webrtc.ICEServer {
	return []webrtc.ICEServer{{URLs: []string{r.shaper.URL()}, Username: shaper.User, Credential: shaper.Pass}}
}

// pickCapped says whether the n-th subscriber (from 0) is capped: the
// capped ones are spread evenly, so each room gets its share.
func (r *run) pickCapped(n int) bool {
	if r.cfg.SubscriberKbps <= 0 {
		return false
	}
	s := r.cfg.CappedShare
	return int(float64(n+1)*s) > int(float64(n)*s)
}

// onMessage is a subscriber's look at what the server tells it: a video
// track paused or resumed for its downlink (audio first).
func (rc *receiver) onMessage(raw []byte) {
	var m struct {
		Type string `json:"type"`
		protocol.TrackPaused
	}
	if json.Unmarshal(raw, &m) != nil || m.Type != protocol.TypeTrackPaused || m.Kind != "video" {
		return
	}
	id := m.Participant + ":" + m.Track
	rc.mu.Lock()
	if m.Paused && rc.r.measuring.Load() {
		rc.pauses++
	}
	var ts []*trackStats
	for _, t := range rc.tracks {
		if t.id == id {
			ts = append(ts, t)
		}
	}
	rc.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		t.newRun = true // what was not sent while paused is not lost
		t.mu.Unlock()
	}
}

// observeLayer keeps a simulcast track's loss accounting per run: the
// packets of one layer, from when the server switched to it until it
// switched away or paused; the gaps between runs were never sent to this
// subscriber.
func (t *trackStats) observeLayer(s Stamp) {
	if t.loss.started && (s.Layer != t.layer || t.newRun) {
		t.runs.Add(t.loss.Result(0))
		t.loss = LossTracker{}
	}
	t.layer, t.newRun = s.Layer, false
}

// lossResult is the track's loss over the window.
func (t *trackStats) lossResult(end uint32) LossResult {
	if !t.layered {
		return t.loss.Result(end)
	}
	r := t.runs
	r.Add(t.loss.Result(0))
	return r
}

// ClassResult is one class of subscribers' media.
type ClassResult struct {
	Class       string `json:"class"`               // "capped" or "uncapped"
	DownKbps    int    `json:"down_kbps,omitempty"` // the cap
	Subscribers int    `json:"subscribers"`
	// LayerFrames counts the complete video frames received per layer
	// (q, h, f); LayerShare is the same as a share of all of them.
	LayerFrames [3]uint64  `json:"layer_frames"`
	LayerShare  [3]float64 `json:"layer_share"`
	// FPS is complete frames a second per video track.
	FPS float64 `json:"video_fps"`
	// Paused counts subscribers whose video the server paused at least
	// once in the window (audio first), Pauses the pauses.
	Paused       int        `json:"subscribers_paused"`
	Pauses       int        `json:"pauses"`
	AudioLoss    LossResult `json:"audio_loss"`
	AudioLossPct float64    `json:"audio_loss_pct"`
	VideoLoss    LossResult `json:"video_loss"`
	VideoLossPct float64    `json:"video_loss_pct"`
	Freezes      int        `json:"freezes"`
	FreezeMs     float64    `json:"freeze_total_ms"`
	FreezeMaxMs  float64    `json:"freeze_longest_ms"`
}

// classAcc gathers one class while result walks the tracks.
type classAcc struct {
	ClassResult
	seen        map[*receiver]bool
	videoTracks int
}

// classes sorts subscribers' tracks into capped and uncapped, when the
// run has layers or caps to tell apart.
type classes struct {
	on     bool
	window float64
	acc    [2]*classAcc // uncapped, capped
}

func newClasses(cfg RunConfig, window float64) *classes {
	c := &classes{on: cfg.Media.Simulcast || cfg.SubscriberKbps > 0, window: window}
	c.acc[0] = &classAcc{ClassResult: ClassResult{Class: "uncapped"}, seen: map[*receiver]bool{}}
	c.acc[1] = &classAcc{ClassResult: ClassResult{Class: "capped", DownKbps: cfg.SubscriberKbps}, seen: map[*receiver]bool{}}
	return c
}

// add counts one track of a subscriber (the track's lock held by the
// caller, not its receiver's: pauses is the receiver's count).
func (c *classes) add(t *trackStats, loss LossResult, pauses int) {
	rc := t.rcv
	if !c.on || rc.role == roleInterPublisher {
		return
	}
	a := c.acc[0]
	if rc.capped {
		a = c.acc[1]
	}
	if !a.seen[rc] {
		a.seen[rc] = true
		a.Subscribers++
		if pauses > 0 {
			a.Paused++
			a.Pauses += pauses
		}
	}
	if !t.video {
		a.AudioLoss.Add(loss)
		return
	}
	a.VideoLoss.Add(loss)
	a.videoTracks++
	for i, n := range t.layerFrames {
		a.LayerFrames[i] += n
	}
	a.Freezes += t.freeze.Count
	a.FreezeMs += ms(t.freeze.Total)
	a.FreezeMaxMs = max(a.FreezeMaxMs, ms(t.freeze.Longest))
}

// results are the classes that have subscribers.
func (c *classes) results() []ClassResult {
	if !c.on {
		return nil
	}
	var out []ClassResult
	for _, a := range c.acc {
		if a.Subscribers == 0 {
			continue
		}
		r := a.ClassResult
		var all uint64
		for _, n := range r.LayerFrames {
			all += n
		}
		for i, n := range r.LayerFrames {
			if all > 0 {
				r.LayerShare[i] = float64(n) / float64(all)
			}
		}
		if a.videoTracks > 0 && c.window > 0 {
			r.FPS = float64(all) / float64(a.videoTracks) / c.window
		}
		r.AudioLossPct, r.VideoLossPct = r.AudioLoss.Percent(), r.VideoLoss.Percent()
		out = append(out, r)
	}
	return out
}

// printClasses writes the per-class table of the report.
func printClasses(w io.Writer, cs []ClassResult) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, c := range cs {
		name := c.Class
		if c.DownKbps > 0 {
			name = fmt.Sprintf("%s (%d kbit/s down)", c.Class, c.DownKbps)
		}
		fmt.Fprintf(w, "%s: %d subscribers; frames on q/h/f %.0f/%.0f/%.0f %%, %.1f fps; paused %d subscribers (%d times); "+
			"audio loss %.2f %%, video loss %.2f %%; %d freezes (%.0f ms in all, longest %.0f ms)\n",
			name, c.Subscribers, 100*c.LayerShare[0], 100*c.LayerShare[1], 100*c.LayerShare[2], c.FPS,
			c.Paused, c.Pauses, c.AudioLossPct, c.VideoLossPct, c.Freezes, c.FreezeMs, c.FreezeMaxMs)
	}
}
