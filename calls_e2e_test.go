package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"consult/client"
	"consult/protocol"
)

// A test call through a server started by startMain: recv joins room
// first and counts the packets it reads, then pub joins and publishes
// VP8 video, sent until the test ends. remote is recv's track.
type testCall struct {
	recv, pub *client.Client
	packets   atomic.Int64
	remote    *webrtc.TrackRemote
}

func startCall(t *testing.T, ctx context.Context, url, room string) *testCall {
	t.Helper()
	tc := &testCall{}
	tracks := make(chan *webrtc.TrackRemote, 1)
	tc.recv = dialJoin(t, ctx, client.Config{URL: url, OnTrack: func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		tracks <- r
		for {
			if _, _, err := r.ReadRTP(); err != nil {
				return
			}
			tc.packets.Add(1)
		}
	}}, protocol.Join{Room: room, Name: "Pat", Live: true})
	tc.pub = dialJoin(t, ctx, client.Config{URL: url}, protocol.Join{Room: room, Name: "Dr", Live: true})
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "s")
	if _, err := tc.pub.Publish(ctx, video); err != nil {
		t.Fatal(err)
	}
	sendFrames(t, video)
	select {
	case tc.remote = <-tracks:
	case <-ctx.Done():
		t.Fatal("the receiver got no track")
	}
	return tc
}

// dialJoin connects a client (closed when the test ends) and joins.
func dialJoin(t *testing.T, ctx context.Context, cfg client.Config, j protocol.Join) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Join(ctx, j); err != nil {
		t.Fatal(err)
	}
	return c
}

// sendFrames publishes VP8 frames (a keyframe each second) until the
// test ends.
func sendFrames(t *testing.T, video *webrtc.TrackLocalStaticSample) {
	stop, sent := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-sent })
	go func() {
		defer close(sent)
		key := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}, make([]byte, 1200)...)
		delta := append([]byte{0x11, 0x02, 0x00}, make([]byte, 400)...)
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			frame := delta
			if i%30 == 0 {
				frame = key
			}
			_ = video.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond})
		}
	}()
}

func needFFprobe(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skipf("no ffprobe (Debian package ffmpeg; CI installs it): %v", err)
	}
}

func getJSON(t *testing.T, url string, v any) {
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

func postJSON(t *testing.T, url, body string, v any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}
