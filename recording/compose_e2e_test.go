package recording_test

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/recording"
)

// A room's recording is composed into one MP4 once it stops: a member who
// left halfway and a screen share that came later are in it, its length
// is the recording's, and the manifest holds its hash, which the
// download matches.
func TestStoppedRecordingIsComposedIntoOneMP4(t *testing.T) {
	needTools(t)
	ivf, ogg := makeClip(t, 10)
	st := startStackWith(t, t.TempDir(), nil, func(c *recording.Config) {
		c.Composite, c.CompositeWidth, c.CompositeHeight = true, 640, 360
	})
	doctor := participant(t, st.url, "visit", "Doctor", nil)
	patient := participant(t, st.url, "visit", "Patient", nil)
	stop := make(chan struct{})
	defer close(stop)
	go sendClip(t, publishClip(t, doctor), ivf, ogg, stop)
	patientStop := make(chan struct{})
	go sendClip(t, publishClip(t, patient), ivf, ogg, patientStop)

	var rec recording.Info
	if code := post(t, st.api+"/api/recordings", `{"room":"visit"}`, &rec); code != 200 {
		t.Fatalf("start: %d", code)
	}
	filesWith := func(n int, d time.Duration) bool {
		var in recording.Info
		get(t, st.api+"/api/recordings/"+rec.ID, &in)
		got := 0
		for _, f := range in.Files {
			if f.Duration >= d {
				got++
			}
		}
		return got >= n
	}
	testenv.Eventually(t, 20*time.Second, "both recorded for 2 s", func() bool { return filesWith(2, 2*time.Second) })
	close(patientStop)
	_ = patient.Close() // leaves halfway
	screen, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "av-screen")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	if _, err := doctor.PublishScreen(ctx, screen); err != nil {
		t.Fatal(err)
	}
	go sendClip(t, clipTracks{video: screen}, ivf, "", stop)
	testenv.Eventually(t, 20*time.Second, "the doctor's part 2 with the screen for 2 s", func() bool { return filesWith(3, 2*time.Second) })
	post(t, st.api+"/api/recordings/"+rec.ID+"/stop", ``, &rec)

	var in recording.Info
	if !testenv.Within(60*time.Second, func() bool {
		get(t, st.api+"/api/recordings/"+rec.ID, &in)
		return in.Composite != nil && (in.Composite.State == recording.CompositeDone || in.Composite.State == recording.CompositeFailed)
	}) || in.Composite.State != recording.CompositeDone {
		t.Fatalf("composite %+v", in.Composite)
	}
	c := in.Composite
	if c.Progress != 1 || c.SHA256 == "" || c.Bytes == 0 || c.Name == "" {
		t.Fatalf("composite %+v", c)
	}
	code, mp4 := call(t, "GET", st.api+"/api/recordings/"+rec.ID+"/files/"+c.Name, "", "")
	if code != 200 || sum(mp4) != c.SHA256 || int64(len(mp4)) != c.Bytes {
		t.Fatalf("download: %d, %d bytes, hash %s, listed %+v", code, len(mp4), sum(mp4), c)
	}
	var man recording.Info
	code, b := call(t, "GET", st.api+"/api/recordings/"+rec.ID+"/manifest", "", "")
	if code != 200 || json.Unmarshal(b, &man) != nil || man.Composite == nil || man.Composite.SHA256 != c.SHA256 ||
		man.Composite.State != recording.CompositeDone {
		t.Fatalf("manifest: %d %s", code, b)
	}
	p := ffprobe(t, c.Path)
	kinds := map[string]string{}
	for _, s := range p.Streams {
		kinds[s.CodecType] = s.CodecName
	}
	if len(p.Streams) != 2 || kinds["video"] != "h264" || kinds["audio"] != "aac" {
		t.Fatalf("streams %+v", p.Streams)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	want := rec.Stopped.Sub(rec.Started).Seconds()
	if math.Abs(d-want) > 0.05*want {
		t.Fatalf("composite lasts %.2f s, the recording %.2f s", d, want)
	}
	t.Logf("composite %s: %.2f s (recording %.2f s), %d bytes", c.Name, d, want, c.Bytes)
}
