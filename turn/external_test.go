package turn

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// TestExternalCoturnAcceptsICEServers is the other direction of the interop
// test: the ICE server entries we hand to clients, pointed at a real coturn
// configured as docs/turn.md says (use-auth-secret, static-auth-secret,
// realm), let a client allocate and relay, and an expired one does not.
func TestExternalCoturnAcceptsICEServers(t *testing.T) {
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		t.Skip("coturn's turnserver not installed (apt-get install coturn)")
	}
	const secret, realm = "external-secret", "external.realm"
	port := startCoturn(t, bin, secret, realm)

	ice := ICEConfig{
		URLs:   []string{"stun:127.0.0.1:" + strconv.Itoa(port), "turn:127.0.0.1:" + strconv.Itoa(port) + "?transport=udp"},
		Secret: secret,
		TTL:    time.Hour,
	}
	if err := ice.Validate(); err != nil {
		t.Fatal(err)
	}
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}

	t.Run("fresh credentials relay", func(t *testing.T) {
		entry := ice.ICEServers("alice", time.Now())[1]
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		relay, err := newClient(t, conn, server, entry.Username, entry.Credential).Allocate()
		if err != nil {
			t.Fatalf("coturn refused our credentials: %v", err)
		}
		roundTrips(t, relay, echoPeer(t).LocalAddr(), 3, 100)
	})

	t.Run("expired credentials refused", func(t *testing.T) {
		entry := ice.ICEServers("alice", time.Now().Add(-2*time.Hour))[1]
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		_, err = newClient(t, conn, server, entry.Username, entry.Credential).Allocate()
		if turnCode(err) != stun.CodeUnauthorized {
			t.Fatalf("Allocate with expired credentials: %v, want 401", err)
		}
	})
}

// startCoturn runs turnserver on a free loopback port with REST credentials
// and loopback peers allowed (the test's peer is on loopback), and waits
// until it answers a STUN binding request. The port is free when chosen,
// but another process may take it before coturn binds it (seen on a busy
// machine: "Address already in use", and coturn retrying forever), so a
// coturn that does not answer is stopped and started again on a new port.
func startCoturn(t *testing.T, bin, secret, realm string) int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port, ok := tryCoturn(t, bin, secret, realm, attempt == 3)
		if ok {
			return port
		}
	}
}

// tryCoturn starts one turnserver; last says whether a failure fails the
// test (else it is stopped and false returned).
func tryCoturn(t *testing.T, bin, secret, realm string, last bool) (int, bool) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()

	dir := t.TempDir()
	var out bytes.Buffer
	cmd := exec.Command(bin, "-n",
		"--listening-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port), "--relay-ip=127.0.0.1",
		"--realm="+realm, "--use-auth-secret", "--static-auth-secret="+secret,
		"--allow-loopback-peers", "--no-tcp", "--no-tcp-relay", "--no-tls", "--no-dtls", "--no-cli",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"), "--log-file=stdout", "--simple-log")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnserver: %v", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("turnserver output:\n%s", lastLines(out.String(), 40))
		}
	})

	conn, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor/3)
	defer cancel()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	buf := make([]byte, 1500)
	for ctx.Err() == nil {
		if _, err := conn.Write(req); err != nil {
			time.Sleep(20 * time.Millisecond) // polling interval: refused until coturn binds
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil && stun.IsMessage(buf[:n]) {
			return port, true
		}
	}
	if last {
		t.Fatal("turnserver never answered")
	}
	t.Logf("turnserver on port %d did not answer; trying another port:\n%s", port, lastLines(out.String(), 5))
	stop()
	return 0, false
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
