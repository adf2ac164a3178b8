package turn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pturn "github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// relayGenerator opens the relay socket of every allocation. pion calls it
// for each Allocate, and closes the socket it returned when the allocation
// ends for whatever reason (client Refresh with lifetime 0, lifetime expiry,
// TCP control connection closed, server shutdown). That makes the socket the
// one object whose life is exactly the allocation's, so this is where quotas
// are taken and given back, bytes are counted, the lifetime cap is enforced
// and the allocation's end is logged.
type relayGenerator struct {
	bindIP      netip.Addr // address relay sockets are bound to
	advertiseIP netip.Addr // address told to clients (PublicIP behind 1:1 NAT)
	portMin     int        // 0 = any port
	portMax     int
	maxLifetime time.Duration // 0 = no cap
	quota       *quota
	stats       *counters
	log         *zap.Logger

	mu      sync.Mutex
	closing bool
	live    map[string]*relayConn // by advertised relay address
}

var _ pturn.RelayAddressGenerator = (*relayGenerator)(nil)

func (g *relayGenerator) Validate() error {
	if !g.bindIP.IsValid() || !g.advertiseIP.IsValid() {
		return ErrNoRelayAddress
	}
	return nil
}

// AllocatePacketConn opens a UDP relay socket. An empty UserID marks pion
// probing for a free even port (EVEN-PORT requests): it closes that socket
// straight away, so it is neither counted, capped nor logged.
func (g *relayGenerator) AllocatePacketConn(c pturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if (c.Network == "udp6") != g.advertiseIP.Is6() {
		return nil, nil, fmt.Errorf("%w: %s", ErrAddressFamily, c.Network)
	}
	if c.UserID == "" {
		return g.listen(c.Network, c.RequestedPort)
	}

	g.mu.Lock()
	closing := g.closing
	g.mu.Unlock()
	if closing {
		return nil, nil, ErrClosed
	}
	if !g.quota.acquire(c.UserID) {
		g.stats.quotaRejected.Add(1)
		return nil, nil, ErrQuota
	}
	pc, relayAddr, err := g.listen(c.Network, c.RequestedPort)
	if err != nil {
		g.quota.release(c.UserID)
		return nil, nil, err
	}

	rc := &relayConn{PacketConn: pc, gen: g, user: c.UserID, relayAddr: relayAddr, started: time.Now()}
	g.mu.Lock()
	if g.closing { // Close ran while we were opening the socket
		g.mu.Unlock()
		_ = pc.Close()
		g.quota.release(c.UserID)
		return nil, nil, ErrClosed
	}
	g.live[relayAddr.String()] = rc
	g.mu.Unlock()
	if g.maxLifetime > 0 {
		rc.capTimer.Store(time.AfterFunc(g.maxLifetime, func() { rc.end("max-lifetime") }))
	}
	g.stats.allocations.Add(1)
	return rc, relayAddr, nil
}

// AllocateListener refuses RFC 6062 TCP relays (see the package comment).
func (g *relayGenerator) AllocateListener(pturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

// AllocateConn refuses RFC 6062 outbound connections (see the package comment).
func (g *relayGenerator) AllocateConn(pturn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrTCPRelay
}

// listen binds a UDP socket on the relay address: the requested port when
// pion asks for one (EVEN-PORT/RESERVATION-TOKEN), else a random port in the
// configured range, else any port.
func (g *relayGenerator) listen(network string, port int) (net.PacketConn, net.Addr, error) {
	if g.portMin == 0 {
		return g.listenPort(network, port)
	}
	if port != 0 {
		// A RESERVATION-TOKEN asks for the port after a reserved one, which
		// can be one past the end of the range the firewall lets through.
		if port < g.portMin || port > g.portMax {
			return nil, nil, fmt.Errorf("turn: requested relay port %d outside %d-%d", port, g.portMin, g.portMax)
		}
		return g.listenPort(network, port)
	}
	// Scan from a random start: starting at the bottom every time would
	// retry the same busy ports first. A bounded scan (rather than random
	// probes) is sure to find a free port in a small range.
	span := g.portMax - g.portMin + 1
	start := rand.IntN(span)
	var lastErr error
	for i := range min(span, 64) {
		pc, addr, err := g.listenPort(network, g.portMin+(start+i)%span)
		if err == nil {
			return pc, addr, nil
		}
		lastErr = err
	}
	return nil, nil, fmt.Errorf("turn: no free relay port in %d-%d: %w", g.portMin, g.portMax, lastErr)
}

func (g *relayGenerator) listenPort(network string, port int) (net.PacketConn, net.Addr, error) {
	pc, err := net.ListenPacket(network, net.JoinHostPort(g.bindIP.String(), strconv.Itoa(port)))
	if err != nil {
		return nil, nil, err
	}
	bound, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("turn: relay socket has address type %T", pc.LocalAddr())
	}
	return pc, &net.UDPAddr{IP: g.advertiseIP.AsSlice(), Port: bound.Port}, nil
}

// noteClient records which client owns a relay address, so that the log
// line at the allocation's end can name it. pion reports the client only in
// its OnAllocationCreated event, after the socket exists.
func (g *relayGenerator) noteClient(relayAddr, client net.Addr, transport string) {
	if relayAddr == nil || client == nil {
		return
	}
	g.mu.Lock()
	rc := g.live[relayAddr.String()]
	g.mu.Unlock()
	if rc != nil {
		rc.client.Store(&clientInfo{addr: client.String(), transport: transport})
	}
}

// shutdown refuses new relays and ends every live one, so that Close
// returns with all relay sockets closed and logged rather than leaving that
// to pion's read loops, which stop in the background.
func (g *relayGenerator) shutdown() {
	g.mu.Lock()
	g.closing = true
	conns := make([]*relayConn, 0, len(g.live))
	for _, rc := range g.live {
		conns = append(conns, rc)
	}
	g.mu.Unlock()
	for _, rc := range conns {
		rc.end("server-closed")
	}
}

func (g *relayGenerator) forget(rc *relayConn) {
	g.mu.Lock()
	if g.live[rc.relayAddr.String()] == rc {
		delete(g.live, rc.relayAddr.String())
	}
	g.mu.Unlock()
	g.quota.release(rc.user)
}

type clientInfo struct {
	addr, transport string
}

// relayConn is an allocation's relay socket. Reads are datagrams from peers
// on their way to the client, writes are the client's datagrams to peers.
// The counters are per allocation and added up only at the end, so the
// packet path touches no shared cache line.
type relayConn struct {
	net.PacketConn
	gen       *relayGenerator
	user      string
	relayAddr net.Addr
	started   time.Time
	capTimer  atomic.Pointer[time.Timer] // atomic: the timer can fire before the Store
	client    atomic.Pointer[clientInfo]

	bytesIn, packetsIn   atomic.Uint64 // peer → client
	bytesOut, packetsOut atomic.Uint64 // client → peer

	endOnce sync.Once
	err     error // of closing the socket, set inside endOnce
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if n > 0 {
		c.bytesIn.Add(uint64(n))
		c.packetsIn.Add(1)
	}
	return n, addr, err
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	if n > 0 {
		c.bytesOut.Add(uint64(n))
		c.packetsOut.Add(1)
	}
	return n, err
}

// LocalAddr is the advertised relay address rather than the bound one, so
// pion and its logs agree with what the client was told.
func (c *relayConn) LocalAddr() net.Addr { return c.relayAddr }

// Close is called by pion when the allocation is deleted. It may run more
// than once and concurrently with end; only the first call does anything.
func (c *relayConn) Close() error {
	c.end("deleted")
	return c.err
}

// end closes the socket, frees the quota slot and logs the allocation's
// totals. When we close the socket ourselves (lifetime cap, shutdown), pion's
// relay read loop fails and deletes the allocation, which is how a cap is
// enforced without access to pion's allocation manager.
func (c *relayConn) end(reason string) {
	c.endOnce.Do(func() {
		if t := c.capTimer.Load(); t != nil {
			t.Stop()
		}
		if err := c.PacketConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.err = err
		}
		c.gen.forget(c)

		in, out := c.bytesIn.Load(), c.bytesOut.Load()
		c.gen.stats.bytesToClients.Add(in)
		c.gen.stats.bytesToPeers.Add(out)
		fields := []zap.Field{
			zap.String("user", c.user),
			zap.Stringer("relay", c.relayAddr),
			zap.String("reason", reason),
			zap.Duration("duration", time.Since(c.started)),
			zap.Uint64("bytes_to_peers", out),
			zap.Uint64("packets_to_peers", c.packetsOut.Load()),
			zap.Uint64("bytes_from_peers", in),
			zap.Uint64("packets_from_peers", c.packetsIn.Load()),
		}
		if ci := c.client.Load(); ci != nil {
			fields = append(fields, zap.String("client", ci.addr), zap.String("transport", ci.transport))
		}
		c.gen.log.Info("turn allocation ended", fields...)
	})
}
