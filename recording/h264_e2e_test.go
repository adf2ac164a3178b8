package recording_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
)

// makeH264Clip encodes a synthetic H.264 video (constrained baseline, as
// browsers send it, one slice a frame, a keyframe every second) as an
// Annex B stream.
func makeH264Clip(t *testing.T, secs int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.h264")
	run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", strconv.Itoa(secs),
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "0",
		"-x264-params", "threads=1:slices=1", "-b:v", "300k", "-f", "h264", path)
	return path
}

// h264Frames reads an Annex B stream into access units: everything up
// to and including each slice, with start codes, as a browser's encoder
// hands a frame to its packetizer. Without params, SPS and PPS are left
// out (a stream a decoder cannot start).
func h264Frames(t *testing.T, path string, params bool) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var cur []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		typ := nal.UnitType
		if !params && (typ == h264reader.NalUnitTypeSPS || typ == h264reader.NalUnitTypePPS) {
			continue
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal.Data...)
		if typ == h264reader.NalUnitTypeCodedSliceIdr || typ == h264reader.NalUnitTypeCodedSliceNonIdr {
			frames = append(frames, cur)
			cur = nil
		}
	}
}

// publishH264 publishes Opus and H.264 and sends the frames and the
// clip's sound in real time until the frames run out or stop closes.
func publishH264(t *testing.T, c *client.Client, frames [][]byte, ogg string, stop <-chan struct{}) {
	t.Helper()
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "cam", "av")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "av")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	if _, err := c.Publish(ctx, audio, video); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for _, fr := range frames {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = video.WriteSample(media.Sample{Data: fr, Duration: time.Second / 30})
		}
	}()
	// The sound runs as long as the picture (sendClip's audio half).
	sendClip(t, clipTracks{audio: audio}, "", ogg, stop)
	<-done
}

// waitTracks polls the API until its one recording's one file has two
// tracks whose ends satisfy done.
func waitTracks(t *testing.T, api string, done func(a, v time.Duration) bool) []recording.TrackFileInfo {
	t.Helper()
	var tracks []recording.TrackFileInfo
	if !testenv.Within(30*time.Second, func() bool {
		var list []recording.Info
		get(t, api+"/api/recordings", &list)
		if len(list) != 1 || len(list[0].Files) != 1 || len(list[0].Files[0].Tracks) != 2 {
			return false
		}
		tracks = list[0].Files[0].Tracks
		return done(tracks[0].Start+tracks[0].Duration, tracks[1].Start+tracks[1].Duration)
	}) {
		t.Fatalf("the recorder's tracks: %+v", tracks)
	}
	return tracks
}

// An H.264 publisher (Safari and iPhones prefer it) is recorded to
// Matroska with its picture and sound: ffprobe reads both streams and
// the clip's length, and ffmpeg decodes it without an error.
func TestH264ParticipantIsRecordedToMatroska(t *testing.T) {
	needTools(t)
	frames := h264Frames(t, makeH264Clip(t, 10), true)
	_, ogg := makeClip(t, 10)
	dir := t.TempDir()
	st := startStack(t, dir)
	pub := participant(t, st.url, "visit", "Patient", nil)

	var started recording.Info
	if code := post(t, st.api+"/api/recordings", `{"room":"visit"}`, &started); code != 200 {
		t.Fatalf("start: %d", code)
	}
	publishH264(t, pub, frames, ogg, nil) // ten seconds, in real time
	waitTracks(t, st.api, func(a, v time.Duration) bool {
		return a > 9*time.Second && v > 9*time.Second && (a-v).Abs() <= 100*time.Millisecond
	})
	var stopped recording.Info
	if code := post(t, st.api+"/api/recordings/"+started.ID+"/stop", ``, &stopped); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	if len(stopped.Files) != 1 || len(stopped.Missing) != 0 {
		t.Fatalf("recording %+v", stopped)
	}
	path := stopped.Files[0].Path
	if filepath.Ext(path) != ".mkv" {
		t.Fatalf("file %s, want .mkv", path)
	}
	p := ffprobe(t, path)
	codecs := map[string]bool{}
	for _, s := range p.Streams {
		codecs[s.CodecName] = true
	}
	if len(p.Streams) != 2 || !codecs["h264"] || !codecs["opus"] {
		t.Fatalf("streams %+v (the file is kept as %s)", p.Streams, keep(t, path))
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if math.Abs(d-10) > 0.5 {
		t.Fatalf("duration %.2f s, want 10 s ± 5 %% (the file is kept as %s)", d, keep(t, path))
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-fps_mode", "vfr", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("decoding reported: %v\n%s\n(the file is kept as %s)", err, out, keep(t, path))
	}
	// The picture is the clip's: 320x240, at 30 frames a second from the
	// first keyframe the recorder saw (the clip's first second may have
	// gone before the track was tapped).
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-count_frames",
		"-show_entries", "stream=width,height,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var w, h, n int
	if f := strings.Split(strings.TrimSpace(string(out)), ","); len(f) == 3 {
		w, _ = strconv.Atoi(f[0])
		h, _ = strconv.Atoi(f[1])
		n, _ = strconv.Atoi(f[2])
	}
	if w != 320 || h != 240 || n < 240 {
		t.Fatalf("video %dx%d with %d frames, want 320x240 with at least 8 s of them", w, h, n)
	}
	t.Logf("recorded %s: %.2f s, %d video frames", path, d, n)
}

// An H.264 stream without parameter sets cannot be decoded from its
// start, so its video cannot be recorded: the recording says so (API
// and the room's host) and keeps the participant's sound.
func TestH264WithoutParameterSetsIsReportedNotDropped(t *testing.T) {
	needTools(t)
	frames := h264Frames(t, makeH264Clip(t, 3), false)
	_, ogg := makeClip(t, 3)
	st := startStack(t, t.TempDir())
	host := participant(t, st.url, "visit", "Doctor", nil)
	pub := participant(t, st.url, "visit", "Patient", nil)

	var started recording.Info
	if code := post(t, st.api+"/api/recordings", `{"room":"visit"}`, &started); code != 200 {
		t.Fatalf("start: %d", code)
	}
	publishH264(t, pub, frames, ogg, nil)
	// The video track ends with the participant's leaving; only then
	// does the file give up waiting for it.
	_ = pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(15*time.Second))
	defer cancel()
	e, err := host.Await(ctx, protocol.TypeError)
	var pe protocol.Error
	if err != nil || e.Decode(&pe) != nil || pe.Code != protocol.ErrRecordingIncomplete {
		t.Fatalf("the host was not told: %v %+v", err, pe)
	}
	var in recording.Info
	if !testenv.Within(15*time.Second, func() bool {
		var list []recording.Info
		get(t, st.api+"/api/recordings", &list)
		if len(list) != 1 || len(list[0].Files) != 1 {
			return false
		}
		in = list[0]
		return len(in.Missing) == 1 && len(in.Files[0].Tracks) == 1 && in.Files[0].Tracks[0].Duration > 2*time.Second
	}) {
		t.Fatalf("recording %+v", in)
	}
	if m := in.Missing[0]; m.Kind != "video" || !strings.EqualFold(m.Codec, webrtc.MimeTypeH264) || m.Reason == "" {
		t.Fatalf("missing %+v", m)
	}
	var stopped recording.Info
	post(t, st.api+"/api/recordings/"+started.ID+"/stop", ``, &stopped)
	p := ffprobe(t, stopped.Files[0].Path)
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "opus" {
		t.Fatalf("streams %+v", p.Streams)
	}
}
