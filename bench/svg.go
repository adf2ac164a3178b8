package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                       = 760, 440
	padLeft, padRight, padTop, padBott = 72, 72, 64, 84
)

const (
	cpuColour  = "#1f77b4"
	p99Colour  = "#d62728"
	kneeColour = "#555"
)

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for an axis top.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// writeSweepSVG draws server CPU (left axis) and p99 latency (right axis)
// against the swept value, the p99 limit, each step's loss, and the knee.
// Steps are spaced evenly: sweeps are usually near-geometric (10, 25, 50,
// 100, 200), which a linear axis would crowd at the left.
func writeSweepSVG(w io.Writer, title, subtitle, machine, xLabel string, steps []Step, knee Knee, rule KneeRule) error {
	var b strings.Builder
	iw, ih := float64(plotW-padLeft-padRight), float64(plotH-padTop-padBott)
	n := max(len(steps), 1)
	x := func(i int) float64 { return padLeft + (float64(i)+0.5)*iw/float64(n) }

	// Latency on a log axis from 1 ms: a healthy p99 of a few ms and a
	// collapsed one of seconds both stay readable, and so does the limit.
	cpuTop, latTop := 100.0, rule.MaxP99ms*2
	for _, s := range steps {
		if s.Failed == "" {
			cpuTop = max(cpuTop, s.ServerCPU*1.1)
			latTop = max(latTop, s.P99ms*1.2)
		}
	}
	cpuTop = niceCeil(cpuTop)
	latDecades := math.Max(1, math.Ceil(math.Log10(latTop)))
	yCPU := func(v float64) float64 { return padTop + ih*(1-v/cpuTop) }
	yLat := func(v float64) float64 {
		return padTop + ih*(1-math.Log10(max(v, 1))/latDecades)
	}

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, xmlEscaper.Replace(title))
	fmt.Fprintf(&b, `<text x="%d" y="40" fill="#444">%s</text>`+"\n", padLeft, xmlEscaper.Replace(subtitle))

	// Grid and the CPU axis: five divisions; the latency axis: decades.
	for i := 0; i <= 5; i++ {
		f := float64(i) / 5
		y := padTop + ih*(1-f)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", padLeft, y, padLeft+iw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="%s">%.0f</text>`+"\n", padLeft-6, y+4, cpuColour, f*cpuTop)
	}
	for d := 0.0; d <= latDecades; d++ {
		y := yLat(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", padLeft+iw, y, padLeft+iw+4, y, p99Colour)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%g</text>`+"\n", padLeft+iw+7, y+4, p99Colour, math.Pow(10, d))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", padLeft, padTop, iw, ih)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" fill="%s">server CPU, %% of one core</text>`+"\n",
		padTop+ih/2, cpuColour)
	fmt.Fprintf(&b, `<text transform="translate(%d %.1f) rotate(90)" text-anchor="middle" fill="%s">p99 forwarding latency, ms (log)</text>`+"\n",
		plotW-16, padTop+ih/2, p99Colour)

	// The latency limit.
	yl := yLat(rule.MaxP99ms)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4" opacity="0.6"/>`+"\n",
		padLeft, yl, padLeft+iw, yl, p99Colour)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="%s" font-size="11">p99 limit %.0f ms</text>`+"\n",
		padLeft+4, yl-4, p99Colour, rule.MaxP99ms)

	// X labels, with each step's loss under its value.
	for i, s := range steps {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(i), padTop+ih+18, s.Value)
		note := fmt.Sprintf("loss %.2f%%", s.LossPct)
		if s.Failed != "" {
			note = "failed"
		} else if s.Saturated {
			note += "*"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#666">%s</text>`+"\n", x(i), padTop+ih+32, note)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padLeft+iw/2, plotH-28, xmlEscaper.Replace(xLabel))

	series(&b, steps, x, func(s Step) (float64, bool) { return yCPU(s.ServerCPU), s.ServerCPU >= 0 }, cpuColour, false)
	series(&b, steps, x, func(s Step) (float64, bool) { return yLat(s.P99ms), true }, p99Colour, true)

	// The knee: a line between the last good step and the first bad one.
	kneeText := "no knee within the sweep"
	if knee.Found {
		kx := x(knee.Index) - iw/float64(n)/2
		if knee.Index == 0 {
			kx = x(0)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3 3"/>`+"\n",
			kx, padTop, kx, padTop+ih, kneeColour)
		kneeText = fmt.Sprintf("knee at %d: %s", knee.Value, knee.Reason)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", padLeft, plotH-10, kneeColour, xmlEscaper.Replace(kneeText))
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" font-size="10" fill="#666">%s</text>`+"\n",
		padLeft+iw, plotH-10, xmlEscaper.Replace(machine))

	// Legend, top left: load grows to the right, and so do the lines.
	lx := float64(padLeft) + 12
	fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="3" fill="%s"/><text x="%.1f" y="%d">server CPU</text>`+"\n",
		lx, padTop+10, cpuColour, lx+16, padTop+14)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="3" fill="%s"/><text x="%.1f" y="%d">p99 latency</text>`+"\n",
		lx+100, padTop+10, p99Colour, lx+116, padTop+14)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#666">* harness saturated</text>`+"\n", lx+100, padTop+30)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// series draws one line with markers (squares when square), skipping
// failed steps and values the point function rejects.
func series(b *strings.Builder, steps []Step, x func(int) float64, point func(Step) (float64, bool), colour string, square bool) {
	var pts []string
	for i, s := range steps {
		if s.Failed != "" {
			continue
		}
		y, ok := point(s)
		if !ok {
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y))
		if square {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="7" height="7" fill="%s"/>`+"\n", x(i)-3.5, y-3.5, colour)
		} else {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", x(i), y, colour)
		}
	}
	if len(pts) > 1 {
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colour)
	}
}
