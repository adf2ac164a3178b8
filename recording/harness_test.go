package recording_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"consult/client"
	"consult/internal/testenv"
	"consult/internal/testlog"
	"consult/protocol"
	"consult/recording"
	"consult/sfu"
	"consult/signaling"
)

// consentTimeout is how long members have to answer a request to record
// in these tests: long enough for a loaded machine, short enough to test.
var consentTimeout = testenv.Scale(3 * time.Second)

type stack struct {
	url, api string
	rec      *recording.Manager
	sfu      *sfu.SFU
}

// startStack runs SFU, signaling and recorder wired as main wires them.
func startStack(t *testing.T, dir string) *stack {
	t.Helper()
	return startStackWith(t, dir, nil)
}

// startStackWith is startStack with join tokens signed with secret, and
// the recorder's configuration changed by tweaks.
func startStackWith(t *testing.T, dir string, secret []byte, tweaks ...func(*recording.Config)) *stack {
	t.Helper()
	log := testlog.New(t)
	s, err := sfu.New(sfu.Config{Logger: log, ICE: sfu.ICEConfig{IncludeLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	var sig *signaling.Server
	cfg := recording.Config{Dir: dir, Tapper: s, Logger: log,
		Notify:     func(room string, active bool, err error) { sig.SetRecording(room, active, err) },
		Incomplete: func(in recording.Info, err error) { sig.RecordingIncomplete(in.Room, err) }}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	rec, err := recording.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sig = signaling.New(signaling.Config{Logger: log, Media: signaling.SFUMedia(s), Observer: rec, Recorder: rec, Secret: secret,
		ConsentTimeout: consentTimeout})
	mux := http.NewServeMux()
	mux.Handle("/", sig.Handler())
	mux.Handle("/api/recordings", rec.Handler(sig.RoomAccess))
	mux.Handle("/api/recordings/", rec.Handler(sig.RoomAccess))
	mux.Handle("/api/taps", rec.Handler(sig.RoomAccess))
	mux.Handle("/api/taps/", rec.Handler(sig.RoomAccess))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		rec.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
		defer cancel()
		_ = sig.Shutdown(ctx)
		hs.Close()
		_ = s.Close()
	})
	return &stack{url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", api: hs.URL, rec: rec, sfu: s}
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install ffmpeg); .ci/run installs it", tool)
		}
	}
}

// makeClip encodes a synthetic VP8 video (keyframe every second) and an
// Opus tone with ffmpeg, as the media a client sends.
func makeClip(t *testing.T, secs int) (ivf, ogg string) {
	t.Helper()
	dir := t.TempDir()
	ivf, ogg = filepath.Join(dir, "clip.ivf"), filepath.Join(dir, "clip.ogg")
	d := strconv.Itoa(secs)
	run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", d,
		"-c:v", "libvpx", "-b:v", "300k", "-g", "30", "-deadline", "realtime", "-cpu-used", "8", ivf)
	run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", d,
		"-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-page_duration", "20000", ogg)
	return ivf, ogg
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// participant joins live and returns its client.
func participant(t *testing.T, url, room, name string, onTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)) *client.Client {
	t.Helper()
	c, _ := participantWith(t, url, protocol.Join{Room: room, Name: name, Live: true}, onTrack)
	return c
}

// participantWith joins as j says (a token, a role) and returns its client.
func participantWith(t *testing.T, url string, j protocol.Join, onTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)) (*client.Client, *protocol.Joined) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	se := &webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api, _ := client.DefaultAPI(se)
	c, err := client.Dial(ctx, client.Config{URL: url, API: api, OnTrack: onTrack})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	joined, err := c.Join(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	return c, joined
}

type clipTracks struct {
	audio, video *webrtc.TrackLocalStaticSample
}

// publishClip publishes an audio and a video track for sendClip.
func publishClip(t *testing.T, c *client.Client) clipTracks {
	t.Helper()
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "av")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "av")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	if _, err := c.Publish(ctx, audio, video); err != nil {
		t.Fatal(err)
	}
	return clipTracks{audio, video}
}

// sendClip sends the clip in real time until it ends or stop closes.
func sendClip(t *testing.T, tr clipTracks, ivf, ogg string, stop <-chan struct{}) {
	audio, video := tr.audio, tr.video
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if video == nil {
			return // sound only
		}
		f, _ := os.Open(ivf)
		defer f.Close()
		r, _, err := ivfreader.NewWith(f)
		if err != nil {
			t.Error(err)
			return
		}
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for {
			frame, _, err := r.ParseNextFrame()
			if err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		if audio == nil {
			return // picture only
		}
		f, _ := os.Open(ogg)
		defer f.Close()
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			t.Error(err)
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			page, _, err := r.ParseNextPage()
			if errors.Is(err, io.EOF) || err != nil {
				return
			}
			if len(page) > 8 && string(page[:8]) == "OpusHead" || len(page) > 8 && string(page[:8]) == "OpusTags" {
				continue
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = audio.WriteSample(media.Sample{Data: page, Duration: 20 * time.Millisecond})
		}
	}()
	<-done
	<-done
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		StartTime string `json:"start_time"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out := run(t, "ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path)
	var p probe
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

func post(t *testing.T, url, body string, v any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
