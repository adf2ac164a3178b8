package turn

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pturn "github.com/pion/turn/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"consult/internal/testenv"
	"consult/internal/testlog"
)

const (
	testSecret = "test-secret"
	testRealm  = "test.realm"
)

// waitFor bounds anything on loopback, scaled to the machine.
var waitFor = testenv.Scale(10 * time.Second)

var loopbackV4 = netip.MustParsePrefix("127.0.0.0/8")

// testLogger logs Info and above to the test output and records everything
// from Debug up for assertions. pion's goroutines outlive a test by a moment
// (they stop after Close returns); testlog's core drops their lines once the
// test has ended instead of racing with its end.
func testLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	obsCore, logs := observer.New(zapcore.DebugLevel)
	return zap.New(zapcore.NewTee(obsCore, testlog.Core(t, zapcore.InfoLevel))), logs
}

// startServer runs a server on loopback UDP and TCP with loopback peers
// allowed (every peer in these tests is on loopback); mutate adjusts the
// configuration first.
func startServer(t *testing.T, mutate func(*Config)) (*Server, *observer.ObservedLogs) {
	t.Helper()
	log, logs := testLogger(t)
	cfg := Config{
		Realm:            testRealm,
		Secret:           testSecret,
		ListenUDP:        "127.0.0.1:0",
		ListenTCP:        "127.0.0.1:0",
		RelayBindAddress: netip.MustParseAddr("127.0.0.1"),
		AllowedPeers:     []netip.Prefix{loopbackV4},
		Logger:           log,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv, logs
}

func creds(user string) (string, string) {
	return Credentials(testSecret, user, time.Hour, time.Now())
}

// newClient starts a pion TURN client talking to server over conn.
func newClient(t *testing.T, conn net.PacketConn, server net.Addr, username, password string) *pturn.Client {
	t.Helper()
	log, _ := testLogger(t)
	c, err := pturn.NewClient(&pturn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  pionLoggerFactory{log: log.Named("client")},
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if err := c.Listen(); err != nil {
		t.Fatalf("client Listen: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// udpClient is a pion client over UDP from its own loopback socket, so each
// one is a distinct 5-tuple and may hold its own allocation.
func udpClient(t *testing.T, srv *Server, username, password string) *pturn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return newClient(t, conn, srv.Addrs().UDP[0], username, password)
}

// streamClient is a pion client over a TCP (or, given a dial function, TLS)
// connection to addr.
func streamClient(t *testing.T, addr net.Addr, dial func() (net.Conn, error), username, password string) *pturn.Client {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return newClient(t, pturn.NewSTUNConn(conn), addr, username, password)
}

// echoPeer is a UDP peer on loopback that sends every datagram back.
func echoPeer(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := pc.WriteTo(buf[:n], from); err != nil {
				return
			}
		}
	}()
	return pc
}

// roundTrips sends n datagrams through relay to the echo peer and waits for
// each to come back from the peer's address. The first datagram makes the
// client create the permission; a refused permission fails the write.
func roundTrips(t *testing.T, relay net.PacketConn, peer net.Addr, n, size int) {
	t.Helper()
	buf := make([]byte, 1500)
	for i := range n {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("write %d to peer: %v", i, err)
		}
		if err := relay.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
			t.Fatal(err)
		}
		got, from, err := relay.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read echo %d: %v", i, err)
		}
		if from.String() != peer.String() || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("echo %d: got %d bytes from %s, want %d bytes from %s", i, got, from, len(msg), peer)
		}
	}
}

// turnCode returns the TURN error code in err, or 0.
func turnCode(err error) stun.ErrorCode {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return te.ErrorCodeAttr.Code
	}
	var tv stun.TurnError
	if errors.As(err, &tv) {
		return tv.ErrorCodeAttr.Code
	}
	return 0
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// endedLogs returns the "allocation ended" entries, as field maps.
func endedLogs(logs *observer.ObservedLogs) []map[string]any {
	var out []map[string]any
	for _, e := range logs.FilterMessage("turn allocation ended").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

func mustField[T any](t *testing.T, m map[string]any, key string) T {
	t.Helper()
	v, ok := m[key].(T)
	if !ok {
		t.Fatalf("log field %q = %#v (%T), want %T", key, m[key], m[key], *new(T))
	}
	return v
}

func describe(m map[string]any) string { return fmt.Sprintf("%v", m) }

// rawAttr adds an attribute with exactly the given bytes, however wrong.
type rawAttr struct {
	typ stun.AttrType
	val []byte
}

func (a rawAttr) AddTo(m *stun.Message) error {
	m.Add(a.typ, a.val)
	return nil
}

// xorPeer adds an XOR-PEER-ADDRESS, which pion's own type for it is internal.
type xorPeer struct {
	IP   net.IP
	Port int
}

func (p xorPeer) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.IP, Port: p.Port}.AddToAs(m, stun.AttrXORPeerAddress)
}
