package web_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/internal/testenv"
	"consult/recording"
)

// ranFor reports whether the recording holds a file of participant pid
// with a track of the given source ("" for a camera or microphone) that
// runs at least d.
func ranFor(in recording.Info, pid, source string, d time.Duration) bool {
	for _, f := range in.Files {
		if f.Participant != pid {
			continue
		}
		for _, tr := range f.Tracks {
			if tr.Source == source && tr.Duration >= d {
				return true
			}
		}
	}
	return false
}

// lit is the share of a frame's pixels that are not black, in RGB (the
// fake camera's green has almost no luma).
func lit(t *testing.T, path string, at float64, w, h int) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(at, 'f', 2, 64), "-i", path,
		"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) != 3*w*h {
		t.Fatalf("frame at %.1f s: %v, %d bytes", at, err, len(out))
	}
	n := 0
	for i := 0; i+2 < len(out); i += 3 {
		if max(out[i], out[i+1], out[i+2]) > 40 {
			n++
		}
	}
	return float64(n) / float64(w*h)
}

var maxVolume = regexp.MustCompile(`max_volume: (-?[0-9.]+) dB`)

// A three-page consult where one member leaves halfway and another
// shares a screen is recorded for 20 s and composed into one MP4: one
// video stream of the composite's size and one audio stream, as long as
// the recording, with a picture at every sampled time and sound.
func TestChromiumConsultComposedIntoOneMP4(t *testing.T) {
	for _, tool := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (Debian package ffmpeg; CI installs it): %v", tool, err)
		}
	}
	srv := startServerWith(t, serverOptions{composite: true})
	_, p := newPages(t, 180*time.Second, 3, "ana", "ben", "cat")
	ana, ben, cat := p[0], p[1], p[2]
	for i, name := range []string{"Ana", "Ben", "Cat"} {
		do(t, p[i], chromedp.Navigate(roomURL(srv.URL, "composed", name, true)))
	}
	waitVideoFlowing(t, ana, "Ana", 2)
	ids := map[string]string{}
	for i, name := range []string{"ana", "ben", "cat"} {
		ids[name] = eval[string](t, p[i], `window.consultApp.roster.me.id`)
	}

	var rec recording.Info
	srv.postJSON(t, "/api/recordings", `{"room":"composed"}`, &rec)
	get := func() recording.Info {
		var in recording.Info
		srv.getJSON(t, "/api/recordings/"+rec.ID, &in)
		return in
	}
	testenv.Eventually(t, 30*time.Second, "everyone recorded for 5 s", func() bool {
		in := get()
		return ranFor(in, ids["ana"], "", 5*time.Second) && ranFor(in, ids["ben"], "", 5*time.Second) &&
			ranFor(in, ids["cat"], "", 5*time.Second)
	})
	do(t, cat, chromedp.Navigate("about:blank")) // Cat leaves halfway
	click(t, ben, "#btn-share")
	testenv.Eventually(t, 30*time.Second, "Ben's screen recorded for 5 s", func() bool {
		return ranFor(get(), ids["ben"], "screen", 5*time.Second)
	})
	// Twenty seconds of Ana's camera in her one file: the recording's length.
	testenv.Eventually(t, 40*time.Second, "20 s of recording", func() bool { return ranFor(get(), ids["ana"], "", 20*time.Second) })
	srv.postJSON(t, "/api/recordings/"+rec.ID+"/stop", "", &rec)

	var in recording.Info
	if !testenv.Within(120*time.Second, func() bool {
		in = get()
		return in.Composite != nil && (in.Composite.State == recording.CompositeDone || in.Composite.State == recording.CompositeFailed)
	}) || in.Composite.State != recording.CompositeDone {
		t.Fatalf("composite %+v", in.Composite)
	}
	path := in.Composite.Path
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var pr struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &pr); err != nil {
		t.Fatal(err)
	}
	if len(pr.Streams) != 2 || pr.Streams[0].CodecType != "video" || pr.Streams[0].CodecName != "h264" ||
		pr.Streams[0].Width != 640 || pr.Streams[0].Height != 360 || pr.Streams[1].CodecName != "aac" {
		t.Fatalf("streams %+v", pr.Streams)
	}
	secs, _ := strconv.ParseFloat(pr.Format.Duration, 64)
	want := rec.Stopped.Sub(rec.Started).Seconds()
	if math.Abs(secs-want) > 0.05*want {
		t.Fatalf("the composite lasts %.2f s, the recording %.2f s", secs, want)
	}
	// A picture soon after the first one reached the recorder (a page's
	// video starts at its first keyframe, which a loaded machine may send
	// seconds after its sound: until then the composite is rightly
	// black), halfway, and at the end, with Ben's screen.
	first := want
	for _, f := range in.Files {
		for _, tr := range f.Tracks {
			if tr.Kind == "video" && tr.Duration > 0 {
				first = min(first, f.Started.Add(tr.Start).Sub(in.Started).Seconds())
			}
		}
	}
	for _, at := range []float64{first + 1, want / 2, want - 2} {
		share := lit(t, path, at, 640, 360)
		png := filepath.Join(artifactDir(t), fmt.Sprintf("composite-%.0fs.png", at))
		_ = exec.Command("ffmpeg", "-v", "error", "-y", "-ss", strconv.FormatFloat(at, 'f', 2, 64), "-i", path, "-frames:v", "1", png).Run()
		t.Logf("frame at %.1f s: %.1f %% lit (%s)", at, share*100, png)
		if share < 0.05 {
			t.Errorf("the frame at %.1f s is blank (%.1f %% lit)", at, share*100)
		}
	}
	vd, err := exec.Command("ffmpeg", "-v", "info", "-nostats", "-i", path, "-af", "volumedetect", "-vn", "-f", "null", "-").CombinedOutput()
	m := maxVolume.FindSubmatch(vd)
	if err != nil || m == nil {
		t.Fatalf("volumedetect: %v\n%s", err, vd)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v < -40 {
		t.Errorf("the sound is silent: max volume %.1f dB", v)
	}
	var stderr strings.Builder
	dec := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-")
	dec.Stderr = &stderr
	if err := dec.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Errorf("decoding the composite: %v %s", err, stderr.String())
	}
	t.Logf("composite %s: %.2f s for a %.2f s recording of %d files, %d bytes", in.Composite.Name, secs, want, len(in.Files), in.Composite.Bytes)
}
