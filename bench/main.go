// Command bench loads a running consult server over its public protocol
// with many Go clients and reports what an operator needs to decide how
// many consults a machine carries: forwarding latency, loss, jitter,
// freezes, join times, and the server's CPU and memory.
//
//	go run ./bench -spawn -subscribers 100           build, start and load a server
//	go run ./bench -url ws://127.0.0.1:8080/ws -pid 1234 -subscribers 50
//	go run ./bench -spawn -sweep subscribers=10,25,50,100,200 -svg sweep.svg
//
// Publishers send VP8 (keyframes on a timer and on every PLI) and
// Opus-sized audio; every payload ends in a stamp (send time, counter),
// so subscribers measure one-way latency and loss exactly.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	base      RunConfig
	spawn     bool
	serverSrc string
	serverArg string
	jsonPath  string
	svgPath   string
	sweep     string
	plotFrom  string
	rule      KneeRule
	quiet     bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	c := &o.base
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:8080/ws", "the server's signaling WebSocket; a cluster's nodes, comma-separated, which clients dial in turn")
	fs.BoolVar(&o.spawn, "spawn", false, "build the server (go build in -server-src) and run it on loopback for each run; -url and -pid are then ignored")
	fs.StringVar(&o.serverSrc, "server-src", ".", "directory of the server's main package, for -spawn")
	fs.StringVar(&o.serverArg, "server-flags", "", "extra flags for the -spawn server, space-separated (e.g. \"-keyframe-interval 250ms\")")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id, for its CPU and memory from /proc")
	fs.IntVar(&c.Rooms, "rooms", 1, "rooms")
	fs.IntVar(&c.Publishers, "publishers", 1, "publishers per room")
	fs.IntVar(&c.Subscribers, "subscribers", 10, "subscribers per room")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measuring window, after the ramp")
	fs.DurationVar(&c.Ramp, "ramp", 5*time.Second, "time over which subscribers join")
	fs.IntVar(&c.Media.VideoKbps, "video-kbps", 1500, "each publisher's average video bitrate, kbit/s")
	fs.IntVar(&c.Media.FPS, "fps", 30, "video frame rate")
	fs.BoolVar(&c.Media.Audio, "audio", true, "publish Opus-sized audio (50 packets/s) as well")
	fs.Float64Var(&c.Media.Pacing, "pacing", 2.5, "publishers pace video at this multiple of its bitrate, as browsers do; 0 sends each frame as a burst")
	fs.DurationVar(&c.Media.KeyframeInterval, "keyframe-every", 3*time.Second, "publishers send a keyframe this often, and on every PLI/FIR")
	fs.Float64Var(&c.Churn, "churn", 0, "subscribers leaving and rejoining per second, during the window")
	fs.DurationVar(&c.ResumeEvery, "resume-every", 0, "this often a subscriber's signaling socket drops and it resumes the session (0: never)")
	fs.BoolVar(&c.NACK, "nack", false, "subscribers send NACKs (loss is then what retransmission did not repair)")
	fs.BoolVar(&c.TWCC, "twcc", false, "subscribers send transport-cc feedback, as browsers do (the server then estimates each downlink)")
	fs.BoolVar(&c.Media.Simulcast, "simulcast", false, "publishers send the camera as three layers, q/h/f at 10/40/100 % of -video-kbps, and the server picks one per subscriber (implies -twcc)")
	fs.IntVar(&c.SubscriberKbps, "subscriber-kbps", 0, "cap the downlink of a share of the subscribers (-capped-share) at this rate, through a shaping relay on loopback (implies -twcc); 0: none")
	fs.Float64Var(&c.CappedShare, "capped-share", 0.25, "the share of subscribers -subscriber-kbps caps")
	fs.DurationVar(&c.JoinTimeout, "join-timeout", 15*time.Second, "a subscriber without media by then counts as a failed join")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a non-loopback server and candidates (never on a shared machine)")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.sweep, "sweep", "", "run once per value, e.g. subscribers=10,25,50,100,200 (also rooms, publishers, video-kbps)")
	fs.StringVar(&o.svgPath, "svg", "bench-sweep.svg", "where a sweep draws server CPU and p99 against load")
	fs.StringVar(&o.plotFrom, "plot-from", "", "redraw -svg from a sweep's -json file, without running anything")
	fs.Float64Var(&o.rule.MaxLossPct, "knee-loss", 1, "a sweep's knee: the first load losing more than this percent")
	kneeP99 := fs.Duration("knee-p99", 50*time.Millisecond, "... or with a p99 latency above this")
	fs.BoolVar(&o.quiet, "q", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.rule.MaxP99ms = ms(*kneeP99)
	switch {
	case c.Rooms < 1 || c.Publishers < 1 || c.Subscribers < 0:
		return o, errors.New("need at least one room and one publisher per room")
	case c.Media.FPS < 1 || c.Media.FPS > 120:
		return o, errors.New("-fps must be 1..120")
	case c.Media.VideoKbps < 50:
		return o, errors.New("-video-kbps must be at least 50")
	case c.Media.Pacing < 0 || c.Media.Pacing > 0 && c.Media.Pacing < 1:
		return o, errors.New("-pacing must be 0 (off) or at least 1")
	case c.Duration <= 0 || c.Ramp < 0 || c.Churn < 0 || c.JoinTimeout <= 0 || c.ResumeEvery < 0:
		return o, errors.New("-duration and -join-timeout must be positive, -ramp and -churn not negative")
	case c.Media.KeyframeInterval <= 0:
		return o, errors.New("-keyframe-every must be positive")
	case c.SubscriberKbps < 0 || c.SubscriberKbps > 0 && c.SubscriberKbps < 30:
		return o, errors.New("-subscriber-kbps must be 0 (off) or at least 30")
	case c.CappedShare <= 0 || c.CappedShare > 1:
		return o, errors.New("-capped-share must be in (0, 1]")
	case c.SubscriberKbps > 0 && c.AllowRemote:
		return o, errors.New("-subscriber-kbps shapes on loopback: the server must run on this machine (no -allow-remote)")
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := mainErr(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.plotFrom != "" {
		return replot(o.plotFrom, o.svgPath)
	}
	var prog *progress
	if !o.quiet {
		prog = newProgress(stderr)
	}
	var build *serverBuild
	if o.spawn {
		fmt.Fprintf(stderr, "building the server in %s ...\n", o.serverSrc)
		if build, err = buildServer(ctx, o.serverSrc); err != nil {
			return err
		}
		defer build.remove()
	}
	runStep := func(cfg RunConfig) (*Result, error) {
		if build != nil {
			ch, err := build.start(cfg.capacityNeeded(), strings.Fields(o.serverArg))
			if err != nil {
				return nil, err
			}
			defer ch.stop()
			cfg.URL, cfg.PID = ch.URL, ch.PID
			fmt.Fprintf(stderr, "server pid %d at %s\n", ch.PID, ch.URL)
		}
		return runOnce(ctx, cfg, prog)
	}

	if o.sweep == "" {
		res, err := runStep(o.base)
		if err != nil {
			return err
		}
		printResult(stdout, res)
		if o.jsonPath != "" {
			return writeJSON(o.jsonPath, res)
		}
		return nil
	}

	sw, err := parseSweep(o.sweep)
	if err != nil {
		return err
	}
	var steps []Step
	var results []*Result
	for i, v := range sw.Values {
		cfg := sw.Apply(o.base, v)
		fmt.Fprintf(stderr, "\nsweep step %d of %d: %s=%d\n", i+1, len(sw.Values), sw.Key, v)
		res, err := runStep(cfg)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			fmt.Fprintf(stderr, "step failed: %v\n", err)
		} else {
			res.Label = fmt.Sprintf("%s=%d", sw.Key, v)
			printResult(stdout, res)
			results = append(results, res)
		}
		steps = append(steps, stepOf(v, res, err))
	}
	knee := findKnee(steps, o.rule)
	printSweep(stdout, sw, steps, results, knee, o.rule)

	out := sweepOutput{Sweep: o.sweep, Rule: o.rule, Knee: knee, Steps: steps, Results: results}
	if err := plot(out, o.svgPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "plot: %s\n", o.svgPath)
	if o.jsonPath != "" {
		return writeJSON(o.jsonPath, out)
	}
	return nil
}

// sweepOutput is a sweep as -json writes it.
type sweepOutput struct {
	Sweep   string    `json:"sweep"`
	Rule    KneeRule  `json:"knee_rule"`
	Knee    Knee      `json:"knee"`
	Steps   []Step    `json:"steps"`
	Results []*Result `json:"results"`
}

// plot draws a sweep to path.
func plot(out sweepOutput, path string) error {
	key, _, _ := strings.Cut(out.Sweep, "=")
	title := fmt.Sprintf("Server CPU and p99 forwarding latency vs %s", key)
	sub, machine := "", ""
	if len(out.Results) > 0 {
		sub = describeSweepBase(out.Results[0].Config, key)
		m := out.Results[0].Machine
		machine = fmt.Sprintf("%d × %s, %.0f GiB", m.CPUs, m.Model, float64(m.MemoryMB)/1024)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeSweepSVG(f, title, sub, machine, key+" (per room)", out.Steps, out.Knee, out.Rule); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replot redraws a saved sweep, e.g. after a change to the plot.
func replot(jsonPath, svgPath string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var out sweepOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("%s: %w", jsonPath, err)
	}
	return plot(out, svgPath)
}

// printSweep is the sweep's table and its knee.
func printSweep(w io.Writer, sw Sweep, steps []Step, results []*Result, knee Knee, rule KneeRule) {
	byLabel := map[string]*Result{}
	for _, r := range results {
		byLabel[r.Label] = r
	}
	fmt.Fprintf(w, "\nsweep of %s (knee: loss > %.2g %% or p99 > %.0f ms)\n", sw.Key, rule.MaxLossPct, rule.MaxP99ms)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tloss %%\tp50 ms\tp99 ms\tfwd pkt/s\tMbit/s\tserver CPU %%\tµs/pkt\tRSS MB\tharness CPU %%\tothers CPU %%\tsaturated\t\n", sw.Key)
	for _, s := range steps {
		r := byLabel[fmt.Sprintf("%s=%d", sw.Key, s.Value)]
		if r == nil {
			fmt.Fprintf(tw, "%d\tfailed: %s\t\t\t\t\t\t\t\t\t\t\t\n", s.Value, s.Failed)
			continue
		}
		cpu, per, rss := "-", "-", "-"
		if r.Server != nil {
			cpu, per, rss = fmt.Sprintf("%.1f", r.Server.CPUPct), fmt.Sprintf("%.2f", r.Server.CPUPerPacketUs),
				fmt.Sprintf("%.0f", r.Server.PeakRSSMB)
		}
		sat := "no"
		if r.Harness.Saturated {
			sat = "YES"
		}
		fmt.Fprintf(tw, "%d\t%.3f\t%.2f\t%.2f\t%.0f\t%.1f\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t\n", s.Value, r.LossPct,
			r.Latency.P50ms, r.Latency.P99ms, r.ForwardedPPS, r.ForwardedMbps, cpu, per, rss, r.Harness.CPUPct, r.OthersCPUPct, sat)
	}
	_ = tw.Flush()
	if knee.Found {
		fmt.Fprintf(w, "knee: %s=%d (%s); last good %d\n", sw.Key, knee.Value, knee.Reason, knee.LastGood)
	} else {
		fmt.Fprintln(w, "knee: none within the sweep")
	}
}
