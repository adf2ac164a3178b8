// The composite tests that run ffmpeg: they make small participant files
// with it (VP8 + Opus WebM, as the recorder writes), compose them, and
// look at the MP4 as a player would: its streams, sampled pictures
// against the layout, each voice at its time, a clean decode. Also the
// composer's queue, cancellation and failure reports with a real ffmpeg.
// They skip when ffmpeg or ffprobe is not installed.

package recording

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/internal/testlog"
)

// vp8 and opus encode as a client does, fast.
var (
	vp8  = []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k", "-g", "30"}
	opus = []string{"-c:a", "libopus", "-b:a", "32k"}
)

func ffmpegArgs(parts ...[]string) []string {
	out := []string{"-v", "error", "-y"}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// makeWebM encodes a participant file of n seconds: a solid colour and
// a tone.
func makeWebM(t *testing.T, path, colour string, tone, n int) {
	t.Helper()
	runTool(t, "ffmpeg", ffmpegArgs([]string{"-f", "lavfi", "-i", "color=c=" + colour + ":size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=" + strconv.Itoa(tone) + ":sample_rate=48000", "-t", strconv.Itoa(n)},
		vp8, opus, []string{path})...)
}

// joinIVF writes the frames of a and then of b as one IVF: a VP8 track
// that changes resolution halfway, as a WebRTC sender does when its
// bandwidth changes.
func joinIVF(t *testing.T, a, b, out string) {
	t.Helper()
	var ivf []byte
	var count uint32
	var next uint64
	for _, path := range []string{a, b} {
		data, err := os.ReadFile(path)
		if err != nil || len(data) < 32 {
			t.Fatalf("%s: %v", path, err)
		}
		if ivf == nil {
			ivf = append(ivf, data[:32]...)
		}
		base := next
		for off := 32; off < len(data); {
			size := int(binary.LittleEndian.Uint32(data[off:]))
			if off+12+size > len(data) {
				t.Fatalf("%s: frame at %d runs past the end", path, off)
			}
			pts := base + binary.LittleEndian.Uint64(data[off+4:])
			ivf = binary.LittleEndian.AppendUint32(ivf, uint32(size))
			ivf = binary.LittleEndian.AppendUint64(ivf, pts)
			ivf = append(ivf, data[off+12:off+12+size]...)
			next, count = pts+1, count+1
			off += 12 + size
		}
	}
	binary.LittleEndian.PutUint32(ivf[24:], count)
	if err := os.WriteFile(out, ivf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeConsult writes the files of consultJob: A a test pattern whose
// resolution changes at 6 s and whose microphone pauses from 4 to 8 s,
// B red, C green (lime), C's screen white at 5 frames a second from 1 s
// into its second file; each with its own tone.
func makeConsult(t *testing.T, dir string) {
	half := func(name, size string) string {
		p := filepath.Join(dir, name)
		runTool(t, "ffmpeg", ffmpegArgs([]string{"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30", "-t", "6"}, vp8, []string{p})...)
		return p
	}
	ivf := filepath.Join(dir, "a.ivf")
	joinIVF(t, half("a1.ivf", "320x240"), half("a2.ivf", "320x180"), ivf)
	runTool(t, "ffmpeg", ffmpegArgs([]string{"-i", ivf, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-t", "12", "-c:v", "copy", "-af", "aselect='not(between(t,4,8))'"}, opus, []string{filepath.Join(dir, "a.webm")})...)
	makeWebM(t, filepath.Join(dir, "b.webm"), "red", 660, 6)
	makeWebM(t, filepath.Join(dir, "c1.webm"), "lime", 880, 3)
	c2 := filepath.Join(dir, "c2.webm")
	runTool(t, "ffmpeg", ffmpegArgs([]string{"-f", "lavfi", "-i", "color=c=lime:size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000",
		"-itsoffset", "1", "-f", "lavfi", "-i", "color=c=white:size=320x240:rate=5",
		"-map", "0:v", "-map", "1:a", "-map", "2:v", "-t", "6"}, vp8, opus, []string{c2})...)
	// The screen's track starts 1 s into the file, as consultJob says.
	var probe struct {
		Streams []struct {
			StartTime string `json:"start_time"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(runTool(t, "ffprobe", "-v", "error", "-of", "json", "-show_streams", c2)), &probe); err != nil || len(probe.Streams) != 3 {
		t.Fatalf("ffprobe %s: %v %+v", c2, err, probe)
	}
	cam, _ := strconv.ParseFloat(probe.Streams[0].StartTime, 64)
	screen, _ := strconv.ParseFloat(probe.Streams[2].StartTime, 64)
	if d := screen - cam; d < 0.95 || d > 1.05 {
		t.Fatalf("the screen starts %.3f s into C's second file, want 1", d)
	}
}

// grayFrame is the output's picture at s seconds, one byte of luma a pixel.
func grayFrame(t *testing.T, path string, s float64, w, h int) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(s, 'f', 2, 64), "-i", path,
		"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil || len(out) != w*h {
		t.Fatalf("frame at %vs: %v, %d bytes", s, err, len(out))
	}
	return out
}

func meanLuma(frame []byte, w int, r image.Rectangle) float64 {
	sum := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sum += int(frame[y*w+x])
		}
	}
	return float64(sum) / float64(r.Dx()*r.Dy())
}

var meanVolume = regexp.MustCompile(`mean_volume: (-?[0-9.]+) dB`)

// loudness is the mean volume in dB of the output's sound over [from,
// from+n) seconds, of all of it (tone 0) or around one tone's frequency.
func loudness(t *testing.T, path string, from, n float64, tone int) float64 {
	t.Helper()
	filter := "volumedetect"
	if tone > 0 {
		band := "bandpass=f=" + strconv.Itoa(tone) + ":width_type=h:w=40,"
		filter = band + band + filter
	}
	out := runTool(t, "ffmpeg", "-hide_banner", "-nostats", "-ss", strconv.FormatFloat(from, 'f', 2, 64),
		"-t", strconv.FormatFloat(n, 'f', 2, 64), "-i", path, "-vn", "-af", filter, "-f", "null", "-")
	m := meanVolume.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no mean volume from %v s:\n%s", from, out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestCompositeEndToEnd(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	makeConsult(t, dir)
	job := consultJob(dir)
	inputs := map[string]os.FileInfo{}
	for _, in := range job.Inputs {
		fi, err := os.Stat(in.Path)
		if err != nil {
			t.Fatal(err)
		}
		inputs[in.Path] = fi
	}

	c := newComposer(testlog.New(t), 2)
	defer c.close()
	var progress []float64
	done := make(chan error, 1)
	began := time.Now()
	if err := c.submit(job, func(f float64) { progress = append(progress, f) }, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-testenv.After(3 * time.Minute):
		t.Fatal("the composite did not finish")
	}
	t.Logf("composed a 12 s consult of %d files in %v", len(job.Inputs), time.Since(began).Round(time.Millisecond))

	// (How many reports come depends on the machine's speed: ffmpeg
	// writes one every half second. TestComposerQueueFullAndClose sees
	// a long job's.)
	if len(progress) == 0 || progress[len(progress)-1] != 1 || progress[0] <= 0 {
		t.Errorf("progress %v: want reports ending at 1", progress)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] <= progress[i-1] {
			t.Errorf("progress %v does not grow", progress)
		}
	}
	if _, err := os.Stat(job.Out + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the .part file is left: %v", err)
	}
	for path, was := range inputs {
		if fi, err := os.Stat(path); err != nil || fi.Size() != was.Size() || !fi.ModTime().Equal(was.ModTime()) {
			t.Errorf("input %s changed: %v", filepath.Base(path), err)
		}
	}

	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			PixFmt    string `json:"pix_fmt"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	out := runTool(t, "ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", job.Out)
	if err := json.Unmarshal([]byte(out), &probe); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range probe.Streams {
		kinds = append(kinds, s.CodecType+":"+s.CodecName)
		if s.CodecType == "video" && (s.Width != 640 || s.Height != 360 || s.PixFmt != "yuv420p") {
			t.Errorf("video %dx%d %s, want 640x360 yuv420p", s.Width, s.Height, s.PixFmt)
		}
	}
	if strings.Join(kinds, " ") != "video:h264 audio:aac" {
		t.Errorf("streams %v, want one h264 video and one aac audio", kinds)
	}
	if d, _ := strconv.ParseFloat(probe.Format.Duration, 64); d < 12*0.95 || d > 12*1.05 {
		t.Errorf("duration %v s, want 12", d)
	}
	if out := runTool(t, "ffmpeg", "-v", "error", "-i", job.Out, "-f", "null", "-"); out != "" {
		t.Errorf("decoding the output: %s", out)
	}

	// Sampled pictures against the layout: black is about 16 (or 0 if the
	// conversion to gray expands the range), red about 80, green 145,
	// white 235.
	const w, h = 640, 360
	frames := map[float64][]byte{}
	for _, s := range []float64{1.5, 4.5, 6.5, 9.5} {
		frames[s] = grayFrame(t, job.Out, s, w, h)
		if m := meanLuma(frames[s], w, image.Rect(0, 0, w, h)); m < 25 {
			t.Errorf("the picture at %vs is blank: mean luma %.1f", s, m)
		}
	}
	rect := image.Rect
	for _, c := range []struct {
		at       float64
		what     string
		r        image.Rectangle
		min, max float64
	}{
		{1.5, "A on the left", rect(40, 100, 280, 260), 40, 255},
		{1.5, "B red on the right", rect(400, 100, 560, 260), 55, 110},
		{1.5, "B red low right", rect(500, 200, 630, 290), 55, 110},
		{4.5, "B red top right", rect(400, 40, 560, 140), 55, 110},
		{4.5, "C green bottom centre", rect(260, 220, 380, 340), 120, 175},
		{4.5, "nobody low right", rect(500, 200, 630, 290), 0, 30},
		{6.5, "C green on the right", rect(400, 100, 560, 260), 120, 175},
		{9.5, "C's white screen as the main tile", rect(200, 40, 440, 250), 200, 255},
		{9.5, "A in the strip", rect(200, 300, 310, 350), 40, 255},
		{9.5, "C green in the strip", rect(350, 300, 420, 350), 120, 175},
	} {
		if m := meanLuma(frames[c.at], w, c.r); m < c.min || m > c.max {
			t.Errorf("at %vs %s: mean luma %.1f in %v, want %v..%v", c.at, c.what, m, c.r, c.min, c.max)
		}
	}

	if v := loudness(t, job.Out, 0, 12, 0); v < -50 {
		t.Errorf("the sound is silent: mean %.1f dB", v)
	}
	// Each voice where its file has it on the recording's clock: B's
	// 660 Hz until 6 s, C's 880 Hz from 3 s, A's 440 Hz with the gap of
	// its paused microphone (4 to 8 s) kept in place.
	for _, c := range []struct {
		tone     int
		from, n  float64
		sounding bool
	}{
		{660, 0.5, 5, true}, {660, 6.5, 5, false},
		{880, 0, 2.5, false}, {880, 3.5, 8, true},
		{440, 0.5, 3, true}, {440, 4.5, 3, false}, {440, 8.5, 3, true},
	} {
		if v := loudness(t, job.Out, c.from, c.n, c.tone); (v > -40) != c.sounding {
			t.Errorf("%d Hz from %v s for %v s: mean %.1f dB, want sounding %v", c.tone, c.from, c.n, v, c.sounding)
		}
	}
}

// longJob is an hour's composite of one short file: it runs long enough
// to be caught running.
func longJob(dir, name string) compositeJob {
	return compositeJob{Out: filepath.Join(dir, name), Start: compositeT0, Stop: compositeT0.Add(time.Hour), Width: 320, Height: 180,
		Inputs: []compositeInput{avFile(filepath.Join(dir, "a.webm"), "a", 0, 3)}}
}

func TestComposerQueueFullAndClose(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	makeWebM(t, filepath.Join(dir, "a.webm"), "blue", 440, 3)
	c := newComposer(testlog.New(t), 1)
	reports := make(chan float64, 16)
	done1, done2 := make(chan error, 1), make(chan error, 1)
	first := longJob(dir, "first.mp4")
	progress := func(f float64) {
		select {
		case reports <- f:
		default:
		}
	}
	if err := c.submit(first, progress, func(err error) { done1 <- err }); err != nil {
		t.Fatal(err)
	}
	// Two reports of the running job, growing, far from done.
	var got []float64
	for len(got) < 2 {
		select {
		case f := <-reports:
			got = append(got, f)
		case <-testenv.After(time.Minute):
			t.Fatalf("progress of the first job: %v, want two reports", got)
		}
	}
	if got[0] <= 0 || got[1] <= got[0] || got[1] >= 0.5 {
		t.Errorf("progress %v of an hour's job, want small and growing", got)
	}
	if _, err := os.Stat(first.Out + ".part"); err != nil {
		t.Fatalf("the running job's .part: %v", err)
	}
	if _, err := exec.LookPath("nice"); err == nil {
		own, ok1 := niceOf("self")
		n, ok2 := niceOf(first.Out + ".part")
		if want := min(own+10, 19); ok1 && ok2 && n != want {
			t.Errorf("ffmpeg runs at nice %d, want %d", n, want)
		} else if !ok1 || !ok2 {
			t.Log("no /proc to read ffmpeg's niceness from")
		}
	}
	if err := c.submit(longJob(dir, "second.mp4"), nil, func(err error) { done2 <- err }); err != nil {
		t.Fatalf("a job while one runs: %v", err)
	}
	if err := c.submit(longJob(dir, "third.mp4"), nil, func(error) { t.Error("done of a refused job") }); !errors.Is(err, errComposerBusy) {
		t.Fatalf("a job beyond the queue: %v, want errComposerBusy", err)
	}

	c.close()
	for name, done := range map[string]chan error{"running": done1, "queued": done2} {
		select {
		case err := <-done:
			if !errors.Is(err, errComposerClosed) {
				t.Errorf("the %s job ended with %v, want errComposerClosed", name, err)
			}
		default:
			t.Errorf("close returned before the %s job's done", name)
		}
	}
	for _, name := range []string{"first.mp4", "first.mp4.part", "second.mp4", "second.mp4.part", "third.mp4.part"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is there after close: %v", name, err)
		}
	}
	if err := c.submit(longJob(dir, "late.mp4"), nil, nil); !errors.Is(err, errComposerClosed) {
		t.Errorf("submit after close: %v", err)
	}
	c.close() // again: a no-op
}

// niceOf is the niceness of this process ("self") or of the process
// whose command line has arg, read from /proc.
func niceOf(arg string) (int, bool) {
	dirs := []string{"/proc/self"}
	if arg != "self" {
		dirs, _ = filepath.Glob("/proc/[0-9]*")
	}
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || (arg != "self" && !strings.Contains(string(cmdline), arg)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		i := strings.LastIndexByte(string(stat), ')')
		if err != nil || i < 0 {
			continue
		}
		// After "pid (comm)": state is field 3, nice field 19.
		if f := strings.Fields(string(stat[i+1:])); len(f) > 16 {
			n, err := strconv.Atoi(f[16])
			return n, err == nil
		}
	}
	return 0, false
}

func TestComposerReportsFFmpegFailure(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.webm")
	const junk = "not a media file\n"
	if err := os.WriteFile(bad, []byte(junk), 0o644); err != nil {
		t.Fatal(err)
	}
	job := compositeJob{Out: filepath.Join(dir, "out.mp4"), Start: compositeT0, Stop: compositeT0.Add(2 * time.Second),
		Width: 320, Height: 180, Inputs: []compositeInput{avFile(bad, "a", 0, 2)}}
	c := newComposer(testlog.New(t), 1)
	defer c.close()
	done := make(chan error, 1)
	if err := c.submit(job, nil, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		// ffmpeg's reason, without the input's name.
		if err == nil || !strings.Contains(err.Error(), "input 0: Invalid data") || strings.Contains(err.Error(), "bad.webm") {
			t.Errorf("done(%v), want ffmpeg's reason about input 0", err)
		}
	case <-testenv.After(time.Minute):
		t.Fatal("no done")
	}
	for _, p := range []string{job.Out, job.Out + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
	if b, err := os.ReadFile(bad); err != nil || string(b) != junk {
		t.Errorf("the input changed: %q %v", b, err)
	}
}
