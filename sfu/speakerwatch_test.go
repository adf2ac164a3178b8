package sfu

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/internal/testenv"
	"consult/internal/testlog"
)

// levelRTP is an Opus-like packet carrying level (in -dBov) in one-byte
// extension id.
func levelRTP(seq uint16, ts uint32, id, level uint8) *rtp.Packet {
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 77},
		Payload: []byte{0xfc, 0xff, 0xfe}}
	if id != 0 {
		if err := p.SetExtension(id, []byte{0x80 | level}); err != nil {
			panic(err)
		}
	}
	return p
}

// speakerRig is a room of audio up-tracks fed by forward and watched by a
// speakerWatch ticked by hand: the path from packets to reports, with no
// PeerConnection and no clock.
type speakerRig struct {
	t       *testing.T
	s       *SFU
	room    *Room
	w       *speakerWatch
	ps      map[string]*Participant
	ups     map[string]*UpTrack
	seq     uint16
	ts      uint32
	reports []Speakers
}

const rigExt = 3 // the extension id the rig's publishers negotiated

func newSpeakerRig(t *testing.T, ids ...string) *speakerRig {
	s := &SFU{log: zap.NewNop(), rooms: map[string]*Room{}}
	r := newRoom(s, "consult")
	s.rooms[r.name] = r
	rig := &speakerRig{t: t, s: s, room: r, ps: map[string]*Participant{}, ups: map[string]*UpTrack{}}
	rig.w = newSpeakerWatch(s, func(room string, sp Speakers) {
		if room != "consult" {
			t.Errorf("report for room %q", room)
		}
		rig.reports = append(rig.reports, sp)
	})
	for _, id := range ids {
		p := &Participant{id: id, room: r}
		up := testUpTrack(TrackInfo{ID: id + ":mic", Participant: id, Kind: "audio", Codec: webrtc.MimeTypeOpus}, 1)
		up.held = p.heldFlag("audio")
		up.level.ext = rigExt
		empty := []*DownTrack{}
		up.downs.Store(&empty)
		r.participants[id] = p
		r.tracks = append(r.tracks, up)
		rig.ps[id], rig.ups[id] = p, up
	}
	return rig
}

// interval sends 100 ms of audio from each publisher at its level (127:
// silence; -1: nothing sent) and ticks the watch.
func (rig *speakerRig) interval(levels map[string]int) { rig.intervals(levels, 1) }

// intervals is n intervals' audio, then one tick that came n intervals
// after the last (a busy machine).
func (rig *speakerRig) intervals(levels map[string]int, n int) {
	for id, up := range rig.ups {
		level, ok := levels[id]
		if !ok {
			level = 127
		}
		if level < 0 {
			continue
		}
		for i := 0; i < 5*n; i++ {
			rig.seq++
			b, _ := levelRTP(rig.seq, rig.ts+uint32(i)*960, rigExt, uint8(level)).Marshal()
			up.forward(0, up.layer(0), b)
		}
	}
	rig.ts += uint32(5 * n * 960)
	rig.w.tick(n)
}

func (rig *speakerRig) last() Speakers {
	if len(rig.reports) == 0 {
		return Speakers{}
	}
	return rig.reports[len(rig.reports)-1]
}

func TestSpeakerWatchReadsLevelsFromForwardedPackets(t *testing.T) {
	rig := newSpeakerRig(t, "dr", "pat", "nurse")
	// The patient's room is noisy (-70 dBov) but nobody speaks.
	for i := 0; i < 10; i++ {
		rig.interval(map[string]int{"pat": 70})
	}
	if len(rig.reports) != 0 {
		t.Fatalf("background noise reported: %+v", rig.reports)
	}
	// The doctor speaks at -25 dBov.
	for i := 0; i < 5; i++ {
		rig.interval(map[string]int{"dr": 25, "pat": 70})
	}
	if got := rig.last(); got.Dominant != "dr" || !slices.Equal(got.Active, []string{"dr"}) {
		t.Fatalf("after the doctor spoke: %+v (reports %+v)", got, rig.reports)
	}
	// A host mutes the doctor: its packets are dropped before the level
	// is read, and it leaves the active set at the next tick.
	rig.ps["dr"].Hold("audio", true)
	rig.interval(map[string]int{"dr": 25})
	if got := rig.last(); got.Dominant != "dr" || len(got.Active) != 0 {
		t.Fatalf("after the hold: %+v", got)
	}
	// A track without the extension negotiated gives no level at all.
	rig.ups["nurse"].level.ext = 0
	for i := 0; i < 10; i++ {
		rig.interval(map[string]int{"nurse": 10})
	}
	if rig.last().Dominant != "dr" {
		t.Fatalf("a track without levels took over: %+v", rig.last())
	}
	// The patient speaks, then leaves the room: gone from the report.
	for i := 0; i < 5; i++ {
		rig.interval(map[string]int{"pat": 30})
	}
	if got := rig.last(); got.Dominant != "pat" {
		t.Fatalf("the patient spoke: %+v", got)
	}
	rig.room.leave(rig.ps["pat"])
	delete(rig.ups, "pat")
	rig.interval(nil)
	if got := rig.last(); got.Dominant != "" || len(got.Active) != 0 {
		t.Fatalf("after the patient left: %+v", got)
	}
	// The doctor, unmuted, speaks again; then the room is gone from the
	// SFU (the call moved to the direct path): nobody speaks there any
	// more, and its detector and counters go.
	rig.ps["dr"].Hold("audio", false)
	for i := 0; i < 5; i++ {
		rig.interval(map[string]int{"dr": 25})
	}
	if got := rig.last(); got.Dominant != "dr" {
		t.Fatalf("the doctor spoke again: %+v", got)
	}
	rig.s.mu.Lock()
	delete(rig.s.rooms, "consult")
	rig.s.mu.Unlock()
	n := len(rig.reports)
	rig.w.tick(1)
	if got := rig.last(); len(rig.reports) != n+1 || got.Dominant != "" || got.Active == nil || len(got.Active) != 0 {
		t.Fatalf("the room's end reported as %+v", rig.reports[n:])
	}
	rig.w.tick(1)
	if len(rig.w.rooms) != 0 || len(rig.reports) != n+1 {
		t.Fatalf("%d rooms still watched, %d reports more", len(rig.w.rooms), len(rig.reports)-n-1)
	}
}

// A tick that comes late (the ones it overran never came) stands for the
// time that passed: the speech in it counts over as many intervals, and
// the detector's windows keep their length in time.
func TestLateTickCountsTheTimeThatPassed(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, 100 * time.Millisecond: 1, 140 * time.Millisecond: 1,
		160 * time.Millisecond: 2, 350 * time.Millisecond: 4, time.Minute: 2 * longTicks} {
		if got := intervals(d); got != want {
			t.Errorf("a tick after %v is %d intervals, want %d", d, got, want)
		}
	}
	rig := newSpeakerRig(t, "dr", "pat")
	rig.intervals(map[string]int{"dr": 25}, 3) // 300 ms of speech, one late tick
	if got := rig.last(); got.Dominant != "" || !slices.Equal(got.Active, []string{"dr"}) {
		t.Fatalf("after 300 ms: %+v", got)
	}
	rig.interval(map[string]int{"dr": 25})
	if got := rig.last(); got.Dominant != "dr" {
		t.Fatalf("after 400 ms of speech, half of the window: %+v", got)
	}
	// Silence over a late tick of 700 ms: past the active hold.
	rig.intervals(nil, 7)
	if got := rig.last(); got.Dominant != "dr" || len(got.Active) != 0 {
		t.Fatalf("after 700 ms of silence: %+v", got)
	}
}

func TestAudioLevelOnTheForwardingPathDoesNotAllocate(t *testing.T) {
	up := testUpTrack(TrackInfo{ID: "p:mic", Participant: "p", Kind: "audio", Codec: webrtc.MimeTypeOpus}, 1)
	up.level.ext = rigExt
	empty := []*DownTrack{}
	up.downs.Store(&empty)
	var downs []*DownTrack
	for i := 0; i < 10; i++ {
		d := newDownTrack(up, func(*DownTrack) {}, false)
		d.binding.Store(testBinding(up, uint32(1000+i), 111, &countingWriter{}))
		up.addDown(d)
		downs = append(downs, d)
	}
	pkts := make([][]byte, 50)
	for i := range pkts {
		pkts[i], _ = levelRTP(uint16(i), uint32(i)*960, rigExt, 20).Marshal()
	}
	i := 0
	step := func() {
		seq := uint16(i)
		b := pkts[i%len(pkts)]
		// Numbers and times go on, as a stream's do.
		b[2], b[3] = byte(seq>>8), byte(seq)
		ts := uint32(i) * 960
		b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		up.forward(0, up.layer(0), b)
		for _, d := range downs {
			select {
			case s := <-d.queue:
				d.write(s)
			default:
			}
		}
		i++
	}
	step()
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Fatalf("forwarding audio with its level allocates %.1f times per packet", allocs)
	}
	// Every packet after the first counted its 20 ms as speech.
	if got, want := rtpDuration(up.level.speech.Load()), time.Duration(i)*20*time.Millisecond; got != want {
		t.Fatalf("speech %v after %d packets, want %v", got, i, want)
	}
}

// The extension is negotiated with a publisher that offers it, and its
// levels make it the room's speaker.
func TestPublisherAudioLevelNamesTheSpeaker(t *testing.T) {
	got := make(chan Speakers, 64)
	s, err := New(Config{Logger: testlog.New(t), ICE: ICEConfig{IncludeLoopback: true},
		OnSpeakers: func(room string, sp Speakers) {
			select {
			case got <- sp:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a := joinPeer(t, s, "r", "a")
	b := joinPeer(t, s, "r", "b")
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "s")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := a.pub.AddTrack(tr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // the interceptors need the sender's RTCP read
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	a.offer()
	var id uint8
	testenv.Eventually(t, 5*time.Second, "the answer's audio level extension", func() bool {
		for _, e := range sender.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				id = uint8(e.ID)
			}
		}
		return id != 0
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := uint16(0); ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = tr.WriteRTP(levelRTP(n, uint32(n)*960, id, 20))
		}
	}()
	deadline := testenv.After(10 * time.Second)
	for {
		select {
		case sp := <-got:
			if sp.Dominant == "a" {
				// b receives a's audio, levels stripped: their id was
				// negotiated with a, not with b.
				r := b.awaitTrack(5 * time.Second)
				var bid int
				for _, tr := range b.sub.GetTransceivers() {
					for _, e := range tr.Receiver().GetParameters().HeaderExtensions {
						if e.URI == sdp.AudioLevelURI {
							bid = e.ID
						}
					}
				}
				for i := 0; bid != 0 && i < 5; i++ {
					_ = r.SetReadDeadline(time.Now().Add(testenv.Scale(5 * time.Second)))
					p, _, err := r.ReadRTP()
					if err != nil {
						t.Fatal(err)
					}
					if lv := p.GetExtension(uint8(bid)); lv != nil {
						t.Fatalf("forwarded with a level % x", lv)
					}
				}
				return
			}
		case <-deadline:
			t.Fatal("a, the only one speaking, was never named")
		}
	}
}
