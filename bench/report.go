package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// describeLoad is a one-line description of a configuration.
func describeLoad(c RunConfig) string {
	audio := ""
	if c.Media.Audio {
		audio = " + Opus"
	}
	s := fmt.Sprintf("%d room(s) × (%d publisher(s) + %d subscribers), VP8 %d kbit/s %d fps%s",
		c.Rooms, c.Publishers, c.Subscribers, c.Media.VideoKbps, c.Media.FPS, audio)
	if c.Media.Pacing > 0 {
		s += fmt.Sprintf(", paced at %.2g×", c.Media.Pacing)
	} else {
		s += ", unpaced"
	}
	if c.ResumeEvery > 0 {
		s += fmt.Sprintf(", a resume every %v", c.ResumeEvery)
	}
	if c.Churn > 0 {
		s += fmt.Sprintf(", churn %.2g/s", c.Churn)
	}
	if c.NACK {
		s += ", subscribers NACK"
	}
	if c.Media.Simulcast {
		s += ", simulcast q/h/f"
	}
	if c.SubscriberKbps > 0 {
		s += fmt.Sprintf(", %.0f %% of subscribers capped at %d kbit/s down", 100*c.CappedShare, c.SubscriberKbps)
	}
	return s
}

// describeSweepBase describes what a sweep holds fixed (all but key).
func describeSweepBase(c RunConfig, key string) string {
	var parts []string
	if key != "rooms" {
		parts = append(parts, fmt.Sprintf("%d room(s)", c.Rooms))
	}
	if key != "publishers" {
		parts = append(parts, fmt.Sprintf("%d publisher(s) per room", c.Publishers))
	}
	if key != "subscribers" {
		parts = append(parts, fmt.Sprintf("%d subscribers per room", c.Subscribers))
	}
	media := fmt.Sprintf("VP8 %d fps", c.Media.FPS)
	if key != "video-kbps" {
		media = fmt.Sprintf("VP8 %d kbit/s %d fps", c.Media.VideoKbps, c.Media.FPS)
	}
	if c.Media.Audio {
		media += " + Opus"
	}
	if c.Media.Pacing > 0 {
		media += fmt.Sprintf(", paced at %.2g×", c.Media.Pacing)
	}
	return strings.Join(append(parts, media), ", ")
}

func describeMachineLine(m Machine) string {
	return fmt.Sprintf("%d × %s, %.1f GiB, Linux %s, %s", m.CPUs, m.Model, float64(m.MemoryMB)/1024, m.Kernel, m.Go)
}

// printResult writes the human report of one run.
func printResult(w io.Writer, res *Result) {
	fmt.Fprintf(w, "\n%s: %.0f s measured after a %.0f s ramp\n", describeLoad(res.Config), res.WindowS, res.RampS)
	fmt.Fprintf(w, "machine: %s\n\n", describeMachineLine(res.Machine))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "(ms)\tp50\tp95\tp99\tmax\tn\t")
	row := func(name string, s Summary) {
		if s.N == 0 {
			return
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", name, s.P50ms, s.P95ms, s.P99ms, s.MaxMs, s.N)
	}
	row("forwarding latency", res.Latency)
	row("join → first media", res.JoinMedia)
	row("join → first keyframe", res.JoinKeyframe)
	row("  connected → keyframe", res.ConnectedKeyframe)
	row("rejoin → first media", res.RejoinMedia)
	row("rejoin → first keyframe", res.RejoinKeyframe)
	row("socket drop → resumed", res.ResumeTime)
	row("resumed → next media", res.ResumeMedia)
	_ = tw.Flush()
	fmt.Fprintln(w)

	kv := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, a ...any) { fmt.Fprintf(kv, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	line("subscribers receiving", "%d of %d (%d joins failed, %d left and rejoined)",
		res.SubscribersUp, res.SubscribersWanted, res.JoinFailures, res.Churned)
	line("loss", "%.3f %% (%d of %d packets; %d duplicates, %d reordered, %d late)",
		res.LossPct, res.Loss.Lost, res.Loss.Expected, res.Loss.Duplicates, res.Loss.Reordered, res.Loss.Late)
	line("jitter", "%.2f ms mean over %d tracks, %.2f ms worst", res.JitterMs, res.Tracks, res.JitterMaxMs)
	line("video freezes (>200 ms)", "%d (%.0f ms in all, longest %.0f ms); publishers stalled %d times (longest %.0f ms)",
		res.Freezes, res.FreezeMs, res.FreezeMaxMs, res.PublisherStalls, res.PublisherStallMaxMs)
	line("published", "%.0f pkt/s", res.PublishedPPS)
	line("forwarded", "%.0f pkt/s, %.1f Mbit/s", res.ForwardedPPS, res.ForwardedMbps)
	line("keyframes", "%d sent, %d requests (PLI/FIR) received", res.KeyframesSent, res.KeyframeRequests)
	if s := res.Server; s != nil {
		g := "goroutines unknown"
		if s.Goroutines > 0 {
			g = fmt.Sprintf("%d goroutines", s.Goroutines)
		}
		if s.AllocsPerPacket != nil {
			g += fmt.Sprintf(", %.3f heap allocations per forwarded packet", *s.AllocsPerPacket)
		}
		line(fmt.Sprintf("server (pid %d)", s.PID), "CPU %.1f %% of a core, %.2f µs per forwarded packet, RSS %.0f MB (peak %.0f MB), %d threads, %s",
			s.CPUPct, s.CPUPerPacketUs, s.RSSMB, s.PeakRSSMB, s.Threads, g)
	} else {
		line("server", "CPU and memory unknown (pass -pid, or -spawn)")
	}
	h := res.Harness
	line("harness", "CPU %.1f %% of a core (%d cores), wake-up lag p99 %.2f ms, publishers' lag p99 %.2f ms",
		h.CPUPct, h.Cores, h.SchedLag.P99ms, h.PublisherLag.P99ms)
	line("kernel UDP drops", "%d (receive buffers full), %d (send buffers full)", res.UDPRcvbufDrops, res.UDPSndbufDrops)
	line("machine", "%.0f %% busy over all cores; other processes used %.0f %% of a core", res.MachineBusyPct, res.OthersCPUPct)
	for _, n := range res.Nodes {
		load := "load unknown (GET /api/nodes refused)"
		if n.Load != nil {
			load = fmt.Sprintf("reports %d rooms, %d participants, %.2f load per CPU, %.1f Mbit/s forwarded",
				n.Load.Rooms, n.Load.Participants, n.Load.CPU, float64(n.Load.ForwardedBitrate)/1e6)
		}
		line("node "+n.ID, "%s: %d rooms, %d clients; %s", n.URL, n.Rooms, n.Clients, load)
	}
	_ = kv.Flush()
	printClasses(w, res.Classes)
	if h.Saturated {
		fmt.Fprintf(w, "\nHARNESS SATURATED: %s.\nThe figures above may describe the harness or the machine, not the server.\n",
			strings.Join(h.Reasons, "; "))
	} else {
		fmt.Fprintln(w, "\nharness not saturated: the figures describe the server.")
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// writeJSON writes v to path, indented.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
