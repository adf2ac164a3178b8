package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/internal/testenv"
	"consult/recording"
)

// A call between two Chromium pages is recorded for five seconds: the room
// leaves the direct path for the SFU, both pages show the recording
// indicator, and each participant's file plays, with sound and picture.
func TestChromiumCallRecordedToPlayableFiles(t *testing.T) {
	for _, tool := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (Debian package ffmpeg; CI installs it): %v", tool, err)
		}
	}
	srv := startServer(t, 0)
	_, p := newPages(t, 90*time.Second, 2, "ana", "ben")
	ana, ben := p[0], p[1]
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "recorded", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "recorded", "Ben", true)))
	waitVideoFlowing(t, ana, "Ana", 1)

	var rec recording.Info
	srv.postJSON(t, "/api/recordings", `{"room":"recorded"}`, &rec)
	srv.waitMode(t, "recorded", "sfu") // the media must pass the server to be recorded
	waitFor(t, ben, "Ben's recording indicator", 10*time.Second,
		`!document.getElementById('rec').hidden`, func(b bool) bool { return b })
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)

	// Let both participants' current files hold five seconds of sound
	// and of picture, then stop. (A file is renewed as a part 2 if a
	// track comes after it opened; on a loaded machine a page's video to
	// the server can start well after its audio.)
	deadline := time.Now().Add(testenv.Scale(30 * time.Second))
	for {
		var list []recording.Info
		srv.getJSON(t, "/api/recordings", &list)
		if len(list) == 1 {
			if last := lastFiles(list[0]); len(last) == 2 && fiveSeconds(last[0]) && fiveSeconds(last[1]) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recordings did not reach 5 s: %+v", list)
		}
		time.Sleep(200 * time.Millisecond) // polling interval, not synchronisation
	}
	srv.postJSON(t, "/api/recordings/"+rec.ID+"/stop", "", &rec)
	if rec.State != recording.StateStopped || len(lastFiles(rec)) != 2 {
		t.Fatalf("after stop: %+v", rec)
	}
	t.Logf("%d files for 2 participants", len(rec.Files))
	waitFor(t, ana, "Ana's recording indicator to go", 10*time.Second,
		`document.getElementById('rec').hidden`, func(b bool) bool { return b })

	for _, f := range lastFiles(rec) {
		path := f.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(srv.recDir, path)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", path, err)
		}
		var p struct {
			Streams []struct {
				CodecName string `json:"codec_name"`
				CodecType string `json:"codec_type"`
			} `json:"streams"`
			Format struct {
				Duration string `json:"duration"`
			} `json:"format"`
		}
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]string{}
		for _, s := range p.Streams {
			kinds[s.CodecType] = s.CodecName
		}
		secs, _ := strconv.ParseFloat(p.Format.Duration, 64)
		t.Logf("%s: %v, %.2f s, %d bytes", filepath.Base(path), kinds, secs, f.Bytes)
		if kinds["video"] == "" || kinds["audio"] != "opus" {
			t.Errorf("%s has streams %v, want a video and an Opus stream", path, kinds)
		}
		if secs < 4.5 {
			t.Errorf("%s lasts %.2f s, want about 5 s or more", path, secs)
		}
		// A camera's frames come at uneven times; the file keeps them
		// (strictly increasing), and ffmpeg is told not to force them
		// onto the constant rate it guesses for its null output, where
		// two frames 40 ms apart can land on one tick and read as an error.
		assertIncreasing(t, path, secs)
		var stderr bytes.Buffer
		cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-fps_mode", "vfr", "-f", "null", "-")
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
			t.Errorf("decoding %s: %v %s", path, err, stderr.String())
		}
	}
}

// fiveSeconds reports whether a file's audio and video tracks both run
// five seconds.
func fiveSeconds(f recording.FileInfo) bool {
	kinds := 0
	for _, tr := range f.Tracks {
		if tr.Duration >= 5*time.Second {
			kinds++
		}
	}
	return len(f.Tracks) == 2 && kinds == 2
}

// lastFiles returns each participant's newest file, in the order of
// their first file.
func lastFiles(in recording.Info) []recording.FileInfo {
	var out []recording.FileInfo
	at := map[string]int{}
	for _, f := range in.Files {
		if i, ok := at[f.Participant]; ok {
			out[i] = f
			continue
		}
		at[f.Participant] = len(out)
		out = append(out, f)
	}
	return out
}

// assertIncreasing checks that the video frames' timestamps in a file
// strictly increase, and that they make a moving picture over the whole
// file: frames at 2 a second or more, from its first second to its last.
// (How many a second is the browser's encoder's business: on a busy
// machine Chromium sends 5 fps rather than 30.)
func assertIncreasing(t *testing.T, path string, secs float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", path, err)
	}
	last, first := -1<<62, -1
	n := 0
	for _, line := range strings.Fields(string(out)) {
		pts, err := strconv.Atoi(strings.TrimSuffix(line, ","))
		if err != nil {
			t.Fatalf("ffprobe packet line %q", line)
		}
		if pts <= last {
			t.Errorf("%s: video frame %d at %d ms after one at %d ms", path, n, pts, last)
			return
		}
		if first < 0 {
			first = pts
		}
		last, n = pts, n+1
	}
	// The recorder said five seconds of picture: the file must have them,
	// moving (at least 2 frames a second).
	if span := float64(last-first) / 1000; span < 4.5 || float64(n) < 2*span {
		t.Errorf("%s has %d video frames over %.2f s of its %.2f s, want 4.5 s or more of a moving picture", path, n, span, secs)
	}
}

func (ts *testServer) postJSON(t *testing.T, path, body string, v any) {
	t.Helper()
	resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
}
