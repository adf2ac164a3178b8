package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// Result is one run as reported (and written by -json).
type Result struct {
	Label     string    `json:"label,omitempty"`
	Config    RunConfig `json:"config"`
	DurationS float64   `json:"duration_s"`
	RampS     float64   `json:"ramp_s"`
	Machine   Machine   `json:"machine"`
	WindowS   float64   `json:"window_s"` // the measuring window

	SubscribersWanted int      `json:"subscribers_wanted"`
	SubscribersUp     int64    `json:"subscribers_receiving"`
	JoinFailures      int      `json:"join_failures"`
	JoinErrors        []string `json:"join_errors,omitempty"`
	Churned           int      `json:"churned"`

	JoinMedia      Summary `json:"join_to_first_media"`    // socket open → first media packet
	JoinKeyframe   Summary `json:"join_to_first_keyframe"` // socket open → first video (a keyframe start)
	RejoinMedia    Summary `json:"rejoin_to_first_media"`
	RejoinKeyframe Summary `json:"rejoin_to_first_keyframe"`
	// Resumes (-resume-every): socket dropped → session resumed, and
	// resumed → the subscriber's next media packet.
	ResumeTime   Summary `json:"drop_to_resumed"`
	ResumeMedia  Summary `json:"resumed_to_media"`
	ResumeFailed int     `json:"resumes_failed"`
	// ConnectedKeyframe is the part of the wait for a keyframe after the
	// subscribing connection is up: the server's keyframe request, its
	// throttle, and the publisher's answer.
	ConnectedKeyframe     Summary `json:"connected_to_first_keyframe"`
	FirstVideoNotKeyframe int     `json:"first_video_not_keyframe"`

	// Nodes is, for a cluster (nodes.go), each node's rooms and clients
	// and its load.
	Nodes []NodeResult `json:"nodes,omitempty"`

	Latency     Summary    `json:"latency"` // publisher's send → subscriber's read, every packet
	LatencyMean float64    `json:"latency_mean_ms"`
	Loss        LossResult `json:"loss"`
	LossPct     float64    `json:"loss_pct"`
	JitterMs    float64    `json:"jitter_mean_ms"` // RFC 3550 jitter, mean over tracks
	JitterMaxMs float64    `json:"jitter_max_ms"`
	Freezes     int        `json:"freezes"` // gaps > 200 ms between complete video frames
	// PublisherStalls are gaps > 200 ms between the frames a publisher
	// sent (the harness starved of CPU): each shows as a freeze at every
	// subscriber, through no fault of the server.
	PublisherStalls     int     `json:"publisher_stalls"`
	PublisherStallMaxMs float64 `json:"publisher_stall_longest_ms"`
	// Classes splits subscribers into capped and uncapped, with the
	// layers their video came on (simulcast.go), when the run has
	// -simulcast or -subscriber-kbps.
	Classes     []ClassResult `json:"classes,omitempty"`
	FreezeMs    float64       `json:"freeze_total_ms"`
	FreezeMaxMs float64       `json:"freeze_longest_ms"`
	Foreign     uint64        `json:"unstamped_packets"`
	Tracks      int           `json:"tracks_received"`

	PublishedPPS     float64 `json:"published_pkts_per_s"`
	ForwardedPPS     float64 `json:"forwarded_pkts_per_s"` // as received by the clients
	ForwardedMbps    float64 `json:"forwarded_mbit_per_s"`
	KeyframesSent    uint64  `json:"keyframes_sent"`
	KeyframeRequests uint64  `json:"keyframe_requests"` // PLI/FIR the publishers received
	SendErrors       uint64  `json:"send_errors"`

	Server  *ServerStats `json:"server,omitempty"`
	Harness HarnessStats `json:"harness"`
	// MachineBusyPct is the whole machine's busy share of all cores over
	// the window: server, harness and anything else running.
	MachineBusyPct float64 `json:"machine_busy_pct"`
	// OthersCPUPct is what the rest of the machine used (percent of one
	// core): on a shared machine, the noise under the figures.
	OthersCPUPct float64 `json:"others_cpu_pct"`
	// UDPRcvbufDrops and UDPSndbufDrops are datagrams the kernel dropped
	// in the window because a socket buffer was full (any process).
	UDPRcvbufDrops    uint64   `json:"udp_rcvbuf_drops"`
	UDPSndbufDrops    uint64   `json:"udp_sndbuf_drops"`
	KeyframeIntervalS float64  `json:"keyframe_interval_s"`
	Warnings          []string `json:"warnings,omitempty"`
}

// ServerStats is the server process over the measuring window.
type ServerStats struct {
	PID int `json:"pid"`
	// CPUPct is percent of one core (200 % is two cores busy).
	CPUPct float64 `json:"cpu_pct"`
	// CPUPerPacketUs is server CPU time over packets the clients received
	// from it: the figure that carries from one machine to another.
	CPUPerPacketUs float64 `json:"cpu_us_per_forwarded_packet"`
	RSSMB          float64 `json:"rss_mb"`
	PeakRSSMB      float64 `json:"peak_rss_mb"` // highest sampled during the run
	Threads        int     `json:"threads"`
	Goroutines     int     `json:"goroutines,omitempty"` // when the server serves /debug/pprof
	// AllocsPerPacket is heap allocations over forwarded packets, when the
	// server serves /debug/vars; nil otherwise.
	AllocsPerPacket *float64 `json:"allocs_per_forwarded_packet,omitempty"`
}

// HarnessStats says whether the harness, not the server, set the limits.
type HarnessStats struct {
	CPUPct       float64  `json:"cpu_pct"` // percent of one core
	Cores        int      `json:"cores"`
	SchedLag     Summary  `json:"sched_lag"`     // a 10 ms ticker's wake-up delay
	PublisherLag Summary  `json:"publisher_lag"` // send loops' wake-up delay
	Saturated    bool     `json:"saturated"`
	Reasons      []string `json:"reasons,omitempty"`
	Refused      uint64   `json:"refused_non_loopback_datagrams"`
}

// Saturation thresholds: beyond these the measured latency includes the
// harness (or the machine) waiting for a core, not only the server.
const (
	harnessCPUShare = 0.85                   // of all cores
	machineBusyMax  = 90.0                   // percent of all cores
	lagMax          = 5 * time.Millisecond   // p99 wake-up delay
	stallMax        = 100 * time.Millisecond // longest wake-up delay
)

func (r *run) result(begin, end snapshot, stopAt time.Time, last map[*publisher][2]uint32, smp *sampler) *Result {
	cfg := r.cfg
	window := end.at.Sub(begin.at).Seconds()
	res := &Result{Config: cfg, DurationS: cfg.Duration.Seconds(), RampS: cfg.Ramp.Seconds(),
		Machine: describeMachine(), WindowS: window, SubscribersWanted: cfg.Rooms * cfg.Subscribers}

	r.mu.Lock()
	res.SubscribersUp = r.subsUp.Load()
	res.JoinFailures, res.JoinErrors, res.Churned = r.joinFailed, r.joinErrs, r.churned
	res.JoinMedia, res.JoinKeyframe = r.joinMedia.Summary(), r.joinVideo.Summary()
	res.RejoinMedia, res.RejoinKeyframe = r.rejoinMedia.Summary(), r.rejoinVideo.Summary()
	res.ResumeTime, res.ResumeMedia, res.ResumeFailed = r.resumeTime.Summary(), r.resumeMedia.Summary(), r.resumeFailed
	res.FirstVideoNotKeyframe = r.notKeyFirst
	res.ConnectedKeyframe = r.connectKey.Summary()
	tracks := append([]*trackStats(nil), r.tracks...)
	pubs := append([]*publisher(nil), r.pubs...)
	byID := r.pubByID
	r.mu.Unlock()

	var lat Histogram
	var packets, bytes uint64
	var jitSum time.Duration
	var jitN int
	cls := newClasses(cfg, window)
	for _, t := range tracks {
		pubID, _, _ := cutTrackID(t.id)
		leftAt := t.rcv.leftTime()
		t.rcv.mu.Lock()
		pauses := t.rcv.pauses
		t.rcv.mu.Unlock()
		t.mu.Lock()
		if t.packets == 0 && t.foreign == 0 {
			t.mu.Unlock()
			continue // nothing arrived inside the window
		}
		res.Tracks++
		var endCounter uint32 // unknown: the highest received
		if p := byID[pubID]; p != nil && leftAt.IsZero() {
			k := kindAudio
			if t.video {
				k = kindVideo
			}
			endCounter = last[p][k]
		}
		loss := t.lossResult(endCounter)
		res.Loss.Add(loss)
		lat.Merge(&t.lat)
		packets += t.packets
		bytes += t.bytes
		res.Foreign += t.foreign
		if t.lat.Count() > 1 {
			j := t.jit.Value()
			jitSum += j
			jitN++
			res.JitterMaxMs = max(res.JitterMaxMs, ms(j))
		}
		if t.video {
			stop := stopAt
			if !leftAt.IsZero() {
				stop = leftAt
			}
			t.freeze.Finish(stop)
			res.Freezes += t.freeze.Count
			res.FreezeMs += ms(t.freeze.Total)
			res.FreezeMaxMs = max(res.FreezeMaxMs, ms(t.freeze.Longest))
		}
		cls.add(t, loss, pauses)
		t.mu.Unlock()
	}
	res.Classes = cls.results()
	res.Latency, res.LatencyMean = lat.Summary(), ms(lat.Mean())
	res.LossPct = res.Loss.Percent()
	if jitN > 0 {
		res.JitterMs = ms(jitSum / time.Duration(jitN))
	}
	if window > 0 {
		res.ForwardedPPS = float64(packets) / window
		res.ForwardedMbps = float64(bytes) * 8 / window / 1e6
		res.PublishedPPS = float64(end.published-begin.published) / window
	}
	var pubLag Histogram
	for _, p := range pubs {
		res.KeyframesSent += p.keys.Load()
		res.KeyframeRequests += p.plis.Load()
		res.SendErrors += p.errs.Load()
		p.lagMu.Lock()
		pubLag.Merge(&p.lag)
		p.stalls.Finish(end.at)
		res.PublisherStalls += p.stalls.Count
		res.PublisherStallMaxMs = max(res.PublisherStallMaxMs, ms(p.stalls.Longest))
		p.lagMu.Unlock()
	}

	if begin.serverOK && end.serverOK && window > 0 {
		cpu := end.server.CPU - begin.server.CPU
		s := &ServerStats{PID: cfg.PID, CPUPct: 100 * cpu.Seconds() / window,
			RSSMB: float64(end.server.RSSKB) / 1024, Threads: end.server.Threads}
		smp.mu.Lock()
		s.PeakRSSMB = float64(max(smp.peakRSS, end.server.RSSKB)) / 1024
		smp.mu.Unlock()
		s.Goroutines = end.goroutines
		if packets > 0 {
			s.CPUPerPacketUs = float64(cpu.Microseconds()) / float64(packets)
			if begin.mallocsOK && end.mallocsOK {
				a := float64(end.mallocs-begin.mallocs) / float64(packets)
				s.AllocsPerPacket = &a
			}
		}
		res.Server = s
	}
	res.MachineBusyPct = busyPct(begin.machine, end.machine)
	res.UDPRcvbufDrops = end.udp.rcvbuf - begin.udp.rcvbuf
	res.UDPSndbufDrops = end.udp.sndbuf - begin.udp.sndbuf
	res.KeyframeIntervalS = cfg.Media.KeyframeInterval.Seconds()
	h := &res.Harness
	h.Cores = runtime.NumCPU()
	if window > 0 {
		h.CPUPct = 100 * (end.self - begin.self).Seconds() / window
	}
	smp.mu.Lock()
	h.SchedLag = smp.schedLag.Summary()
	smp.mu.Unlock()
	h.PublisherLag = pubLag.Summary()
	h.Refused = r.apis.refused.Load()
	res.OthersCPUPct = res.MachineBusyPct*float64(h.Cores) - h.CPUPct
	if res.Server != nil && res.Server.PID != os.Getpid() {
		res.OthersCPUPct -= res.Server.CPUPct
	}
	res.OthersCPUPct = max(0, res.OthersCPUPct)
	h.Reasons = saturation(h, res.MachineBusyPct)
	h.Saturated = len(h.Reasons) > 0
	if h.Refused > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d datagrams to non-loopback addresses were refused: the server advertises other addresses too (start it with -public-ip 127.0.0.1, or use -spawn)", h.Refused))
	}
	if res.JoinFailures > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d joins failed (first: %s)", res.JoinFailures, firstOr(res.JoinErrors, "?")))
	}
	if d := res.UDPRcvbufDrops + res.UDPSndbufDrops; d > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the kernel dropped %d UDP datagrams (socket buffers full: %d receive, %d send) during the window: a reader did not keep up",
			d, res.UDPRcvbufDrops, res.UDPSndbufDrops))
	}
	if res.FirstVideoNotKeyframe > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d subscribers' first video packet did not start a keyframe", res.FirstVideoNotKeyframe))
	}
	return res
}

// saturation explains why the harness's figures may describe the harness
// or the machine rather than the server.
func saturation(h *HarnessStats, machineBusy float64) []string {
	var why []string
	if h.CPUPct >= harnessCPUShare*100*float64(h.Cores) {
		why = append(why, fmt.Sprintf("the harness used %.0f%% CPU of %d cores", h.CPUPct, h.Cores))
	}
	if machineBusy >= machineBusyMax {
		why = append(why, fmt.Sprintf("the machine was %.0f%% busy: server and harness waited for cores", machineBusy))
	}
	if p := h.SchedLag.P99ms; p > ms(lagMax) {
		why = append(why, fmt.Sprintf("harness goroutines woke %.1f ms late (p99): its receive loops lag", p))
	}
	if m := max(h.SchedLag.MaxMs, h.PublisherLag.MaxMs); m > ms(stallMax) {
		why = append(why, fmt.Sprintf("the harness stalled for up to %.0f ms at once", m))
	}
	if p := h.PublisherLag.P99ms; p > ms(lagMax) {
		why = append(why, fmt.Sprintf("publishers' send loops woke %.1f ms late (p99)", p))
	}
	return why
}

// cutTrackID splits a received track id "<publisher id>:<track id>".
func cutTrackID(id string) (participant, track string, ok bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return "", id, false
}
