// Package shaper is a TURN relay on loopback that impairs what it relays,
// for tests: this kernel has no netem, so a page (or a Go client) that must
// see a weak or broken network is forced to send all its media through
// this relay (ICE transport policy "relay", this as its only ICE server),
// and the relay applies, per direction, a rate cap (a token bucket with a
// bounded queue: what does not fit is dropped, as a congested link drops),
// random loss, delay with jitter, and blackouts. Everything stays on
// 127.0.0.1.
package shaper

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pturn "github.com/pion/turn/v5"
)

// Link describes one direction of the shaped path. Zero values impair
// nothing.
type Link struct {
	// Kbps caps the rate; what would wait longer than Queue is dropped.
	Kbps  int
	Queue time.Duration // 200 ms when zero
	// Loss drops this share of packets (0..1), at random.
	Loss float64
	// Delay and Jitter delay each packet by Delay ± Jitter (uniform),
	// keeping their order.
	Delay, Jitter time.Duration
}

// Shaper is a running relay. Up is the client's uplink (client → peer),
// Down its downlink (peer → client).
type Shaper struct {
	srv  *pturn.Server
	addr *net.UDPAddr

	mu       sync.Mutex
	up, down Link
	blackout bool
	conns    []*conn
}

// Credentials of the relay (long-term, fixed).
const (
	User  = "shaped"
	Pass  = "shaped"
	realm = "shaper.test"
)

// Start runs a relay on a free loopback UDP port.
func Start() (*Shaper, error) {
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Shaper{addr: l.LocalAddr().(*net.UDPAddr)}
	key := pturn.GenerateAuthKey(User, realm, Pass)
	s.srv, err = pturn.NewServer(pturn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *pturn.RequestAttributes) (string, []byte, bool) {
			return User, key, ra.Username == User
		},
		PacketConnConfigs: []pturn.PacketConnConfig{{PacketConn: l, RelayAddressGenerator: s}},
	})
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	return s, nil
}

// URL is the relay's ICE server URL.
func (s *Shaper) URL() string { return "turn:" + s.addr.String() + "?transport=udp" }

// Set changes both directions' impairments, for new and running relays.
func (s *Shaper) Set(up, down Link) {
	s.mu.Lock()
	s.up, s.down = up, down
	s.mu.Unlock()
}

// Blackout drops everything both ways while on.
func (s *Shaper) Blackout(on bool) {
	s.mu.Lock()
	s.blackout = on
	s.mu.Unlock()
}

// Counts is what one direction of the relay did with the packets that
// reached it.
type Counts struct {
	Offered uint64 // packets that reached the relay
	// Overflowed is what the rate cap dropped, its queue full: what a
	// sender that outran a link made the link drop (random loss and
	// blackouts are not counted).
	Overflowed uint64
}

// Down is the downlink's counts so far, over every relay socket.
func (s *Shaper) Down() Counts {
	s.mu.Lock()
	conns := append([]*conn(nil), s.conns...)
	s.mu.Unlock()
	var c Counts
	for _, sc := range conns {
		c.Offered += sc.down.offered.Load()
		c.Overflowed += sc.down.overflowed.Load()
	}
	return c
}

// Close stops the relay and its allocations.
func (s *Shaper) Close() error {
	err := s.srv.Close()
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

// Validate, AllocatePacketConn, AllocateListener and AllocateConn make the
// shaper pion's relay address generator: every UDP relay socket is shaped.
func (s *Shaper) Validate() error { return nil }

// AllocatePacketConn opens a shaped relay socket on loopback.
func (s *Shaper) AllocatePacketConn(c pturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.RequestedPort)))
	if err != nil {
		return nil, nil, err
	}
	sc := newConn(s, pc)
	s.mu.Lock()
	s.conns = append(s.conns, sc)
	s.mu.Unlock()
	return sc, pc.LocalAddr(), nil
}

// AllocateListener refuses TCP relays.
func (s *Shaper) AllocateListener(pturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, fmt.Errorf("shaper: no TCP relays")
}

// AllocateConn refuses TCP relays.
func (s *Shaper) AllocateConn(pturn.AllocateConnConfig) (net.Conn, error) {
	return nil, fmt.Errorf("shaper: no TCP relays")
}

// rules returns the current impairments of a direction.
func (s *Shaper) rules(up bool) (Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up {
		return s.up, s.blackout
	}
	return s.down, s.blackout
}

// conn is one relay socket. WriteTo is the client's uplink: packets wait
// in the up queue and leave when it says. What the socket reads (the
// downlink) is shaped in the same way before pion's ReadFrom returns it.
type conn struct {
	net.PacketConn
	s        *Shaper
	up, down *pipe
	in       chan datagram // shaped downlink packets for ReadFrom
	done     chan struct{}
	once     sync.Once
}

type datagram struct {
	b    []byte
	addr net.Addr
}

func newConn(s *Shaper, pc net.PacketConn) *conn {
	c := &conn{PacketConn: pc, s: s, in: make(chan datagram, 1024), done: make(chan struct{})}
	c.up = newPipe(func(d datagram) { _, _ = c.PacketConn.WriteTo(d.b, d.addr) }, c.done)
	c.down = newPipe(func(d datagram) {
		select {
		case c.in <- d:
		default: // the relay is not reading: a full socket buffer drops
		}
	}, c.done)
	go c.readLoop()
	return c
}

func (c *conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	l, black := c.s.rules(true)
	c.up.offer(append([]byte(nil), b...), addr, l, black)
	return len(b), nil
}

func (c *conn) readLoop() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			_ = c.Close()
			return
		}
		l, black := c.s.rules(false)
		c.down.offer(append([]byte(nil), buf[:n]...), addr, l, black)
	}
}

func (c *conn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.addr, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.PacketConn.Close()
	})
	return err
}

// pipe is one direction of a relay socket: a queue of packets, each
// leaving at its time, in order.
type pipe struct {
	deliver func(datagram)
	done    <-chan struct{}

	offered, overflowed atomic.Uint64

	mu      sync.Mutex
	free    time.Time // when the link is free again (rate cap)
	last    time.Time // when the last queued packet leaves (keeps order)
	queue   []timed
	wake    chan struct{}
	randGen *rand.Rand
}

type timed struct {
	at time.Time
	d  datagram
}

func newPipe(deliver func(datagram), done <-chan struct{}) *pipe {
	p := &pipe{deliver: deliver, done: done, wake: make(chan struct{}, 1),
		randGen: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	go p.run()
	return p
}

// offer applies the link's rules to one packet: dropped, or queued to
// leave when the rate cap and the delay allow.
func (p *pipe) offer(b []byte, addr net.Addr, l Link, blackout bool) {
	p.offered.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if blackout || l.Loss > 0 && p.randGen.Float64() < l.Loss {
		return
	}
	now := time.Now()
	leave := now
	if l.Kbps > 0 {
		queue := l.Queue
		if queue <= 0 {
			queue = 200 * time.Millisecond
		}
		start := later(now, p.free)
		if start.Sub(now) > queue {
			p.overflowed.Add(1)
			return // the queue is full: a congested link drops
		}
		p.free = start.Add(time.Duration(len(b)*8) * time.Second / time.Duration(l.Kbps*1000))
		leave = p.free
	}
	if l.Delay > 0 || l.Jitter > 0 {
		j := time.Duration(0)
		if l.Jitter > 0 {
			j = time.Duration(p.randGen.Int64N(int64(2*l.Jitter))) - l.Jitter
		}
		leave = leave.Add(max(0, l.Delay+j))
	}
	leave = later(leave, p.last)
	p.last = leave
	p.queue = append(p.queue, timed{at: leave, d: datagram{b: b, addr: addr}})
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run sends each queued packet at its time.
func (p *pipe) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.mu.Lock()
		var next time.Time
		for len(p.queue) > 0 && !p.queue[0].at.After(time.Now()) {
			d := p.queue[0].d
			p.queue = p.queue[1:]
			p.mu.Unlock()
			p.deliver(d)
			p.mu.Lock()
		}
		if len(p.queue) > 0 {
			next = p.queue[0].at
		}
		p.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-p.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-p.done:
			return
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
