package signaling

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"consult/protocol"
)

const (
	sendQueue    = 256             // messages; a client this far behind is cut off
	writeTimeout = 5 * time.Second // per message
	hardLimit    = 1 << 20         // beyond this a frame closes the socket
)

// conn is one WebSocket client: one reader goroutine (which also handles
// messages, so a client's messages are processed in order) and one writer
// goroutine fed by a bounded queue.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	host string // the host name the client used, without port
	addr string // the client's IP
	log  *zap.Logger
	out  chan []byte // nil entry: flush and close
	quit chan struct{}
	once sync.Once
	lim  *rate.Limiter
	// lastLimitErr throttles rate-limit errors; reader goroutine only.
	lastLimitErr time.Time

	member *member // guarded by s.mu
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	up := websocket.Upgrader{CheckOrigin: s.cfg.CheckOrigin}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	addr := r.RemoteAddr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	c := &conn{s: s, ws: ws, host: host, addr: addr, log: s.log.With(zap.String("remote", r.RemoteAddr)),
		out: make(chan []byte, sendQueue), quit: make(chan struct{}),
		lim: rate.NewLimiter(rate.Limit(s.cfg.MessageRate), s.cfg.MessageBurst)}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.writeLoop()
	c.readLoop()
	c.close()
	s.socketLost(c)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

func (c *conn) readLoop() {
	c.ws.SetReadLimit(hardLimit)
	wait := c.s.cfg.PongWait
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(wait)) })
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.log.Debug("socket closed", zap.Error(err))
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(wait))
		c.s.counts.messagesIn.Add(1)
		data, err := io.ReadAll(io.LimitReader(r, protocol.MaxMessageSize+1))
		if err != nil {
			return
		}
		if len(data) > protocol.MaxMessageSize {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return // over the hard limit: the socket is gone
			}
			c.sendError("", protocol.ErrTooLarge, "message over 64 KiB refused")
			continue
		}
		if !c.lim.Allow() {
			if now := time.Now(); now.Sub(c.lastLimitErr) > time.Second {
				c.lastLimitErr = now
				c.sendError("", protocol.ErrRateLimited, "too many messages; some were dropped")
			}
			continue
		}
		c.s.handle(c, data)
	}
}

func (c *conn) writeLoop() {
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if b == nil {
				_ = c.ws.WriteMessage(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				c.close()
				return
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.close()
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.close()
				return
			}
		case <-c.quit:
			return
		}
	}
}

// send queues b, cutting off a client that does not keep up rather than
// letting it hold anything else back.
func (c *conn) send(b []byte) {
	select {
	case <-c.quit:
	case c.out <- b:
	default:
		c.log.Warn("client too slow; closing")
		c.close()
	}
}

func (c *conn) sendMsg(typ string, body any) {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		c.log.Error("encode", zap.String("type", typ), zap.Error(err))
		return
	}
	c.send(b)
}

func (c *conn) sendError(ref, code, msg string) {
	c.s.counts.countError(code)
	c.sendMsg(protocol.TypeError, protocol.Error{Code: code, Message: msg, Ref: ref})
}

// closeAfterFlush closes once everything queued so far is written.
func (c *conn) closeAfterFlush() { c.send(nil) }

func (c *conn) close() {
	c.once.Do(func() {
		close(c.quit)
		_ = c.ws.Close()
	})
}
