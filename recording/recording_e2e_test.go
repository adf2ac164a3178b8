package recording_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
)

func TestConsultRecordingIsPlayableAndInSync(t *testing.T) {
	needTools(t)
	ivf, ogg := makeClip(t, 10)
	dir := t.TempDir()
	st := startStack(t, dir)
	viewer := participant(t, st.url, "visit", "Viewer", nil)
	pub := participant(t, st.url, "visit", "Patient", nil)

	var started recording.Info
	if code := post(t, st.api+"/api/recordings", `{"room":"visit"}`, &started); code != 200 {
		t.Fatalf("start: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	var ind protocol.Recording
	e, err := viewer.Await(ctx, protocol.TypeRecording)
	if err != nil || e.Decode(&ind) != nil || !ind.Active {
		t.Fatalf("no recording indicator: %v %+v", err, ind)
	}

	sendClip(t, publishClip(t, pub), ivf, ogg, nil) // ten seconds, in real time
	// The clip's sound and picture end together; stop once the recorder
	// has both ends. (On a loaded machine the last packets of one track
	// can still be on their way through the SFU when sendClip returns,
	// and a stop cuts what has not come: that is a late stop, not a file
	// out of sync. A file out of sync never gets here.)
	var tracks []recording.TrackFileInfo
	if !testenv.Within(30*time.Second, func() bool {
		var list []recording.Info
		get(t, st.api+"/api/recordings", &list)
		if len(list) != 1 || len(list[0].Files) != 1 {
			return false
		}
		tracks = list[0].Files[0].Tracks
		if len(tracks) != 2 {
			return false
		}
		a, v := tracks[0].Start+tracks[0].Duration, tracks[1].Start+tracks[1].Duration
		return a > 9*time.Second && v > 9*time.Second && (a-v).Abs() <= 100*time.Millisecond
	}) {
		t.Fatalf("the recorder's tracks do not end together: %+v", tracks)
	}
	var stopped recording.Info
	if code := post(t, st.api+"/api/recordings/"+started.ID+"/stop", ``, &stopped); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	if e, err = viewer.Await(ctx, protocol.TypeRecording); err != nil || e.Decode(&ind) != nil || ind.Active {
		t.Fatalf("indicator not cleared: %v %+v", err, ind)
	}
	if stopped.State != recording.StateStopped || len(stopped.Files) != 1 || stopped.Bytes == 0 {
		t.Fatalf("recording %+v", stopped)
	}
	path := stopped.Files[0].Path
	if !strings.HasPrefix(path, dir) {
		t.Fatalf("file %s outside %s", path, dir)
	}

	p := ffprobe(t, path)
	codecs := map[string]float64{}
	for _, s := range p.Streams {
		start, _ := strconv.ParseFloat(s.StartTime, 64)
		codecs[s.CodecName] = start
	}
	if _, ok := codecs["vp8"]; !ok || len(codecs) != 2 {
		t.Fatalf("streams %+v", p.Streams)
	}
	if _, ok := codecs["opus"]; !ok {
		t.Fatalf("streams %+v", p.Streams)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if math.Abs(d-10) > 0.5 {
		t.Fatalf("duration %.2f s, want 10 s ± 5 %%", d)
	}
	// In sync: both streams end together (video may start later, at the
	// clip's first keyframe after the recording began).
	ends := lastPacketTimes(t, path)
	t.Logf("streams start at %v, end at %v (in track order), per the API %+v", codecs, ends, stopped.Files[0].Tracks)
	if skew := math.Abs(ends[0] - ends[1]); skew > 0.15 {
		t.Fatalf("audio and video end %.3f s apart: %v", skew, ends)
	}
	// -fps_mode vfr: ffmpeg's null output otherwise forces the frames onto
	// the constant rate it guesses, where two frames can land on one tick
	// and read as "non monotonically increasing dts" (seen on a busy
	// machine; the file's own times strictly increase).
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-fps_mode", "vfr", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("decoding reported: %v\n%s\n(the file is kept as %s)", err, out, keep(t, path))
	}
	t.Logf("recorded %s: %.2f s, %d bytes, vp8 start %.3f s, opus start %.3f s", path, d, stopped.Bytes, codecs["vp8"], codecs["opus"])
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, what, cond)
}

// lastPacketTimes returns the last packet time of streams 0 and 1.
func lastPacketTimes(t *testing.T, path string) [2]float64 {
	t.Helper()
	out := run(t, "ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time", "-of", "csv=p=0", path)
	var last [2]float64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		idx, ts, ok := strings.Cut(strings.TrimSpace(line), ",")
		if !ok {
			continue
		}
		i, _ := strconv.Atoi(idx)
		if v, err := strconv.ParseFloat(ts, 64); err == nil && i < 2 && v > last[i] {
			last[i] = v
		}
	}
	return last
}

// keep copies a file a failed check was about to <repo>/testdata/artifacts,
// which outlives the test's temporary directory.
func keep(t *testing.T, path string) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "artifacts")
	b, err := os.ReadFile(path)
	if err != nil || os.MkdirAll(dir, 0o755) != nil {
		return "nowhere: " + fmt.Sprint(err)
	}
	dst := filepath.Join(dir, t.Name()+"-"+filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return "nowhere: " + err.Error()
	}
	return dst
}
