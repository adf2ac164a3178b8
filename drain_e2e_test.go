package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
)

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

// A SIGTERM during a recorded call: /healthz says draining, a consult in
// a new room is refused with server-draining, the running one can still
// be joined and its media goes on; when the drain timeout ends it, the
// clients are told goodbye and the recording is a finished file.
func TestDrainLetsRunningConsultsFinish(t *testing.T) {
	needFFprobe(t)
	drainFor := testenv.Scale(6 * time.Second)
	srv := startMainCtl(t, "-p2p=false", "-drain-timeout", drainFor.String())
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()

	var packets atomic.Int64
	recv, err := client.Dial(ctx, client.Config{URL: srv.url, OnTrack: func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := r.ReadRTP(); err != nil {
				return
			}
			packets.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	if _, err := recv.Join(ctx, protocol.Join{Room: "visit", Name: "Pat", Live: true}); err != nil {
		t.Fatal(err)
	}
	pub, err := client.Dial(ctx, client.Config{URL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if _, err := pub.Join(ctx, protocol.Join{Room: "visit", Name: "Dr", Live: true}); err != nil {
		t.Fatal(err)
	}
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "s")
	if _, err := pub.Publish(ctx, video); err != nil {
		t.Fatal(err)
	}
	sendFrames(t, video)
	testenv.Eventually(t, 20*time.Second, "media to flow", func() bool { return packets.Load() > 20 })

	resp, err := http.Post(srv.base+"/api/recordings", "application/json", strings.NewReader(`{"room":"visit"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start recording: %s", resp.Status)
	}
	testenv.Eventually(t, 20*time.Second, "a second of recording", func() bool {
		var list []recording.Info
		getJSON(t, srv.base+"/api/recordings", &list)
		return len(list) == 1 && list[0].Duration >= time.Second
	})

	srv.drain() // the first SIGTERM
	testenv.Eventually(t, 5*time.Second, "/healthz to say draining", func() bool {
		resp, err := http.Get(srv.base + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.TrimSpace(string(b)) == "draining"
	})
	refusedAt := packets.Load()
	late, err := client.Dial(ctx, client.Config{URL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = late.Close() })
	var se *client.ServerError
	if _, err := late.Join(ctx, protocol.Join{Room: "new-consult", Name: "X", Live: true}); !errors.As(err, &se) || se.Code != protocol.ErrServerDraining {
		t.Fatalf("a join to a new room while draining: %v, want server-draining", err)
	}
	if _, err := late.Join(ctx, protocol.Join{Room: "visit", Name: "Interpreter", Live: false}); err != nil {
		t.Fatalf("joining the running consult while draining: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the running call's media to go on", func() bool { return packets.Load() > refusedAt+20 })

	// The drain timeout ends the consult.
	for _, c := range []*client.Client{recv, pub} {
		e, err := c.Await(ctx, protocol.TypeGoodbye)
		var bye protocol.Goodbye
		if err != nil || e.Decode(&bye) != nil || bye.Code != protocol.GoodbyeShutdown {
			t.Fatalf("no goodbye after the drain: %v %+v", err, bye)
		}
	}
	select {
	case <-srv.ended:
	case <-ctx.Done():
		t.Fatal("the server did not stop after its drain timeout")
	}
	files, _ := filepath.Glob(filepath.Join(srv.recDir, "visit_*.webm"))
	if len(files) != 1 {
		t.Fatalf("recording files %v, want one", files)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", files[0]).Output()
	secs, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || secs < 1 {
		t.Fatalf("the recording after the drain: %v, %q", err, out)
	}
	t.Logf("recording finished at %.1f s", secs)
}

// The first SIGTERM starts a drain, the second ends it.
func TestSignalsDrainThenStop(t *testing.T) {
	drain, now, stop := watchSignals()
	defer stop()
	for i, ctx := range []context.Context{drain, now} {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-testenv.After(5 * time.Second):
			t.Fatalf("signal %d did not end its context", i+1)
		}
	}
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

// A drain an admin asks for (POST /api/drain) ends as soon as the last
// consult does, well before its timeout.
func TestDrainEndsWithTheLastConsult(t *testing.T) {
	srv := startMainCtl(t, "-p2p=false", "-drain-timeout", "10m")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Join(ctx, protocol.Join{Room: "visit", Name: "Dr", Live: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.base+"/api/drain", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/drain: %s", resp.Status)
	}
	testenv.Eventually(t, 5*time.Second, "/healthz to say draining", func() bool {
		resp, err := http.Get(srv.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	select {
	case <-srv.ended:
		t.Fatal("the server stopped with a consult running")
	default:
	}
	if err := c.Leave(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.ended:
	case <-ctx.Done():
		t.Fatal("the drain did not end with the last consult")
	}
}
