package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"consult/internal/testenv"
	"consult/sfu"
	"consult/signaling"
)

// startServer runs the real SFU and signaling in this process, wired as
// main.go wires them, on loopback only: HTTP on httptest's 127.0.0.1 and
// all media on one UDP socket bound to 127.0.0.1. It returns the
// WebSocket URL.
func startServer(t testing.TB, log *zap.Logger) string {
	t.Helper()
	return startServerWith(t, log, nil)
}

// startServerWith is startServer with extra HTTP handlers.
func startServerWith(t testing.TB, log *zap.Logger, extra func(*http.ServeMux)) string {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	media, err := sfu.New(sfu.Config{Logger: log.Named("sfu"), ICE: sfu.ICEConfig{IncludeLoopback: true, UDPMux: udp}})
	if err != nil {
		t.Fatal(err)
	}
	// Rooms as large as any load the harness is asked for (-room-capacity).
	sig := signaling.New(signaling.Config{Logger: log.Named("signaling"), Media: signaling.SFUMedia(media), Capacity: 1000})
	mux := http.NewServeMux()
	mux.Handle("/ws", sig.Handler())
	mux.Handle("/healthz", sig.Handler())
	if extra != nil {
		extra(mux)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
		defer cancel()
		_ = sig.Shutdown(ctx)
		hs.Close()
		_ = media.Close()
		_ = udp.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// One publisher and three subscribers for two seconds, one of them
// leaving and rejoining: everything sent arrives, and every figure the
// report needs was measured.
func TestHarnessMeasuresARealServer(t *testing.T) {
	url := startServer(t, zap.NewNop())
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()
	res, err := runOnce(ctx, RunConfig{
		URL: url, Rooms: 1, Publishers: 1, Subscribers: 3,
		Duration: 2 * time.Second, Churn: 1, JoinTimeout: 20 * time.Second,
		Media: MediaConfig{VideoKbps: 600, FPS: 30, Audio: true, KeyframeInterval: time.Second, Pacing: 2.5},
		PID:   os.Getpid(), // the server runs in this process
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	printResult(&report, res)
	t.Log(report.String())

	if res.SubscribersWanted != 3 || res.JoinFailures != 0 || res.FirstVideoNotKeyframe != 0 {
		t.Errorf("joins: %d wanted, %d failed, %d started without a keyframe", res.SubscribersWanted, res.JoinFailures, res.FirstVideoNotKeyframe)
	}
	if res.JoinMedia.N != 3 || res.JoinKeyframe.N != 3 || res.ConnectedKeyframe.N < 3 {
		t.Errorf("join times measured for %d/%d/%d subscribers", res.JoinMedia.N, res.JoinKeyframe.N, res.ConnectedKeyframe.N)
	}
	if res.Churned < 1 || res.RejoinMedia.N != uint64(res.Churned) {
		t.Errorf("churn: %d left, %d rejoin times", res.Churned, res.RejoinMedia.N)
	}
	if res.Loss.Expected == 0 || res.Loss.Lost != 0 || res.Loss.Duplicates != 0 || res.Foreign != 0 {
		t.Errorf("loss accounting: %+v, %d unstamped", res.Loss, res.Foreign)
	}
	if res.Latency.N == 0 || res.Latency.N != res.Loss.Received || res.Latency.P50ms <= 0 || res.Latency.MaxMs < res.Latency.P99ms {
		t.Errorf("latency: %+v for %d packets", res.Latency, res.Loss.Received)
	}
	if res.Tracks < 6 || res.ForwardedPPS <= res.PublishedPPS || res.KeyframesSent == 0 {
		t.Errorf("%d tracks, %.0f pkt/s forwarded of %.0f published, %d keyframes", res.Tracks, res.ForwardedPPS, res.PublishedPPS, res.KeyframesSent)
	}
	if res.Server == nil || res.Server.CPUPct <= 0 || res.Server.RSSMB <= 0 || res.Server.CPUPerPacketUs <= 0 {
		t.Errorf("server figures from /proc: %+v", res.Server)
	}
	if res.Harness.Refused != 0 {
		t.Errorf("%d datagrams aimed beyond loopback", res.Harness.Refused)
	}
}

func TestHarnessRefusesANonLoopbackServer(t *testing.T) {
	_, err := runOnce(context.Background(), RunConfig{URL: "ws://192.0.2.1:8080/ws", Rooms: 1, Publishers: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("got %v", err)
	}
}

func TestOptionsDefaultsAndValidation(t *testing.T) {
	o, err := parseOptions(nil, testWriter{t})
	if err != nil || o.base.Subscribers != 10 || o.base.Media.VideoKbps != 1500 || !o.base.Media.Audio || o.rule.MaxP99ms != 50 || o.rule.MaxLossPct != 1 {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range [][]string{{"-rooms", "0"}, {"-fps", "0"}, {"-duration", "0s"}, {"-churn", "-1"}, {"stray"},
		{"-subscriber-kbps", "10"}, {"-capped-share", "0"}, {"-subscriber-kbps", "300", "-allow-remote"}} {
		if _, err := parseOptions(bad, testWriter{t}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Subscribers whose sockets drop resume their sessions, and their media
// never stops: every resume is measured and nothing is lost.
func TestHarnessMeasuresResumes(t *testing.T) {
	url := startServer(t, zap.NewNop())
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()
	res, err := runOnce(ctx, RunConfig{
		URL: url, Rooms: 1, Publishers: 1, Subscribers: 3,
		Duration: 2 * time.Second, ResumeEvery: 300 * time.Millisecond, JoinTimeout: 20 * time.Second,
		Media: MediaConfig{VideoKbps: 600, FPS: 30, Audio: true, KeyframeInterval: time.Second, Pacing: 2.5},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	printResult(&report, res)
	t.Log(report.String())
	if res.ResumeTime.N < 2 || res.ResumeFailed != 0 || res.ResumeMedia.N != res.ResumeTime.N {
		t.Errorf("resumes: %d measured, %d failed, %d with media after", res.ResumeTime.N, res.ResumeFailed, res.ResumeMedia.N)
	}
	if res.Loss.Expected == 0 || res.Loss.Lost != 0 || res.JoinFailures != 0 {
		t.Errorf("media across the resumes: %+v, %d joins failed", res.Loss, res.JoinFailures)
	}
}
