package turn

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// streamListener wraps a TCP or TLS listener handed to pion to fix three
// things pion's accept loop does not do:
//
//   - pion stops accepting for good on the first Accept error, so running out
//     of file descriptors once would silently kill TURN over TCP until
//     restart. Accept here retries transient errors with a backoff.
//   - pion never closes accepted connections when the server closes; a
//     connected client could keep allocating. Close here closes them all.
//   - pion reads with no deadline, so idle connections (or ones that never
//     finish a TLS handshake) pin a goroutine and a descriptor forever. Each
//     connection here is closed after idle time without a byte received.
type streamListener struct {
	net.Listener
	idle time.Duration
	log  *zap.Logger

	mu     sync.Mutex
	closed bool
	conns  map[*idleConn]struct{}
}

func newStreamListener(l net.Listener, idle time.Duration, log *zap.Logger) *streamListener {
	return &streamListener{Listener: l, idle: idle, log: log, conns: make(map[*idleConn]struct{})}
}

func (l *streamListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return l.track(c)
		}
		if !transientAcceptError(err) {
			return nil, err
		}
		l.log.Warn("turn accept failed, retrying", zap.Stringer("listener", l.Addr()), zap.Error(err))
		// Back off like net/http does: the condition (descriptor
		// exhaustion) clears only as other connections close.
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

func (l *streamListener) track(c net.Conn) (net.Conn, error) {
	ic := &idleConn{Conn: c, idle: l.idle, owner: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[ic] = struct{}{}
	return ic, nil
}

func (l *streamListener) untrack(c *idleConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Close closes the listener and every connection it accepted.
func (l *streamListener) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := make([]*idleConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

// transientAcceptError reports errors after which accepting can succeed
// again: resource exhaustion and connections reset before we accepted them.
func transientAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idleConn pushes its read deadline forward as reads happen, so a
// connection is closed after between 3/4 idle and idle without a byte from
// the client. The deadline moves at most every idle/4: resetting the
// runtime's timer on every read would cost more than the read.
type idleConn struct {
	net.Conn
	idle      time.Duration
	owner     *streamListener
	extended  atomic.Int64 // unix nanos of the last deadline update
	closeOnce sync.Once
}

func (c *idleConn) Read(p []byte) (int, error) {
	now := time.Now()
	if now.UnixNano()-c.extended.Load() > int64(c.idle/4) {
		if err := c.Conn.SetReadDeadline(now.Add(c.idle)); err != nil {
			return 0, err
		}
		c.extended.Store(now.UnixNano())
	}
	return c.Conn.Read(p)
}

func (c *idleConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.owner.untrack(c)
	})
	return err
}
