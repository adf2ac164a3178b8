package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// snapshot is the CPU accounting at one edge of the measuring window.
type snapshot struct {
	at         time.Time
	server     procSample
	serverOK   bool
	self       time.Duration
	machine    machineSample
	published  uint64
	goroutines int    // the server's, when it tells (0: unknown)
	mallocs    uint64 // the server's heap allocations so far, when it tells
	mallocsOK  bool
	udp        udpDrops
}

func (r *run) snapshot() snapshot {
	s := snapshot{at: time.Now(), self: selfCPU(), machine: readMachine(), udp: readUDPDrops()}
	if r.cfg.PID > 0 {
		var err error
		s.server, err = readProc(r.cfg.PID)
		s.serverOK = err == nil
	}
	r.mu.Lock()
	for _, p := range r.pubs {
		s.published += p.sent()
	}
	r.mu.Unlock()
	return s
}

// sampler watches the server's memory (for its peak within the run) and
// the CPU rates shown on the progress line.
type sampler struct {
	mu       sync.Mutex
	last     snapshot
	lastRx   uint64
	lastByte uint64
	line     liveRates
	peakRSS  uint64
	schedLag Histogram // see probeLag
}

type liveRates struct {
	serverCPU, selfCPU, pps, mbps float64
}

func (s *sampler) loop(ctx context.Context, r *run, stop <-chan struct{}) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.probeLag(ctx, r, stop) }()
	defer wg.Wait()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := r.snapshot()
		rx, bytes := r.rxPackets.Load(), r.rxBytes.Load()
		s.mu.Lock()
		if !s.last.at.IsZero() {
			dt := now.at.Sub(s.last.at).Seconds()
			s.line.selfCPU = 100 * (now.self - s.last.self).Seconds() / dt
			if now.serverOK && s.last.serverOK {
				s.line.serverCPU = 100 * (now.server.CPU - s.last.server.CPU).Seconds() / dt
			}
			s.line.pps = float64(rx-s.lastRx) / dt
			s.line.mbps = float64(bytes-s.lastByte) * 8 / dt / 1e6
		}
		s.peakRSS = max(s.peakRSS, now.server.RSSKB)
		s.last, s.lastRx, s.lastByte = now, rx, bytes
		s.mu.Unlock()
	}
}

// probeLag records how late a 10 ms ticker's goroutine runs: when the
// harness's goroutines wait for a core, so do its receive loops, and the
// latency they measure grows by that wait.
func (s *sampler) probeLag(ctx context.Context, r *run, stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case t := <-tick.C:
			lag := time.Since(t)
			if r.measuring.Load() {
				s.mu.Lock()
				s.schedLag.Record(lag)
				s.mu.Unlock()
			}
		}
	}
}

// runOnce drives one load against the server and measures it.
//
// Publishers join first and must be announced by the server; subscribers
// then join spread over the ramp, each waiting for its first media. The
// measuring window opens once all have joined (or timed out) and lasts
// the configured duration, with churn inside it. Then publishers stop, the
// packets in flight drain, and every client leaves.
func runOnce(ctx context.Context, cfg RunConfig, prog *progress) (*Result, error) {
	if !cfg.AllowRemote {
		for _, u := range entryURLs(cfg.URL) {
			if err := checkLoopbackURL(u); err != nil {
				return nil, err
			}
		}
	}
	r := newRun(cfg)
	if len(r.entries) == 0 {
		return nil, fmt.Errorf("-url: no URL")
	}
	first := r.entries[0] // the process -pid names, for its allocation counts
	if cfg.SubscriberKbps > 0 {
		s, err := startShaper(cfg.SubscriberKbps)
		if err != nil {
			return nil, fmt.Errorf("the shaping relay for -subscriber-kbps: %w", err)
		}
		defer func() { _ = s.Close() }()
		r.shaper = s
	}
	smp := &sampler{}
	stopSampler := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	go func() { defer samplerDone.Done(); smp.loop(ctx, r, stopSampler) }()
	st := &runStatus{start: time.Now(), planned: cfg.Ramp + cfg.Duration, wanted: cfg.Rooms * cfg.Subscribers}
	st.set("publishers")
	prog.start(func() string { return st.line(r, smp) })
	finish := func(err error) (*Result, error) {
		prog.stop()
		close(stopSampler)
		samplerDone.Wait()
		if cerr := r.closeAll(); err == nil && cerr != nil {
			err = cerr
		}
		return nil, err
	}

	n := 0
	for _, room := range r.rooms {
		for range cfg.Publishers {
			n++
			if _, err := newPublisher(ctx, r, room, n); err != nil {
				return finish(fmt.Errorf("publisher %d: %w", n, err))
			}
		}
	}

	st.set("ramp")
	if err := r.ramp(ctx); err != nil {
		return finish(err)
	}

	st.set("measure")
	begin := r.snapshot()
	begin.mallocs, begin.mallocsOK = serverMallocs(first)
	r.measuring.Store(true)
	stopChurn := make(chan struct{})
	churnDone := make(chan struct{})
	resumesDone := make(chan struct{})
	go func() { defer close(churnDone); r.churn(ctx, stopChurn) }()
	go func() { defer close(resumesDone); r.resumes(ctx, stopChurn) }()
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	// Churn's joins in flight finish inside the window, so its CPU and
	// its packets stay counted together.
	close(stopChurn)
	<-churnDone
	<-resumesDone
	end := r.snapshot()
	end.mallocs, end.mallocsOK = serverMallocs(first)
	end.goroutines, _ = serverGoroutines(first)
	nodes := r.nodeResults(ctx)

	st.set("drain")
	stopAt := time.Now()
	last := map[*publisher][2]uint32{}
	r.mu.Lock()
	pubs := append([]*publisher(nil), r.pubs...)
	r.mu.Unlock()
	for _, p := range pubs {
		last[p] = p.halt()
	}
	r.drain(ctx)
	r.measuring.Store(false)
	prog.stop()
	close(stopSampler)
	samplerDone.Wait()
	closeErr := r.closeAll()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := r.result(begin, end, stopAt, last, smp)
	res.Nodes = nodes
	if closeErr != nil {
		res.Warnings = append(res.Warnings, closeErr.Error())
	}
	return res, nil
}

// ramp starts the subscribers spread evenly over cfg.Ramp, a bounded
// number joining at once, and returns when every join has finished.
func (r *run) ramp(ctx context.Context) error {
	total := r.cfg.Rooms * r.cfg.Subscribers
	start := time.Now()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range total {
		at := start.Add(time.Duration(int64(r.cfg.Ramp) * int64(i) / int64(max(total, 1))))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.addSubscriber(ctx, r.rooms[i%len(r.rooms)], roleSubscriber, r.pickCapped(i))
		}()
	}
	wg.Wait()
	if total > 0 && r.subsUp.Load() == 0 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return errors.New("no subscriber received media: " + firstOr(r.joinErrs, "unknown reason"))
	}
	return nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// drain waits until packets stop arriving (those in flight when the
// publishers stopped), at most 2 s.
func (r *run) drain(ctx context.Context) {
	deadline := time.Now().Add(2 * time.Second)
	last, quiet := r.rxPackets.Load(), 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) && quiet < 4 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := r.rxPackets.Load(); n == last {
			quiet++
		} else {
			last, quiet = n, 0
		}
	}
}
