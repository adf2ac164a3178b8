// Package metrics shows the server to Prometheus: GET /metrics on a
// listener of its own (-metrics-addr, meant for a private network), with
// pprof beside it when asked for. Almost everything is read when
// Prometheus scrapes, from the counters the SFU, signaling, TURN and
// recording keep anyway, so watching costs the forwarding path nothing;
// only the subscribers' link reports (about one a second per track) are
// observed as they come, into histograms. No label carries a room,
// participant or name: an operator learns how the server fares, not who
// talks to whom.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"consult/recording"
	"consult/sfu"
	"consult/signaling"
	"consult/turn"
	"consult/webhook"
)

// Sources are where the figures come from; a nil one is left out (TURN
// when the server runs none).
type Sources struct {
	SFU        func() sfu.Stats
	Census     func() signaling.Census
	Signaling  func() signaling.Counters
	TURN       func() turn.Stats
	Recordings func() []recording.Info
	Webhooks   func() webhook.Stats
}

// Metrics is the registry and what feeds it.
type Metrics struct {
	reg               *prometheus.Registry
	loss, jitter, rtt *prometheus.HistogramVec
	firstMedia        prometheus.Histogram
	gapBounds         []float64 // signaling.SwitchGapBounds in seconds

	srcMu sync.Mutex
	src   Sources

	mu    sync.Mutex
	high  map[string]float64 // each counter's highest value reported
	descs map[string]*prometheus.Desc
}

// New builds the registry: the server's metrics, Go's runtime and the
// process's. Set the sources with SetSources once they exist.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), high: map[string]float64{}, descs: map[string]*prometheus.Desc{}}
	for _, b := range signaling.SwitchGapBounds {
		m.gapBounds = append(m.gapBounds, b/1000)
	}
	m.loss = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consult_link_loss_ratio",
		Help:    "Fraction of packets lost per receiver report interval, as subscribers report it, by track kind.",
		Buckets: []float64{0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5}}, []string{"kind"})
	m.jitter = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consult_link_jitter_seconds",
		Help:    "Interarrival jitter subscribers report, by track kind.",
		Buckets: []float64{0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2}}, []string{"kind"})
	m.rtt = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consult_link_rtt_seconds",
		Help:    "Round trip between the server and subscribers, from receiver reports, by track kind.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8}}, []string{"kind"})
	for _, kind := range []string{"audio", "video"} { // served from zero
		m.loss.WithLabelValues(kind)
		m.jitter.WithLabelValues(kind)
		m.rtt.WithLabelValues(kind)
	}
	m.firstMedia = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "consult_first_media_seconds",
		Help:    "From joining the SFU to the first packet forwarded to the participant.",
		Buckets: []float64{0.25, 0.5, 1, 2, 4, 8, 16}})
	m.reg.MustRegister(m.loss, m.jitter, m.rtt, m.firstMedia, (*collector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetSources tells the metrics where to read from.
func (m *Metrics) SetSources(src Sources) {
	m.srcMu.Lock()
	m.src = src
	m.srcMu.Unlock()
}

// ObserveLink takes a subscriber's receiver report (sfu.Config.OnLinkReport).
func (m *Metrics) ObserveLink(kind string, l sfu.Link) {
	if kind != "audio" && kind != "video" {
		kind = "other"
	}
	m.loss.WithLabelValues(kind).Observe(l.Loss)
	m.jitter.WithLabelValues(kind).Observe(l.JitterMS / 1000)
	if l.RTTMS > 0 {
		m.rtt.WithLabelValues(kind).Observe(l.RTTMS / 1000)
	}
}

// ObserveFirstMedia takes a participant's wait for media
// (sfu.Config.OnFirstMedia).
func (m *Metrics) ObserveFirstMedia(wait time.Duration) { m.firstMedia.Observe(wait.Seconds()) }

// Registry is for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics and, with pprof, Go's profiles under
// /debug/pprof/.
func (m *Metrics) Handler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// collector reads the sources at each scrape.
type collector Metrics

// Describe sends nothing: the metrics are read fresh at each scrape (an
// unchecked collector), their set fixed by the code below.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	m.srcMu.Lock()
	src := m.src
	m.srcMu.Unlock()
	e := emitter{m: m, ch: ch}
	if src.SFU != nil {
		e.sfu(src.SFU())
	}
	if src.Census != nil {
		e.census(src.Census())
	}
	if src.Signaling != nil {
		e.signaling(src.Signaling())
	}
	if src.TURN != nil {
		e.turn(src.TURN())
	}
	if src.Recordings != nil {
		e.recordings(src.Recordings())
	}
	if src.Webhooks != nil {
		st := src.Webhooks()
		for result, n := range map[string]uint64{"delivered": st.Delivered, "retried": st.Retried, "failed": st.Failed, "dropped": st.Dropped} {
			e.counter("consult_webhooks_total", "Webhook deliveries by result (retried: an attempt that failed and was tried again).", float64(n), "result", result)
		}
	}
}

// emitter writes one scrape's metrics.
type emitter struct {
	m  *Metrics
	ch chan<- prometheus.Metric
}

func (m *Metrics) desc(name, help string, labels ...string) *prometheus.Desc {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.descs[name]
	if d == nil {
		d = prometheus.NewDesc(name, help, labels, nil)
		m.descs[name] = d
	}
	return d
}

func (e emitter) gauge(name, help string, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(e.m.desc(name, help, labelNames(labels)...), prometheus.GaugeValue, v, labelValues(labels)...)
}

// counter reports v, or the highest value reported before if v is lower:
// the SFU's totals can miss a track for a moment while it ends, and a
// counter that went back would read as a restart.
func (e emitter) counter(name, help string, v float64, labels ...string) {
	key := name
	for _, l := range labels {
		key += "\x00" + l
	}
	e.m.mu.Lock()
	if h := e.m.high[key]; v < h {
		v = h
	}
	e.m.high[key] = v
	e.m.mu.Unlock()
	e.ch <- prometheus.MustNewConstMetric(e.m.desc(name, help, labelNames(labels)...), prometheus.CounterValue, v, labelValues(labels)...)
}

// Labels are passed as name, value, name, value...
func labelNames(kv []string) []string {
	var out []string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, kv[i])
	}
	return out
}

func labelValues(kv []string) []string {
	var out []string
	for i := 1; i < len(kv); i += 2 {
		out = append(out, kv[i])
	}
	return out
}

func (e emitter) sfu(st sfu.Stats) {
	e.gauge("consult_sfu_rooms", "Rooms with members on the SFU.", float64(st.Rooms))
	e.gauge("consult_sfu_participants", "Participants connected to the SFU.", float64(st.Participants))
	e.gauge("consult_sfu_tracks", "Tracks published to the SFU.", float64(st.Tracks))
	e.gauge("consult_sfu_forwarded_tracks", "Tracks forwarded: one per subscriber (or recording tap) of each published track.", float64(st.DownTracks))
	e.counter("consult_rtp_received_packets_total", "RTP packets received from publishers.", float64(st.PacketsIn))
	e.counter("consult_rtp_received_bytes_total", "RTP bytes received from publishers.", float64(st.BytesIn))
	e.counter("consult_rtp_forwarded_packets_total", "RTP packets sent to subscribers (retransmissions included).", float64(st.PacketsOut))
	e.counter("consult_rtp_forwarded_bytes_total", "RTP bytes sent to subscribers.", float64(st.BytesOut))
	e.counter("consult_rtp_dropped_packets_total", "Packets not forwarded to a subscriber that could not keep up.", float64(st.Dropped))
	e.counter("consult_retransmissions_total", "Packets sent again to subscribers that asked (NACK).", float64(st.Retransmits))
	e.counter("consult_nacks_sent_total", "NACK packets sent to publishers.", float64(st.NACKsSent))
	e.counter("consult_nacked_packets_total", "Packets asked for again in NACKs to publishers (retries included).", float64(st.NACKedPackets))
	e.counter("consult_lost_unrepaired_packets_total", "Packets lost from publishers and given up on.", float64(st.LostUnrepaired))
	e.counter("consult_plis_received_total", "Picture loss indications (PLI, FIR) from subscribers.", float64(st.PLIsIn))
	e.counter("consult_keyframe_requests_sent_total", "Keyframe requests (PLI) sent to publishers.", float64(st.KeyframeRequests))
}

func (e emitter) census(c signaling.Census) {
	e.gauge("consult_websockets", "Open signaling connections.", float64(c.Sockets))
	modes := map[string]int{"p2p": 0, "sfu": 0, "none": 0}
	for mode, n := range c.Rooms {
		if mode == "" {
			mode = "none"
		}
		if _, ok := modes[mode]; !ok {
			mode = "other"
		}
		modes[mode] += n
	}
	for mode, n := range modes {
		e.gauge("consult_rooms", "Rooms by their call's media path: p2p (direct), sfu, none (no call: fewer than two live).", float64(n), "mode", mode)
	}
	for k, n := range c.Members {
		role := k.Role
		if role != "host" && role != "guest" {
			role = "other"
		}
		e.gauge("consult_members", "Room members by role and state (live, waiting, reconnecting).", float64(n), "role", role, "state", k.State)
	}
}

func (e emitter) signaling(c signaling.Counters) {
	e.counter("consult_signaling_messages_total", "Signaling messages read from clients.", float64(c.MessagesIn))
	for code, n := range c.Errors {
		e.counter("consult_signaling_errors_total", "Error messages sent to clients, by code.", float64(n), "code", code)
	}
	p := c.P2P
	e.counter("consult_p2p_attempts_total", "Direct (peer-to-peer) connection attempts.", float64(p.Attempts))
	for pair, n := range p.Successes {
		e.counter("consult_p2p_successes_total", "Direct connections made, by candidate types (local/remote).", float64(n), "candidates", pair)
	}
	// Every reason, from zero: a rate needs the series before its first
	// fallback.
	reasons := map[string]int{"deadline": 0, "failed": 0, "relayed": 0, "lost": 0}
	for reason, n := range p.FallbackReasons {
		reasons[reason] += n
	}
	for reason, n := range reasons {
		e.counter("consult_p2p_fallbacks_total", "Direct attempts or calls that fell back to the SFU, by reason.", float64(n), "reason", reason)
	}
	e.counter("consult_handover_timeouts_total", "Path changes whose old path was retired by the timeout.", float64(p.HandoverTimeouts))
	buckets := map[float64]uint64{}
	var cum, count uint64
	for i, b := range e.m.gapBounds {
		cum += c.SwitchGaps[i]
		buckets[b] = cum
	}
	for _, n := range c.SwitchGaps {
		count += n
	}
	e.ch <- prometheus.MustNewConstHistogram(e.m.desc("consult_path_switch_gap_seconds",
		"Gaps in the picture when a call changed path (direct, SFU), as clients measure them."),
		count, c.SwitchGapSumMS/1000, buckets)
}

func (e emitter) turn(st turn.Stats) {
	e.gauge("consult_turn_allocations", "TURN relay allocations open.", float64(st.Allocations))
	e.counter("consult_turn_allocations_total", "TURN relay allocations made.", float64(st.AllocationsTotal))
	e.counter("consult_turn_relayed_bytes_total", "Bytes relayed by ended TURN allocations, by direction.", float64(st.BytesToPeers), "direction", "to_peer")
	e.counter("consult_turn_relayed_bytes_total", "Bytes relayed by ended TURN allocations, by direction.", float64(st.BytesToClients), "direction", "to_client")
	for reason, n := range map[string]uint64{"quota": st.QuotaRejected, "peer": st.PeersRefused, "auth": st.AuthRejected, "bad_request": st.BadRequests} {
		e.counter("consult_turn_refused_total", "TURN requests refused, by reason.", float64(n), "reason", reason)
	}
}

func (e emitter) recordings(list []recording.Info) {
	states := map[string]int{recording.StateRecording: 0, recording.StateStopped: 0, recording.StateFailed: 0}
	var files int
	for _, r := range list {
		states[r.State]++
		files += len(r.Files)
	}
	e.gauge("consult_recordings_active", "Recordings running.", float64(states[recording.StateRecording]))
	e.counter("consult_recordings_failed_total", "Recordings stopped by an error.", float64(states[recording.StateFailed]))
	e.counter("consult_recordings_total", "Recordings started.", float64(len(list)))
	e.counter("consult_recording_files_total", "Recording files opened.", float64(files))
}
