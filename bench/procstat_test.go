package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCountsFieldsAfterTheCommand(t *testing.T) {
	// A command name with spaces and a parenthesis, as a process may set.
	stat := "4242 (consult (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 17 0 1234 567890 1234 18446744073709551615\n"
	cpu, threads, err := parseStat([]byte(stat))
	if err != nil || cpu != 3800*time.Millisecond || threads != 17 {
		t.Fatalf("cpu %v threads %d err %v", cpu, threads, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStatusAndMachineParsing(t *testing.T) {
	status := []byte("Name:\tconsult\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\nThreads:\t9\n")
	if statusKB(status, "VmRSS:") != 70000 || statusKB(status, "VmHWM:") != 81234 || statusKB(status, "VmSwap:") != 0 {
		t.Fatal("status fields")
	}
	a := parseMachine([]byte("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n"))
	b := parseMachine([]byte("cpu  200 0 200 800 200 0 0 0 0 0\n"))
	if a.total != 1000 || a.busy != 200 || busyPct(a, b) != 50 {
		t.Fatalf("%+v %+v %.1f", a, b, busyPct(a, b))
	}
	if busyPct(b, a) != 0 || parseMachine([]byte("intr 1 2")) != (machineSample{}) {
		t.Fatal("bad samples must read as nothing")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB == 0 || s.HWMKB < s.RSSKB || s.Threads < 1 {
		t.Fatalf("%+v", s)
	}
	if selfCPU() <= 0 {
		t.Fatal("no CPU time for this process")
	}
	if m := describeMachine(); m.CPUs < 1 || m.MemoryMB == 0 {
		t.Fatalf("%+v", m)
	}
}

func TestParseGoroutines(t *testing.T) {
	if n, ok := parseGoroutines([]byte("goroutine profile: total 1234\n5 @ 0x1 0x2\n")); !ok || n != 1234 {
		t.Fatalf("%d %v", n, ok)
	}
	if _, ok := parseGoroutines([]byte("<!doctype html>")); ok {
		t.Fatal("a web page read as a goroutine count")
	}
}

func TestParseUDPDrops(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors\nUdp: 2085041 31413 23025 2140694 23000 7 0\nUdpLite: InDatagrams\nUdpLite: 0\n"
	if d := parseUDPDrops([]byte(snmp)); d != (udpDrops{rcvbuf: 23000, sndbuf: 7}) {
		t.Fatalf("%+v", d)
	}
	if parseUDPDrops([]byte("Ip: 1\n")) != (udpDrops{}) {
		t.Fatal("no Udp line must read as nothing")
	}
}
