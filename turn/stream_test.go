package turn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	pturn "github.com/pion/turn/v5"
)

func TestTCPClientAllocatesUDPRelay(t *testing.T) {
	srv, logs := startServer(t, nil)
	user, pass := creds("alice")
	addr := srv.Addrs().TCP[0]
	client := streamClient(t, addr, func() (net.Conn, error) { return net.Dial("tcp", addr.String()) }, user, pass)
	peer := echoPeer(t)

	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TCP: %v", err)
	}
	roundTrips(t, relay, peer.LocalAddr(), 5, 200)
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "allocation end log", func() bool { return len(endedLogs(logs)) == 1 })
	if got := endedLogs(logs)[0]["transport"]; got != "tcp" {
		t.Errorf("transport = %v, want tcp", got)
	}
}

// Closing the TCP control connection ends the allocation (pion ties an
// allocation made over TCP to its connection), and frees its quota slot.
func TestTCPDisconnectEndsAllocation(t *testing.T) {
	srv, _ := startServer(t, func(c *Config) { c.PerUserQuota = 1 })
	user, pass := creds("alice")
	addr := srv.Addrs().TCP[0]
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	client := streamClient(t, addr, func() (net.Conn, error) { return conn, nil }, user, pass)
	if _, err := client.Allocate(); err != nil {
		t.Fatalf("Allocate over TCP: %v", err)
	}
	_ = conn.Close()
	eventually(t, "allocation to end with its connection", func() bool { return srv.Stats().Allocations == 0 })
	if _, err := udpClient(t, srv, user, pass).Allocate(); err != nil {
		t.Fatalf("quota not freed: %v", err)
	}
}

func TestTLSClientAllocatesUDPRelay(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	srv, logs := startServer(t, func(c *Config) {
		c.ListenTLS, c.TLSCertFile, c.TLSKeyFile = "127.0.0.1:0", certFile, keyFile
	})
	user, pass := creds("alice")
	addr := srv.Addrs().TLS[0]
	dial := func() (net.Conn, error) {
		return tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: pool, ServerName: "turn.test", MinVersion: tls.VersionTLS12})
	}
	client := streamClient(t, addr, dial, user, pass)
	peer := echoPeer(t)

	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TLS: %v", err)
	}
	roundTrips(t, relay, peer.LocalAddr(), 3, 100)
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "allocation end log", func() bool { return len(endedLogs(logs)) == 1 })
	if got := endedLogs(logs)[0]["transport"]; got != "tls" {
		t.Errorf("transport = %v, want tls", got)
	}
	if got := srv.URLs("turn.test"); got[len(got)-1] != "turns:turn.test:"+strconv.Itoa(portOf(addr))+"?transport=tcp" {
		t.Errorf("URLs = %v, want a turns: URL last", got)
	}
}

// TCP relay allocations (RFC 6062) are refused; WebRTC does not use them.
func TestTCPRelayAllocationRefused(t *testing.T) {
	srv, _ := startServer(t, nil)
	user, pass := creds("alice")
	addr := srv.Addrs().TCP[0]
	client := streamClient(t, addr, func() (net.Conn, error) { return net.Dial("tcp", addr.String()) }, user, pass)
	if _, err := client.AllocateTCP(); err == nil {
		t.Fatal("TCP relay allocation succeeded")
	}
	if got := srv.Stats().Allocations; got != 0 {
		t.Errorf("Allocations = %d", got)
	}
}

func TestIdleTCPConnectionIsClosed(t *testing.T) {
	srv, _ := startServer(t, func(c *Config) { c.AllocationLifetime = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", srv.Addrs().TCP[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from a connection that sent nothing")
	} else if isTimeout(err) {
		t.Fatalf("idle connection not closed within %s", waitFor)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("closed after %s, before the idle timeout", d)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// selfSignedCert writes a certificate for "turn.test" and its key to a
// temporary directory and returns their paths and a pool trusting it.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "turn.test"},
		DNSNames:     []string{"turn.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// A client reaching the server over IPv6 without naming an address family
// gets a relay in the relay address's family (IPv4 here), as RFC 6156
// prescribes and coturn does, rather than an IPv6 relay we cannot open; one
// that insists on IPv6 is refused cleanly.
func TestIPv6ClientGetsIPv4Relay(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = probe.Close()
	srv, _ := startServer(t, func(c *Config) { c.ListenUDP = "[::1]:0" })
	user, pass := creds("alice")
	for _, tc := range []struct {
		name   string
		family pturn.RequestedAddressFamily
		wantOK bool
	}{
		{"family omitted", pturn.RequestedAddressFamilyIPv4, true}, // pion omits the attribute for IPv4
		{"IPv6 requested", pturn.RequestedAddressFamilyIPv6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenPacket("udp6", "[::1]:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			client, err := pturn.NewClient(&pturn.ClientConfig{
				TURNServerAddr: srv.Addrs().UDP[0].String(), Conn: conn,
				Username: user, Password: pass, RequestedAddressFamily: tc.family,
				LoggerFactory: pionLoggerFactory{log: nopLogger()},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(client.Close)
			if err := client.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := client.Allocate()
			if !tc.wantOK {
				if err == nil {
					t.Fatalf("IPv6 relay allocated at %s", relay.LocalAddr())
				}
				return
			}
			if err != nil {
				t.Fatalf("Allocate over IPv6: %v", err)
			}
			if ip := relay.LocalAddr().(*net.UDPAddr).IP; ip.To4() == nil {
				t.Fatalf("relay %s, want IPv4", relay.LocalAddr())
			}
			roundTrips(t, relay, echoPeer(t).LocalAddr(), 2, 32)
		})
	}
}

// Sockets opened by the caller are served like the configured ones, and a
// caller-provided TLS listener (which hides *tls.Conn from pion behind our
// wrapper) still completes its handshake.
func TestCallerProvidedSockets(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startServer(t, func(c *Config) {
		c.ListenUDP, c.ListenTCP = "", ""
		c.PacketConns = []net.PacketConn{pc}
		c.Listeners = []net.Listener{tcpLn}
		c.TLSListeners = []net.Listener{tlsLn}
	})
	a := srv.Addrs()
	if len(a.UDP) != 1 || a.UDP[0] != pc.LocalAddr() || len(a.TCP) != 1 || len(a.TLS) != 1 {
		t.Fatalf("Addrs = %+v", a)
	}
	user, pass := creds("alice")
	peer := echoPeer(t).LocalAddr()

	relay, err := udpClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("UDP: %v", err)
	}
	roundTrips(t, relay, peer, 1, 10)

	tcpAddr := a.TCP[0]
	relay, err = streamClient(t, tcpAddr, func() (net.Conn, error) { return net.Dial("tcp", tcpAddr.String()) }, user, pass).Allocate()
	if err != nil {
		t.Fatalf("TCP: %v", err)
	}
	roundTrips(t, relay, peer, 1, 10)

	tlsAddr := a.TLS[0]
	dial := func() (net.Conn, error) {
		return tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: pool, ServerName: "turn.test", MinVersion: tls.VersionTLS12})
	}
	relay, err = streamClient(t, tlsAddr, dial, user, pass).Allocate()
	if err != nil {
		t.Fatalf("TLS: %v", err)
	}
	roundTrips(t, relay, peer, 1, 10)
}

func TestCertificateReloadedWhenFilesChange(t *testing.T) {
	certFile, keyFile, _ := selfSignedCert(t)
	r, err := newCertReloader(certFile, keyFile, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.getCertificate(nil)

	// Renewal: new files in place, with a later modification time.
	newCert, newKey, _ := selfSignedCert(t)
	later := time.Now().Add(time.Minute)
	for src, dst := range map[string]string{newCert: certFile, newKey: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dst, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if same, _ := r.getCertificate(nil); same != first {
		t.Error("reloaded before the check interval")
	}
	r.mu.Lock()
	r.lastCheck = time.Time{} // as if the interval had passed
	r.mu.Unlock()
	if renewed, _ := r.getCertificate(nil); renewed == first {
		t.Error("renewed certificate not picked up")
	}

	// A broken file keeps the previous certificate.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(certFile, later.Add(time.Minute), later.Add(time.Minute))
	r.mu.Lock()
	r.lastCheck = time.Time{}
	r.mu.Unlock()
	if c, _ := r.getCertificate(nil); c == nil || c == first {
		t.Errorf("broken renewal: got %v, want the renewed certificate kept", c)
	}
}
