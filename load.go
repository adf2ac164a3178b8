package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadGuard returns admission's overload check: the 1-minute load average
// (Linux's /proc/loadavg) per CPU over limit. It reads the file at most
// once a second. Nil when limit is 0 (off), or where there is no
// /proc/loadavg.
func loadGuard(limit float64) func() bool {
	if limit <= 0 {
		return nil
	}
	if _, ok := loadPerCPU(); !ok {
		return nil
	}
	var (
		mu   sync.Mutex
		at   time.Time
		over bool
	)
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) >= time.Second {
			at = time.Now()
			l, ok := loadPerCPU()
			over = ok && l > limit
		}
		return over
	}
}

func loadPerCPU() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	return l / float64(runtime.NumCPU()), true
}
