package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of CPU times in /proc. It is 100
// on every architecture Go supports; reading it needs sysconf (cgo).
const clockTick = 100

// procSample is one look at a process in /proc: the server has no metrics
// endpoint, and /proc needs none.
type procSample struct {
	At      time.Time
	CPU     time.Duration // user + system since the process started
	RSSKB   uint64        // resident set now
	HWMKB   uint64        // peak resident set
	Threads int
}

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.CPU, s.Threads, err = parseStat(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.RSSKB = statusKB(status, "VmRSS:")
	s.HWMKB = statusKB(status, "VmHWM:")
	return s, nil
}

// parseStat reads utime, stime and num_threads from /proc/PID/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from its closing parenthesis.
func parseStat(b []byte) (cpu time.Duration, threads int, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bench: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
	if len(f) < 18 {
		return 0, 0, fmt.Errorf("bench: short /proc stat (%d fields)", len(f))
	}
	ut, e1 := strconv.ParseUint(f[11], 10, 64)
	st, e2 := strconv.ParseUint(f[12], 10, 64)
	th, e3 := strconv.Atoi(f[17])
	if e1 != nil || e2 != nil || e3 != nil {
		return 0, 0, fmt.Errorf("bench: malformed /proc stat fields")
	}
	return time.Duration(ut+st) * time.Second / clockTick, th, nil
}

// statusKB returns a "Key:   123 kB" line's number from /proc/PID/status.
func statusKB(b []byte, key string) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// selfCPU is the harness's own CPU time (user + system), all threads.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineSample is the whole machine's CPU accounting from /proc/stat, in
// ticks summed over all cores: on a shared machine it shows how much of
// the CPU neither the server nor the harness used.
type machineSample struct{ busy, total uint64 }

func readMachine() machineSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineSample{}
	}
	return parseMachine(b)
}

func parseMachine(b []byte) machineSample {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return machineSample{}
	}
	var m machineSample
	// user nice system idle iowait irq softirq steal (guest time is
	// already inside user).
	for i := 1; i <= 8; i++ {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		m.total += v
		if i != 4 && i != 5 {
			m.busy += v
		}
	}
	return m
}

// busyPct is the share of all cores' time that was busy between a and b.
func busyPct(a, b machineSample) float64 {
	if b.total <= a.total {
		return 0
	}
	return 100 * float64(b.busy-a.busy) / float64(b.total-a.total)
}

// Machine describes where a run happened, for the report.
type Machine struct {
	CPUs     int    `json:"cpus"`
	Model    string `json:"cpu_model"`
	MemoryMB uint64 `json:"memory_mb"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryMB = statusKB(b, "MemTotal:") / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// debugURL turns the signaling URL into one of the server's HTTP paths.
func debugURL(wsURL, path, query string) (string, bool) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", false
	}
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	u.Path, u.RawQuery = path, query
	return u.String(), true
}

func debugGet(wsURL, path, query string, limit int64) ([]byte, bool) {
	addr, ok := debugURL(wsURL, path, query)
	if !ok {
		return nil, false
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(addr)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	return b, err == nil
}

// serverMallocs reads the count of heap allocations from the server's
// /debug/vars (expvar), when it has one (the profiling server of
// docs/benchmarks.md does): over the window, divided by the packets
// forwarded, it is the real server's allocations per packet, pion's
// included, where BenchmarkFanout covers the SFU's own code.
func serverMallocs(wsURL string) (uint64, bool) {
	b, ok := debugGet(wsURL, "/debug/vars", "", 1<<20)
	if !ok {
		return 0, false
	}
	var v struct {
		Memstats *struct{ Mallocs uint64 } `json:"memstats"`
	}
	if json.Unmarshal(b, &v) != nil || v.Memstats == nil {
		return 0, false
	}
	return v.Memstats.Mallocs, true
}

// serverGoroutines reads the goroutine count from the server's
// /debug/pprof/goroutine, when it has one (the profiling server of
// docs/benchmarks.md does; the production binary does not): ok is false
// otherwise.
func serverGoroutines(wsURL string) (n int, ok bool) {
	b, ok := debugGet(wsURL, "/debug/pprof/goroutine", "debug=1", 256)
	if !ok {
		return 0, false
	}
	return parseGoroutines(b)
}

func parseGoroutines(b []byte) (int, bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	rest, ok := strings.CutPrefix(string(line), "goroutine profile: total ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	return n, err == nil
}

// udpDrops are the kernel's counts of UDP datagrams it dropped because a
// socket's buffer was full (/proc/net/snmp, the whole network namespace):
// when they grow during a run, a receiver (server or harness) did not
// read fast enough, and loss is not the forwarding path's doing alone.
type udpDrops struct{ rcvbuf, sndbuf uint64 }

func readUDPDrops() udpDrops {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return udpDrops{}
	}
	return parseUDPDrops(b)
}

func parseUDPDrops(b []byte) udpDrops {
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		var d udpDrops
		for i := 1; i < len(f) && i < len(names); i++ {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			switch names[i] {
			case "RcvbufErrors":
				d.rcvbuf = v
			case "SndbufErrors":
				d.sndbuf = v
			}
		}
		return d
	}
	return udpDrops{}
}
