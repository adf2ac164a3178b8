package turn

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pturn "github.com/pion/turn/v5"
	"go.uber.org/zap"
)

func TestUDPAllocationRelaysBothWaysAndLogsTotals(t *testing.T) {
	srv, logs := startServer(t, nil)
	user, pass := creds("alice")
	client := udpClient(t, srv, user, pass)
	peer := echoPeer(t)

	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	relayAddr := relay.LocalAddr().(*net.UDPAddr)
	if !relayAddr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("relay address %s, want on 127.0.0.1", relayAddr)
	}
	const n, size = 5, 100
	roundTrips(t, relay, peer.LocalAddr(), n, size)

	if err := relay.Close(); err != nil {
		t.Fatalf("close relay: %v", err)
	}
	eventually(t, "allocation end log", func() bool { return len(endedLogs(logs)) == 1 })
	ended := endedLogs(logs)[0]
	if got := mustField[string](t, ended, "user"); got != "alice" {
		t.Errorf("user = %q, want alice", got)
	}
	if got := mustField[string](t, ended, "relay"); got != relayAddr.String() {
		t.Errorf("relay = %q, want %s", got, relayAddr)
	}
	if got := mustField[string](t, ended, "transport"); got != "udp" {
		t.Errorf("transport = %q, want udp", got)
	}
	// The client may send its first datagram as a Send indication and the
	// rest as ChannelData; either way every payload byte is counted once.
	if out := mustField[uint64](t, ended, "bytes_to_peers"); out != n*size {
		t.Errorf("bytes_to_peers = %d, want %d (%s)", out, n*size, describe(ended))
	}
	if in := mustField[uint64](t, ended, "bytes_from_peers"); in != n*size {
		t.Errorf("bytes_from_peers = %d, want %d (%s)", in, n*size, describe(ended))
	}
	st := srv.Stats()
	if st.Allocations != 0 || st.AllocationsTotal != 1 || st.BytesToPeers != n*size || st.BytesToClients != n*size {
		t.Errorf("stats = %+v", st)
	}
}

func TestLoopbackPeerRefusedByDefaultAndAllowedWhenListed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []netip.Prefix
		wantErr stun.ErrorCode
	}{
		{name: "default policy refuses", allowed: nil, wantErr: stun.CodeForbidden},
		{name: "listed prefix allows", allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := startServer(t, func(c *Config) { c.AllowedPeers = tc.allowed })
			user, pass := creds("mallory")
			client := udpClient(t, srv, user, pass)
			peer := echoPeer(t)
			relay, err := client.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}

			err = client.CreatePermission(peer.LocalAddr())
			if got := turnCode(err); got != tc.wantErr {
				t.Fatalf("CreatePermission: %v (code %d), want code %d", err, got, tc.wantErr)
			}
			if tc.wantErr != 0 {
				if got := srv.Stats().PeersRefused; got != 1 {
					t.Errorf("PeersRefused = %d, want 1", got)
				}
				// Writing also asks for the permission first, and fails.
				if _, err := relay.WriteTo([]byte("x"), peer.LocalAddr()); err == nil {
					t.Error("WriteTo a refused peer succeeded")
				}
				return
			}
			roundTrips(t, relay, peer.LocalAddr(), 3, 50)
		})
	}
}

// ChannelBind grants a permission too, so the policy must be asked there as
// well. The pion client never sends ChannelBind for a peer whose permission
// was refused, so this builds the request by hand.
func TestChannelBindToRefusedPeerIsRejected(t *testing.T) {
	srv, _ := startServer(t, func(c *Config) { c.AllowedPeers = nil })
	user, pass := creds("mallory")
	client := udpClient(t, srv, user, pass)
	if _, err := client.Allocate(); err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	server := srv.Addrs().UDP[0]

	// An unauthenticated request earns a 401 with a fresh nonce.
	probe, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.PerformTransaction(probe, server, false)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(res.Msg); err != nil {
		t.Fatalf("no nonce in %s: %v", res.Msg, err)
	}

	for _, peer := range []string{"127.0.0.1", "169.254.169.254", "10.1.2.3"} {
		bind, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
			rawAttr{stun.AttrChannelNumber, []byte{0x40, 0x00, 0, 0}},
			xorPeer{IP: net.ParseIP(peer), Port: 9},
			stun.NewUsername(user), stun.NewRealm(testRealm), nonce,
			stun.NewLongTermIntegrity(user, testRealm, pass), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.PerformTransaction(bind, server, false)
		if err != nil {
			t.Fatalf("ChannelBind %s: %v", peer, err)
		}
		if res.Msg.Type.Class != stun.ClassErrorResponse {
			t.Errorf("ChannelBind to %s: got %s, want an error response", peer, res.Msg.Type)
		}
	}
	if got := srv.Stats().PeersRefused; got != 3 {
		t.Errorf("PeersRefused = %d, want 3", got)
	}
}

func TestCredentialsAreChecked(t *testing.T) {
	srv, logs := startServer(t, nil)
	goodUser, goodPass := creds("alice")
	expiredUser, expiredPass := Credentials(testSecret, "alice", time.Hour, time.Now().Add(-2*time.Hour))
	otherUser, otherPass := Credentials("another-secret", "alice", time.Hour, time.Now())

	for _, tc := range []struct {
		name, user, pass, reason string
	}{
		{"wrong password", goodUser, goodPass + "x", "password"},
		{"expired", expiredUser, expiredPass, "expired"},
		{"other secret", otherUser, otherPass, "password"},
		{"not a REST username", "alice", goodPass, "malformed"},
		{"negative expiry", "-1:alice", goodPass, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := logs.FilterField(zap.String("reason", tc.reason)).Len()
			client := udpClient(t, srv, tc.user, tc.pass)
			_, err := client.Allocate()
			if got := turnCode(err); got != stun.CodeUnauthorized {
				t.Fatalf("Allocate: %v (code %d), want 401", err, got)
			}
			if logs.FilterField(zap.String("reason", tc.reason)).Len() <= before {
				t.Errorf("no refusal logged with reason %q", tc.reason)
			}
		})
	}
	if st := srv.Stats(); st.AllocationsTotal != 0 || st.AuthRejected < 5 {
		t.Errorf("stats = %+v, want no allocation and at least 5 auth rejections", st)
	}

	client := udpClient(t, srv, goodUser, goodPass)
	if _, err := client.Allocate(); err != nil {
		t.Fatalf("valid credentials refused: %v", err)
	}
}

func TestPerUserQuota(t *testing.T) {
	const quota = 2
	srv, _ := startServer(t, func(c *Config) { c.PerUserQuota = quota })
	user, pass := creds("alice")

	var relays []net.PacketConn
	for i := range quota {
		relay, err := udpClient(t, srv, user, pass).Allocate()
		if err != nil {
			t.Fatalf("allocation %d within quota: %v", i+1, err)
		}
		relays = append(relays, relay)
	}
	// The user ID, not the username, is what counts: a renewed credential
	// for the same user does not get a fresh quota.
	renewedUser, renewedPass := Credentials(testSecret, "alice", 2*time.Hour, time.Now())
	_, err := udpClient(t, srv, renewedUser, renewedPass).Allocate()
	if got := turnCode(err); got != stun.CodeAllocQuotaReached {
		t.Fatalf("allocation %d: %v (code %d), want 486", quota+1, err, got)
	}
	bobUser, bobPass := creds("bob")
	if _, err := udpClient(t, srv, bobUser, bobPass).Allocate(); err != nil {
		t.Fatalf("other user refused: %v", err)
	}

	if err := relays[0].Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "slot to be freed", func() bool { return srv.Stats().Allocations == quota })
	if _, err := udpClient(t, srv, user, pass).Allocate(); err != nil {
		t.Fatalf("allocation after freeing a slot: %v", err)
	}
	if got := srv.Stats().QuotaRejected; got != 1 {
		t.Errorf("QuotaRejected = %d, want 1", got)
	}
}

func TestTotalQuota(t *testing.T) {
	srv, _ := startServer(t, func(c *Config) { c.TotalQuota = 2 })
	for i, name := range []string{"a", "b", "c"} {
		user, pass := creds(name)
		_, err := udpClient(t, srv, user, pass).Allocate()
		if i < 2 && err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		if i == 2 && turnCode(err) != stun.CodeAllocQuotaReached {
			t.Fatalf("allocation 3: %v, want 486", err)
		}
	}
}

func TestMaxLifetimeEndsAllocationDespiteRefresh(t *testing.T) {
	// The client refreshes every half lifetime, so without the cap the
	// allocation would live on; with it, it ends after MaxLifetime.
	const lifetime, maxLifetime = time.Second, 2 * time.Second
	srv, logs := startServer(t, func(c *Config) {
		c.AllocationLifetime = lifetime
		c.MaxLifetime = maxLifetime
	})
	user, pass := creds("alice")
	if _, err := udpClient(t, srv, user, pass).Allocate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "allocation to be closed by the cap", func() bool { return srv.Stats().Allocations == 0 })
	ended := endedLogs(logs)
	if len(ended) != 1 || ended[0]["reason"] != "max-lifetime" {
		t.Fatalf("ended logs = %v, want one with reason max-lifetime", ended)
	}
	if d := mustField[time.Duration](t, ended[0], "duration"); d < maxLifetime {
		t.Errorf("allocation lived %s, want at least %s", d, maxLifetime)
	}
}

func TestRelayPortRange(t *testing.T) {
	// Find two free adjacent-ish ports by letting the kernel pick one.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	srv, _ := startServer(t, func(c *Config) { c.RelayPortMin, c.RelayPortMax = port, port })

	user, pass := creds("alice")
	relay, err := udpClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if got := relay.LocalAddr().(*net.UDPAddr).Port; got != port {
		t.Errorf("relay port %d, want %d", got, port)
	}
	// The range is exhausted now: the next allocation must fail, not fall
	// back to a port outside the range.
	if _, err := udpClient(t, srv, user, pass).Allocate(); err == nil {
		t.Error("allocation beyond the port range succeeded")
	}
}

func TestCloseEndsAllocationsAndConnections(t *testing.T) {
	srv, logs := startServer(t, nil)
	user, pass := creds("alice")
	if _, err := udpClient(t, srv, user, pass).Allocate(); err != nil {
		t.Fatal(err)
	}
	tcpAddr := srv.Addrs().TCP[0]
	conn, err := net.Dial("tcp", tcpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Make sure the connection has been accepted before closing.
	if _, err := newClient(t, pturn.NewSTUNConn(conn), tcpAddr, user, pass).SendBindingRequest(); err != nil {
		t.Fatalf("binding over TCP: %v", err)
	}

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := srv.Stats().Allocations; got != 0 {
		t.Errorf("Allocations after Close = %d", got)
	}
	ended := endedLogs(logs)
	if len(ended) != 1 || ended[0]["reason"] != "server-closed" {
		t.Errorf("ended logs = %v, want one with reason server-closed", ended)
	}
	if err := conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("TCP connection still open after Close: %v", err)
	}
}

func TestURLs(t *testing.T) {
	srv, _ := startServer(t, nil)
	udp, tcp := portOf(srv.Addrs().UDP[0]), portOf(srv.Addrs().TCP[0])
	want := []string{
		"stun:turn.example.com:" + strconv.Itoa(udp),
		"turn:turn.example.com:" + strconv.Itoa(udp) + "?transport=udp",
		"turn:turn.example.com:" + strconv.Itoa(tcp) + "?transport=tcp",
	}
	if got := srv.URLs("turn.example.com"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("URLs = %v, want %v", got, want)
	}
	if got := srv.URLs(""); !strings.HasPrefix(got[0], "stun:127.0.0.1:") {
		t.Errorf("URLs(\"\") = %v, want the relay IP as host", got)
	}
	ice := srv.ICEConfig("turn.example.com", time.Hour)
	if err := ice.Validate(); err != nil {
		t.Errorf("ICEConfig invalid: %v", err)
	}
}
