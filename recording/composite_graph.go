// The ffmpeg command line of a composite, written from its plan
// (composite_layout.go). Each shown video track gets one chain: put on the
// output's clock (setpts by its wall-clock offset), made constant-rate
// (WebRTC video is variable-rate, screen shares can sit at one frame a
// second), scaled per frame to its box of the moment, and overlaid on a
// black base with its position and visibility as functions of time, so a
// track is decoded and scaled once however often the layout changes.
// Every audio track is put on the same clock (gaps of DTX or a paused
// sender filled with silence, its join offset as a delay) and summed
// without normalisation, so voices keep their level when someone joins or
// leaves. Inputs are opened with -reinit_filter 0: a WebRTC track changes
// resolution mid-stream, and ffmpeg would otherwise rebuild the whole
// graph, restarting the base's clock.

package recording

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const compositeRate = 48000

// compositeArgs is ffmpeg's command line for a job, writing to
// job.Out+".part".
func compositeArgs(job compositeJob) ([]string, error) {
	p, err := planComposite(job)
	if err != nil {
		return nil, err
	}
	args := []string{"-nostdin", "-y", "-v", "error", "-nostats", "-progress", "pipe:1"}
	for _, path := range p.Paths {
		// file: keeps a path from being read as another protocol or an
		// option.
		args = append(args, "-reinit_filter", "0", "-i", "file:"+path)
	}
	secs := seconds(p.Length)
	args = append(args,
		"-filter_complex", compositeGraph(p),
		"-map", "[vout]", "-map", "[aout]",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
		"-r", strconv.Itoa(compositeFPS),
		"-c:a", "aac", "-b:a", "128k", "-ar", strconv.Itoa(compositeRate), "-ac", "2",
		"-t", secs, "-movflags", "+faststart", "-max_muxing_queue_size", "4096",
		"-f", "mp4", "file:"+job.Out+".part")
	return args, nil
}

// compositeGraph is the -filter_complex of a plan, one chain a line.
func compositeGraph(p compositePlan) string {
	var g []string
	secs := seconds(p.Length)
	g = append(g, fmt.Sprintf("color=c=black:s=%dx%d:r=%d:d=%s[base0]", p.Width, p.Height, compositeFPS, secs))
	for i, v := range p.Videos {
		g = append(g, fmt.Sprintf("[%d:v:%d]setpts=PTS-STARTPTS%+.3f/TB,fps=%d,"+
			"scale=w='%s':h='%s':eval=frame:force_original_aspect_ratio=decrease:force_divisible_by=2[v%d]",
			v.Input, v.Stream, v.Offset.Seconds(), compositeFPS,
			piecewise(v.Windows, func(r compositeRect) int { return r.W }),
			piecewise(v.Windows, func(r compositeRect) int { return r.H }), i))
		x := fmt.Sprintf("%s+trunc((%s-overlay_w)/4)*2",
			piecewise(v.Windows, func(r compositeRect) int { return r.X }),
			piecewise(v.Windows, func(r compositeRect) int { return r.W }))
		y := fmt.Sprintf("%s+trunc((%s-overlay_h)/4)*2",
			piecewise(v.Windows, func(r compositeRect) int { return r.Y }),
			piecewise(v.Windows, func(r compositeRect) int { return r.H }))
		var on []string
		for _, w := range v.Windows {
			on = append(on, fmt.Sprintf("gte(t,%s)*lt(t,%s)", seconds(w.From), seconds(w.To)))
		}
		g = append(g, fmt.Sprintf("[base%d][v%d]overlay=x='%s':y='%s':eval=frame:enable='%s'[base%d]",
			i, i, x, y, strings.Join(on, "+"), i+1))
	}
	g = append(g, fmt.Sprintf("[base%d]format=yuv420p[vout]", len(p.Videos)))
	silence := fmt.Sprintf("anullsrc=r=%d:cl=stereo:d=%s", compositeRate, secs)
	if len(p.Audios) == 0 {
		return strings.Join(append(g, silence+"[aout]"), ";\n")
	}
	// The silent base comes first: amix ends with it, at the job's length.
	g = append(g, silence+"[a0]")
	mix := "[a0]"
	for i, a := range p.Audios {
		chain := fmt.Sprintf("[%d:a:%d]asetpts=PTS-STARTPTS,aresample=%d:async=1,"+
			"aformat=sample_fmts=fltp:channel_layouts=stereo", a.Input, a.Stream, compositeRate)
		if a.Offset > 0 {
			chain += fmt.Sprintf(",adelay=delays=%dS:all=1", samples(a.Offset))
		} else if a.Offset < 0 {
			chain += fmt.Sprintf(",atrim=start_sample=%d,asetpts=PTS-STARTPTS", samples(-a.Offset))
		}
		g = append(g, fmt.Sprintf("%s[a%d]", chain, i+1))
		mix += fmt.Sprintf("[a%d]", i+1)
	}
	g = append(g, fmt.Sprintf("%samix=inputs=%d:duration=first:dropout_transition=0:normalize=0[aout]",
		mix, len(p.Audios)+1))
	return strings.Join(g, ";\n")
}

// piecewise is an ffmpeg expression of t that is f of the window t falls
// in: each window's value holds until the next window's value takes over
// at its end, so time between windows (not shown) takes the next value.
func piecewise(ws []compositeWindow, f func(compositeRect) int) string {
	// Merge neighbours with the same value: fewer terms to evaluate.
	type piece struct {
		to time.Duration
		v  int
	}
	var ps []piece
	for _, w := range ws {
		v := f(w.Rect)
		if n := len(ps); n > 0 && ps[n-1].v == v {
			ps[n-1].to = w.To
			continue
		}
		ps = append(ps, piece{w.To, v})
	}
	if len(ps) == 1 {
		return strconv.Itoa(ps[0].v)
	}
	terms := make([]string, len(ps))
	for i, pc := range ps {
		var conds []string
		if i > 0 {
			conds = append(conds, fmt.Sprintf("gte(t,%s)", seconds(ps[i-1].to)))
		}
		if i < len(ps)-1 {
			conds = append(conds, fmt.Sprintf("lt(t,%s)", seconds(pc.to)))
		}
		terms[i] = fmt.Sprintf("%d*%s", pc.v, strings.Join(conds, "*"))
	}
	return "(" + strings.Join(terms, "+") + ")"
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func samples(d time.Duration) int64 { return int64(math.Round(d.Seconds() * compositeRate)) }
