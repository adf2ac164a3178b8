package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverBuild is the server binary built once for a whole sweep.
type serverBuild struct {
	dir   string
	bin   string
	flags map[string]bool // the flags this build knows (from -h)
}

// buildServer runs `go build` on the server's main package at src.
func buildServer(ctx context.Context, src string) (*serverBuild, error) {
	dir, err := os.MkdirTemp("", "consult-bench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "consult-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("go build %s: %v\n%s", src, err, out)
	}
	// The server's flags change as it grows; ask it which it has rather
	// than fail on one an older or newer build lacks.
	help, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, line := range strings.Split(string(help), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") {
			flags[strings.TrimPrefix(f[0], "-")] = true
		}
	}
	return &serverBuild{dir: dir, bin: bin, flags: flags}, nil
}

func (b *serverBuild) remove() { _ = os.RemoveAll(b.dir) }

// child is a server started by the harness.
type child struct {
	cmd  *exec.Cmd
	URL  string
	PID  int
	log  string
	exit chan error
}

// freePort asks the kernel for an unused loopback port of the network.
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server on loopback only: HTTP on 127.0.0.1, and media on
// one UDP port whose candidates are all rewritten to 127.0.0.1 (the mux
// listens on every interface, and would otherwise advertise them all); no
// TURN server (its relays bind the machine's own address, and its fixed
// port could clash with another server on the machine); recordings, if
// any, in the build's temporary directory. capacity is the rooms' live
// capacity the run needs.
func (b *serverBuild) start(capacity int, extra []string) (*child, error) {
	httpPort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	udpPort, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("server-%d.log", httpPort))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{
		"-addr", "127.0.0.1:" + strconv.Itoa(httpPort),
		"-ice-udp-port", strconv.Itoa(udpPort),
		"-ice-loopback=true",
		"-public-ip", "127.0.0.1",
		"-room-capacity", strconv.Itoa(max(capacity, 8)),
		"-log-level", "warn",
	}
	if b.flags["turn"] {
		args = append(args, "-turn=false")
	}
	// The load is many sessions from one address, which the admission
	// limits would rightly refuse.
	for _, f := range []string{"max-live", "max-waiting", "join-rate"} {
		if b.flags[f] {
			args = append(args, "-"+f, "0")
		}
	}
	if b.flags["record-dir"] {
		args = append(args, "-record-dir", filepath.Join(b.dir, "recordings"))
	}
	args = append(args, extra...) // last, so an operator's flag wins
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a ^C to the harness reaches the harness
	// only, which then stops the server in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, URL: fmt.Sprintf("ws://127.0.0.1:%d/ws", httpPort), PID: cmd.Process.Pid,
		log: logPath, exit: make(chan error, 1)}
	go func() { c.exit <- cmd.Wait() }()
	if err := c.awaitHealthy(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)); err != nil {
		c.stop()
		return nil, fmt.Errorf("%w (server log: %s)", err, logPath)
	}
	return c, nil
}

// awaitHealthy polls /healthz until it answers, the server exits, or 15 s
// pass.
func (c *child) awaitHealthy(url string) error {
	deadline := time.Now().Add(15 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-c.exit:
			c.exit <- err
			return fmt.Errorf("server exited at start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("server did not answer /healthz within 15 s")
}

// stop asks the server to shut down (SIGINT, as ^C would) and kills it if
// it has not within 10 s.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-c.exit:
		return err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("server did not stop within 10 s of SIGINT; killed")
	}
}
