package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
)

// A SIGTERM during a recorded call: /healthz says draining, a consult in
// a new room is refused with server-draining, the running one can still
// be joined and its media goes on; when the drain timeout ends it, the
// clients are told goodbye and the recording is a finished file.
func TestDrainLetsRunningConsultsFinish(t *testing.T) {
	needFFprobe(t)
	drainFor := testenv.Scale(6 * time.Second)
	srv := startMainCtl(t, "-p2p=false", "-drain-timeout", drainFor.String())
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()

	tc := startCall(t, ctx, srv.url, "visit")
	recv, pub, packets := tc.recv, tc.pub, &tc.packets
	testenv.Eventually(t, 20*time.Second, "media to flow", func() bool { return packets.Load() > 20 })

	resp, err := http.Post(srv.base+"/api/recordings", "application/json", strings.NewReader(`{"room":"visit"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start recording: %s", resp.Status)
	}
	testenv.Eventually(t, 20*time.Second, "a second of recording", func() bool {
		var list []recording.Info
		getJSON(t, srv.base+"/api/recordings", &list)
		return len(list) == 1 && list[0].Duration >= time.Second
	})

	srv.drain() // the first SIGTERM
	testenv.Eventually(t, 5*time.Second, "/healthz to say draining", func() bool {
		resp, err := http.Get(srv.base + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.TrimSpace(string(b)) == "draining"
	})
	refusedAt := packets.Load()
	late, err := client.Dial(ctx, client.Config{URL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = late.Close() })
	var se *client.ServerError
	if _, err := late.Join(ctx, protocol.Join{Room: "new-consult", Name: "X", Live: true}); !errors.As(err, &se) || se.Code != protocol.ErrServerDraining {
		t.Fatalf("a join to a new room while draining: %v, want server-draining", err)
	}
	if _, err := late.Join(ctx, protocol.Join{Room: "visit", Name: "Interpreter", Live: false}); err != nil {
		t.Fatalf("joining the running consult while draining: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the running call's media to go on", func() bool { return packets.Load() > refusedAt+20 })

	// The drain timeout ends the consult.
	for _, c := range []*client.Client{recv, pub} {
		e, err := c.Await(ctx, protocol.TypeGoodbye)
		var bye protocol.Goodbye
		if err != nil || e.Decode(&bye) != nil || bye.Code != protocol.GoodbyeShutdown {
			t.Fatalf("no goodbye after the drain: %v %+v", err, bye)
		}
	}
	select {
	case <-srv.ended:
	case <-ctx.Done():
		t.Fatal("the server did not stop after its drain timeout")
	}
	files, _ := filepath.Glob(filepath.Join(srv.recDir, "visit_*.webm"))
	if len(files) != 1 {
		t.Fatalf("recording files %v, want one", files)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", files[0]).Output()
	secs, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || secs < 1 {
		t.Fatalf("the recording after the drain: %v, %q", err, out)
	}
	t.Logf("recording finished at %.1f s", secs)
}

// The first SIGTERM starts a drain, the second ends it.
func TestSignalsDrainThenStop(t *testing.T) {
	drain, now, stop := watchSignals()
	defer stop()
	for i, ctx := range []context.Context{drain, now} {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-testenv.After(5 * time.Second):
			t.Fatalf("signal %d did not end its context", i+1)
		}
	}
}

// A drain an admin asks for (POST /api/drain) ends as soon as the last
// consult does, well before its timeout.
func TestDrainEndsWithTheLastConsult(t *testing.T) {
	srv := startMainCtl(t, "-p2p=false", "-drain-timeout", "10m")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	c := dialJoin(t, ctx, client.Config{URL: srv.url}, protocol.Join{Room: "visit", Name: "Dr", Live: true})
	resp, err := http.Post(srv.base+"/api/drain", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/drain: %s", resp.Status)
	}
	testenv.Eventually(t, 5*time.Second, "/healthz to say draining", func() bool {
		resp, err := http.Get(srv.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	select {
	case <-srv.ended:
		t.Fatal("the server stopped with a consult running")
	default:
	}
	if err := c.Leave(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.ended:
	case <-ctx.Done():
		t.Fatal("the drain did not end with the last consult")
	}
}
