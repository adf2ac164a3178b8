package signaling_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
)

// awaitPaused waits for a track-paused about kind of publisher's tracks,
// paused or resumed.
func awaitPaused(t *testing.T, p *peer, publisher, kind string, paused bool, within time.Duration) protocol.TrackPaused {
	t.Helper()
	var tp protocol.TrackPaused
	_, err := p.AwaitMatch(ctxT(t, within), func(e client.Event) bool {
		return e.Type == protocol.TypeTrackPaused && e.Decode(&tp) == nil &&
			tp.Participant == publisher && tp.Kind == kind && tp.Paused == paused
	})
	if err != nil {
		t.Fatalf("no track-paused %v for %s's %s: %v", paused, publisher, kind, err)
	}
	return tp
}

// Audio first: the doctor's downlink carries 120 kbit/s, a third of the
// patient's video. The server pauses that video for the doctor (and tells
// it why), and the patient's audio reaches the doctor whole; the patient,
// on a good link, keeps the doctor's video. When the doctor's link is good
// again, the video comes back by itself.
func TestAudioFirstOnAWeakDownlink(t *testing.T) {
	mw := newMediaWorld(t, 0)
	down := downCap(120_000)
	doctor := mw.memberOn(t, "Dr", down, "1.2.3.20")
	patient := mw.member(t, "Pat", "1.2.3.21")
	audio := logSeqs(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeAudio))
	video := logSeqs(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		record(patient.awaitTrackKind(t, k)) // read, so that transport-cc feedback counts them
	}

	tp := awaitPaused(t, doctor, patient.ID(), "video", true, 20*time.Second)
	if tp.Reason != protocol.PauseBandwidth || !strings.HasPrefix(tp.Track, patient.ID()+":") {
		t.Fatalf("track-paused %+v", tp)
	}
	// What was queued when the pause came drains first.
	lost, n := audio.lossOver(t, time.Second)
	t.Logf("with the video paused, %d of %d audio packets lost", lost, n)
	// At least some audio (the test's publisher, on a loaded machine,
	// sends fewer than its 50 packets a second), and nearly all of it.
	if n < 30 || float64(lost) > 0.02*float64(n) {
		t.Errorf("audio on the weak link: %d of %d packets lost", lost, n)
	}
	if patient.said(`"track-paused"`) {
		t.Error("the patient, on a good link, was told a track paused")
	}

	down.SetRate(20_000_000)
	back := time.Now()
	awaitPaused(t, doctor, patient.ID(), "video", false, 60*time.Second)
	resumed := time.Since(back)
	beforePause := video.mark() // nothing came during the pause
	took := video.flowing(t, "the patient's video at the doctor again", back, 20, 15*time.Second)
	t.Logf("the link was good again: video resumed after %v, flowing after %v", resumed, took)

	// The doctor's decoder sees one stream: the numbers go on from before
	// the pause (less what the weak link dropped just before it, a few
	// dozen) instead of jumping by the hundreds of packets the pause held
	// back, and nothing is missing after the resume.
	first := video.firstAfter(beforePause)
	end := time.Now().Add(2 * time.Second)
	testenv.Eventually(t, 10*time.Second, "two seconds of video", func() bool { return time.Now().After(end) })
	to := video.mark()
	lost = video.missing(first, to)
	t.Logf("numbers: %d before the pause, %d first after it; %d of %d missing since", beforePause, first, lost, to-first+1)
	if first-beforePause > 60 {
		t.Errorf("the doctor's video jumped from %d to %d across the pause", beforePause, first)
	}
	if to-first < 20 || float64(lost) > 0.02*float64(to-first+1) {
		t.Errorf("after the resume %d of %d sequence numbers missing", lost, to-first+1)
	}
}
