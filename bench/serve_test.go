package main

import (
	"context"
	"expvar"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
)

var (
	serveFor  = flag.Duration("serve", 0, "run the server in this process for this long, with /debug/pprof (profiling; see docs/benchmarks.md)")
	serveInfo = flag.String("serve-info", "", "with -serve: write the server's WebSocket URL and PID to this file")
	serveRate = flag.Int("serve-memprofilerate", 0, "with -serve: runtime.MemProfileRate (1 records every allocation)")
)

// TestServeForProfiling is a tool, not a test: with -serve it runs the
// real server (wired as main.go wires it) in this test process with
// net/http/pprof and expvar on its HTTP port, so the harness can load it
// from another process, pprof sees the server alone, and the report gains
// the server's goroutines and heap allocations per forwarded packet:
//
//	go test ./bench -run TestServeForProfiling -serve 60s -serve-info /tmp/srv
//	go run ./bench -url $(head -1 /tmp/srv) -pid $(tail -1 /tmp/srv) ...
//	go tool pprof http://127.0.0.1:PORT/debug/pprof/profile?seconds=10
func TestServeForProfiling(t *testing.T) {
	if *serveFor <= 0 {
		t.Skip("profiling tool: pass -serve DURATION")
	}
	if *serveRate > 0 {
		runtime.MemProfileRate = *serveRate
	}
	url := startServerWith(t, zap.NewNop(), func(mux *http.ServeMux) {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.Handle("/debug/vars", expvar.Handler()) // memstats: allocations per packet
	})
	info := fmt.Sprintf("%s\n%d\n", url, os.Getpid())
	fmt.Print("serving ", info)
	if *serveInfo != "" {
		if err := os.WriteFile(*serveInfo, []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(*serveFor):
	}
}
