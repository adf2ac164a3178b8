package turn

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"consult/internal/testenv"
)

// TestCoturnClientInterop runs coturn's own test client against the embedded
// server, with coturn's echo peer on loopback: the check that a client built
// for coturn (and so browsers' expectations of it) works with us, using the
// shared-secret REST credentials that coturn's -W option computes itself.
//
// CI installs the Debian package coturn; without it the test is skipped.
func TestCoturnClientInterop(t *testing.T) {
	uclient, err1 := exec.LookPath("turnutils_uclient")
	peerBin, err2 := exec.LookPath("turnutils_peer")
	if err1 != nil || err2 != nil {
		t.Skip("coturn's turnutils_uclient/turnutils_peer not installed (apt-get install coturn)")
	}
	srv, logs := startServer(t, nil)
	peerPort := startCoturnPeer(t, peerBin)

	for _, tc := range []struct {
		name  string
		flags []string
		port  int
	}{
		// Default mode: RTP and RTCP allocations (EVEN-PORT with a
		// RESERVATION-TOKEN), data over channels.
		{name: "udp channels with rtcp pair", port: portOf(srv.Addrs().UDP[0])},
		{name: "udp send indications", flags: []string{"-c", "-s"}, port: portOf(srv.Addrs().UDP[0])},
		{name: "udp explicit ipv4 family", flags: []string{"-c", "-X"}, port: portOf(srv.Addrs().UDP[0])},
		{name: "tcp", flags: []string{"-c", "-t"}, port: portOf(srv.Addrs().TCP[0])},
		// Two clients relaying to each other's relay addresses, the
		// relay-to-relay ICE pair.
		{name: "udp client to client", flags: []string{"-c", "-y"}, port: portOf(srv.Addrs().UDP[0])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().AllocationsTotal
			args := append([]string{
				"-W", testSecret, "-u", "coturn-" + strconv.Itoa(tc.port),
				"-p", strconv.Itoa(tc.port),
				"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort),
				"-n", "50", "-l", "120", "-z", "5",
			}, tc.flags...)
			args = append(args, "127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
			defer cancel()
			out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_uclient %v: %v\n%s", args, err, out)
			}
			sent, recv, lost, ok := parseUclient(string(out))
			t.Logf("turnutils_uclient %v: sent %d, received %d, lost %d", tc.flags, sent, recv, lost)
			if !ok || sent == 0 || recv != sent || lost != 0 {
				t.Fatalf("uclient did not get every message back:\n%s", out)
			}
			if srv.Stats().AllocationsTotal == before {
				t.Errorf("no allocation on our server: did uclient talk to something else?")
			}
		})
	}
	if n := logs.FilterMessage("turn credentials refused").Len(); n != 0 {
		t.Errorf("%d credential refusals: coturn's REST credentials and ours disagree", n)
	}

	t.Run("wrong secret refused", func(t *testing.T) {
		before := srv.Stats()
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
		defer cancel()
		args := []string{"-W", "not-the-secret", "-u", "intruder", "-p", strconv.Itoa(portOf(srv.Addrs().UDP[0])),
			"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-n", "5", "-c", "127.0.0.1"}
		out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
		if _, recv, _, ok := parseUclient(string(out)); err == nil && ok && recv > 0 {
			t.Fatalf("uclient with a wrong secret got data through:\n%s", out)
		}
		after := srv.Stats()
		if after.AllocationsTotal != before.AllocationsTotal || after.AuthRejected == before.AuthRejected {
			t.Errorf("stats before %+v after %+v: want no allocation and a refusal", before, after)
		}
	})
}

var (
	uclientMsgs = regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	uclientLost = regexp.MustCompile(`Total lost packets (\d+)`)
)

// parseUclient reads the totals turnutils_uclient prints at the end.
func parseUclient(out string) (sent, recv, lost int, ok bool) {
	m, l := uclientMsgs.FindStringSubmatch(out), uclientLost.FindStringSubmatch(out)
	if m == nil || l == nil {
		return 0, 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	lost, _ = strconv.Atoi(l[1])
	return sent, recv, lost, true
}

// startCoturnPeer runs turnutils_peer (a UDP echo server) on a free loopback
// port and waits until it echoes.
func startCoturnPeer(t *testing.T, bin string) int {
	t.Helper()
	// The kernel picks a free port; turnutils_peer binds it right after.
	// Another process taking it in between would show as a failed echo.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()

	cmd := exec.Command(bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnutils_peer: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	conn, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 64)
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if _, err := conn.Write([]byte("ping")); err != nil {
			// ECONNREFUSED until the peer has bound the port.
			time.Sleep(20 * time.Millisecond) // polling interval
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil && string(buf[:n]) == "ping" {
			return port
		}
	}
	t.Fatal("turnutils_peer never echoed")
	return 0
}
