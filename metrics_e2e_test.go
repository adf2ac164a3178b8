package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"consult/internal/testenv"
	"consult/protocol"
)

// scrape reads /metrics with Prometheus's own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	return fams
}

// value is the sum of a family's samples whose labels include these
// (name, value, ...); a histogram's sample count.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// During a real call through the SFU, /metrics moves with the media: the
// forwarded packets and bytes grow, a subscriber's PLI counts and becomes
// a keyframe request to the publisher, the subscriber's receiver reports
// fill the link histograms, a malformed message counts as an error by
// code; the members show by role and state, and Go's and the process's
// own metrics are there. pprof stays off unless asked for.
func TestMetricsFollowARealCall(t *testing.T) {
	port := freePort(t)
	url := startMain(t, "-p2p=false", "-metrics-addr", "127.0.0.1:"+port)
	metricsURL := "http://127.0.0.1:" + port + "/metrics"
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()

	tc := startCall(t, ctx, url, "m")
	recv, remote := tc.recv, tc.remote

	poll := func(what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
		t.Helper()
		var fams map[string]*dto.MetricFamily
		testenv.Eventually(t, 20*time.Second, what, func() bool {
			fams = scrape(t, metricsURL)
			return cond(fams)
		})
		return fams
	}
	first := poll("packets to be forwarded", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "consult_rtp_forwarded_packets_total") > 0
	})
	poll("the receiver's wait for its first media to be observed", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "consult_first_media_seconds") >= 1
	})
	poll("the forwarded packets and bytes to grow", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "consult_rtp_forwarded_packets_total") > value(first, "consult_rtp_forwarded_packets_total")+30 &&
			value(f, "consult_rtp_forwarded_bytes_total") > value(first, "consult_rtp_forwarded_bytes_total")+30*400 &&
			value(f, "consult_rtp_received_packets_total") > value(first, "consult_rtp_received_packets_total")
	})
	for _, want := range []struct {
		name   string
		labels []string
		v      float64
	}{
		{"consult_members", []string{"state", "live"}, 2},
		{"consult_members", []string{"state", "waiting"}, 0},
		{"consult_rooms", []string{"mode", "sfu"}, 1},
		{"consult_sfu_tracks", nil, 1},
		{"consult_sfu_forwarded_tracks", nil, 1},
		{"consult_websockets", nil, 2},
	} {
		if got := value(first, want.name, want.labels...); got != want.v {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.v)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "consult_signaling_messages_total",
		"consult_p2p_attempts_total", "consult_path_switch_gap_seconds", "consult_turn_allocations", "consult_recordings_active"} {
		if value(first, name) < 0 {
			t.Errorf("no %s in the metrics", name)
		}
	}

	// A subscriber's PLI, and what it leads to.
	plis, kf := value(first, "consult_plis_received_total"), value(first, "consult_keyframe_requests_sent_total")
	if err := recv.SubscribePC().WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
		t.Fatal(err)
	}
	poll("the PLI to count, and a keyframe request to go to the publisher", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "consult_plis_received_total") > plis && value(f, "consult_keyframe_requests_sent_total") > kf
	})
	poll("the receiver's reports to reach the link histograms", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "consult_link_loss_ratio", "kind", "video") > 0 && value(f, "consult_link_jitter_seconds", "kind", "video") > 0 &&
			value(f, "consult_link_rtt_seconds", "kind", "video") > 0 // once a report answers the server's sender report
	})

	// A malformed message: an error for that client, counted by its code.
	bad := value(first, "consult_signaling_errors_total", "code", protocol.ErrBadRequest)
	if err := recv.SendRaw([]byte(`{"type":`)); err != nil {
		t.Fatal(err)
	}
	poll("the error to count", func(f map[string]*dto.MetricFamily) bool {
		return value(f, "consult_signaling_errors_total", "code", protocol.ErrBadRequest) > max(bad, 0)
	})

	// What the docs and the dashboard name is what the server serves.
	fams := scrape(t, metricsURL)
	for _, doc := range []string{"docs/metrics.md", "docs/grafana-dashboard.json"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`consult_[a-z0-9_]+`).FindAllString(string(b), -1) {
			name = strings.TrimSuffix(name, "_bucket")
			// A series per candidate pair comes with its first success
			// (no direct path here).
			if value(fams, name) < 0 && name != "consult_p2p_successes_total" {
				t.Errorf("%s names %s, which the server does not serve", doc, name)
			}
		}
	}

	resp, err := http.Get("http://127.0.0.1:" + port + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("pprof without -pprof: %s", resp.Status)
	}
}
