package recording_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/recording"
)

func TestRTPTapFeedsFFmpeg(t *testing.T) {
	needTools(t)
	ivf, ogg := makeClip(t, 10)
	st := startStack(t, t.TempDir())
	pub := participant(t, st.url, "tap", "Patient", nil)
	stop := make(chan struct{})
	defer close(stop)
	go sendClip(t, publishClip(t, pub), ivf, ogg, stop)
	waitFor(t, "tracks", func() bool { return st.sfu.Stats().Tracks == 2 })

	for _, bad := range []string{`"host":"10.1.2.3","port":5004`, `"host":"8.8.8.8","port":5004`, `"host":"127.0.0.1","port":80`, `"host":"localhost","port":5004`} {
		if code := post(t, st.api+"/api/taps", fmt.Sprintf(`{"room":"tap","track":"%s:cam",%s}`, pub.ID(), bad), nil); code != http.StatusForbidden {
			t.Fatalf("tap to {%s} answered %d, want 403", bad, code)
		}
	}

	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := u.LocalAddr().(*net.UDPAddr).Port
	u.Close() // ffmpeg takes the port
	var f recording.Forward
	body := fmt.Sprintf(`{"room":"tap","track":"%s:cam","host":"127.0.0.1","port":%d}`, pub.ID(), port)
	if code := post(t, st.api+"/api/taps", body, &f); code != http.StatusOK {
		t.Fatalf("tap: %d", code)
	}
	out := filepath.Join(t.TempDir(), "tap.webm")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-protocol_whitelist", "file,udp,rtp",
		"-i", f.SDPPath, "-t", "3", "-c", "copy", "-y", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg on %s: %v\n%s\n%s", f.SDPPath, err, msg, f.SDP)
	}
	p := ffprobe(t, out)
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "vp8" || d < 2 {
		t.Fatalf("tap recording: %+v, %.2f s", p.Streams, d)
	}
	req, _ := http.NewRequest(http.MethodDelete, st.api+"/api/taps/"+f.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stop tap: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	if len(st.rec.Forwards()) != 0 {
		t.Fatal("tap still listed")
	}
}
