package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"consult/internal/testenv"
)

// Publishers send three layers and half the subscribers receive through
// a relay that caps their downlink at 350 kbit/s: the report tells the
// classes apart, the capped ones get the low layer and keep their audio,
// and the others are never sent it.
func TestCappedSubscribersAreReportedApart(t *testing.T) {
	url := startServer(t, zap.NewNop())
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(90*time.Second))
	defer cancel()
	res, err := runOnce(ctx, RunConfig{
		URL: url, Rooms: 1, Publishers: 1, Subscribers: 4, SubscriberKbps: 350, CappedShare: 0.5,
		Duration: 10 * time.Second, Ramp: time.Second, JoinTimeout: 20 * time.Second,
		Media: MediaConfig{VideoKbps: 1500, FPS: 30, Audio: true, KeyframeInterval: 3 * time.Second, Pacing: 2.5, Simulcast: true},
		PID:   os.Getpid(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	printResult(&report, res)
	t.Log(report.String())
	if res.JoinFailures != 0 || len(res.Classes) != 2 {
		t.Fatalf("%d joins failed; classes %+v", res.JoinFailures, res.Classes)
	}
	un, capped := res.Classes[0], res.Classes[1]
	if un.Class != "uncapped" || capped.Class != "capped" || un.Subscribers != 2 || capped.Subscribers != 2 || capped.DownKbps != 350 {
		t.Fatalf("classes %+v", res.Classes)
	}
	// 350 kbit/s carries q (150) and the audio, never f (1.5 Mbit/s);
	// the server finds that within a few seconds of the join, so most of
	// the window is on q, and the picture keeps coming.
	if capped.LayerShare[0] < 0.6 || capped.LayerShare[2] > 0 || capped.FPS < 10 {
		t.Errorf("capped: layers q/h/f %.2f/%.2f/%.2f at %.1f fps", capped.LayerShare[0], capped.LayerShare[1], capped.LayerShare[2], capped.FPS)
	}
	// The others climb from h to f and see no loss on loopback.
	if un.LayerShare[1]+un.LayerShare[2] < 0.8 || un.LayerShare[2] < 0.3 || un.FPS < 25 || un.AudioLossPct > 1 || un.Pauses > 0 {
		t.Errorf("uncapped: layers q/h/f %.2f/%.2f/%.2f at %.1f fps, audio loss %.2f %%, %d pauses",
			un.LayerShare[0], un.LayerShare[1], un.LayerShare[2], un.FPS, un.AudioLossPct, un.Pauses)
	}
	if capped.AudioLoss.Expected == 0 || capped.VideoLoss.Expected == 0 || un.VideoLoss.Expected == 0 {
		t.Errorf("loss not measured: capped %+v / %+v, uncapped %+v", capped.AudioLoss, capped.VideoLoss, un.VideoLoss)
	}
	if res.Harness.Refused != 0 {
		t.Errorf("%d datagrams aimed beyond loopback", res.Harness.Refused)
	}
}
