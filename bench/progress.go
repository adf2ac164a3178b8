package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// runStatus is what the progress line shows about a run.
type runStatus struct {
	mu      sync.Mutex
	phase   string
	start   time.Time
	planned time.Duration
	wanted  int
}

func (s *runStatus) set(phase string) {
	s.mu.Lock()
	s.phase = phase
	s.mu.Unlock()
}

func (s *runStatus) line(r *run, smp *sampler) string {
	s.mu.Lock()
	phase, elapsed := s.phase, time.Since(s.start)
	s.mu.Unlock()
	smp.mu.Lock()
	lr := smp.line
	smp.mu.Unlock()
	frac := 0.0
	if s.planned > 0 {
		frac = min(1, elapsed.Seconds()/s.planned.Seconds())
	}
	const width = 24
	done := int(frac * width)
	bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
	srv := "   -"
	if r.cfg.PID > 0 {
		srv = fmt.Sprintf("%3.0f%%", lr.serverCPU)
	}
	return fmt.Sprintf("[%s] %-10s %4.0fs/%.0fs  subs %d/%d  rx %6.0f pkt/s %6.1f Mbit/s  server CPU %s  harness CPU %3.0f%%",
		bar, phase, elapsed.Seconds(), s.planned.Seconds(), r.subsUp.Load(), s.wanted, lr.pps, lr.mbps, srv, lr.selfCPU)
}

// progress redraws one status line on a terminal (or prints one every
// 5 s to a file or pipe, so logs stay readable).
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu    sync.Mutex
	stopC chan struct{}
	done  chan struct{}
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, every: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.every = true, 500*time.Millisecond
		}
	}
	return p
}

// start shows line() until stop; a nil progress shows nothing.
func (p *progress) start(line func() string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopC, p.done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				if p.tty {
					fmt.Fprintf(p.w, "\r%s\n", line())
				}
				return
			case <-tick.C:
				if p.tty {
					fmt.Fprintf(p.w, "\r%s", line())
				} else {
					fmt.Fprintln(p.w, line())
				}
			}
		}
	}(p.stopC, p.done)
}

// stop ends the line; calling it again is harmless.
func (p *progress) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopC == nil {
		return
	}
	close(p.stopC)
	<-p.done
	p.stopC = nil
}
