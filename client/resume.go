package client

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// Resume and ICE restart, the client's side (docs/protocol.md, "Resume").
// A socket that drops is replaced by a new one that presents the resume
// token: the session, its calls and its PeerConnections carry on, and the
// server sends what was missed. A PeerConnection whose path goes silent,
// or whose network changed, restarts ICE: the client offers a restart on
// the connections it offers and asks the server for one on the other.

type resumeState struct {
	token string
	grace time.Duration
}

// resumeDelays are the waits before each attempt: the first ones fast (a
// blip, a Wi-Fi hand-over), then steady, while the server keeps the
// session.
var resumeDelays = []time.Duration{0, 250 * time.Millisecond, time.Second}

const resumeEvery = 2 * time.Second

// errResumeExpired is what a resume the server no longer takes returns.
var errResumeExpired = errors.New("client: " + protocol.ErrResumeExpired)

// run reads the socket and, when it drops, takes the session back on a
// new one if the client resumes; Done closes when nothing is left.
func (c *Client) run(ws *websocket.Conn) {
	defer close(c.done)
	for ws != nil {
		c.readLoop(ws)
		c.mu.Lock()
		to, redirected := c.redirect, c.redirected
		c.redirect, c.redirected = "", false
		c.mu.Unlock()
		switch {
		case c.closing.Load():
			return
		case redirected:
			_ = ws.Close()
			ws = c.follow(to)
		case !c.cfg.Resume:
			return
		default:
			ws = c.reconnect()
		}
	}
}

// reconnect tries resumes until one works, the server says the session is
// over, or the grace period has passed. It returns the new socket.
func (c *Client) reconnect() *websocket.Conn {
	c.mu.Lock()
	st := c.resume
	c.mu.Unlock()
	if st.token == "" {
		return nil
	}
	deadline := time.Now().Add(st.grace)
	ctx, cancel := contextWithDone(c.stop)
	defer cancel()
	for i := 0; time.Now().Before(deadline); i++ {
		wait := resumeEvery
		if i < len(resumeDelays) {
			wait = resumeDelays[i]
		}
		select {
		case <-time.After(wait):
		case <-c.stop:
			return nil
		}
		ws, err := c.resumeOn(ctx, time.Until(deadline))
		switch {
		case err == nil:
			return ws
		case errors.Is(err, errResumeExpired):
			c.inbox.push(Event{Type: protocol.ErrResumeExpired, Raw: []byte(`{}`)})
			return nil
		}
	}
	c.inbox.push(Event{Type: protocol.ErrResumeExpired, Raw: []byte(`{}`)})
	return nil
}

// resumeOn dials and presents the token; on success the new socket is
// the client's.
func (c *Client) resumeOn(ctx context.Context, bound time.Duration) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, min(bound, 5*time.Second))
	defer cancel()
	c.mu.Lock()
	token := c.resume.token
	c.mu.Unlock()
	ws, reply, err := c.dialResume(ctx, c.cfg.URL, token)
	if err != nil {
		return nil, err
	}
	var head struct {
		Type string `json:"type"`
		Code string `json:"code"`
	}
	_ = json.Unmarshal(reply, &head)
	if head.Type != protocol.TypeResumed {
		_ = ws.Close()
		if head.Code == protocol.ErrResumeExpired {
			return nil, errResumeExpired
		}
		return nil, errors.New("client: resume refused: " + string(reply))
	}
	var r protocol.Resumed
	_ = json.Unmarshal(reply, &r)
	c.mu.Lock()
	c.resume.token = r.ResumeToken
	c.mu.Unlock()
	c.wmu.Lock()
	c.ws = ws
	c.wmu.Unlock()
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(reply)
	}
	c.inbox.push(Event{Type: protocol.TypeResumed, Raw: reply})
	if r.AddressChanged {
		c.later(func() { c.restartPublish(true) })
	}
	return ws, nil
}

// DropSocket closes the signaling socket as a network would, leaving the
// session to resume (tests of resume; Close ends everything instead).
func (c *Client) DropSocket() {
	c.wmu.Lock()
	_ = c.ws.Close()
	c.wmu.Unlock()
}

// RestartICE restarts ICE on every PeerConnection: after a change of
// network (the app knows, as a browser's online event says), or when a
// path went silent. The publish connection is re-offered with new
// credentials, the server is asked to re-offer the subscribe one, and the
// direct one is re-offered to the peer.
func (c *Client) RestartICE() {
	c.later(func() {
		c.restartPublish(true)
		c.mu.Lock()
		sub, d := c.sub, c.direct
		c.mu.Unlock()
		if sub != nil {
			_ = c.Send(protocol.TypeICERestart, protocol.ICERestart{PC: protocol.PCSubscribe})
		}
		if d != nil && d.up {
			c.offerDirect(d, true)
		}
	})
}

// restartPublish re-offers the publish connection with ICE restart: when
// forced (the network changed), or while it is down. A restart asked for
// while the path was down may run after it came back by itself, and
// restarting a working path stalls it for the checks of the new one.
// Runs on the worker.
func (c *Client) restartPublish(force bool) {
	c.mu.Lock()
	pub := c.pub
	c.mu.Unlock()
	if pub == nil || !force && pub.ConnectionState() == webrtc.PeerConnectionStateConnected {
		return
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	ctx, cancel := contextWithDone(c.done)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 10*time.Second)
	defer cancelT()
	_ = c.negotiate(ctx, pub, true)
}

// restartDebounce is how long a PeerConnection may stay disconnected
// before the client restarts ICE on it (the server notices after 2 s and
// asks too; both asking is harmless).
const restartDebounce = time.Second

// watchPath restarts ICE on pc (named name) when it stays disconnected or
// fails.
func (c *Client) watchPath(name string, s webrtc.PeerConnectionState, pc *webrtc.PeerConnection) {
	if s != webrtc.PeerConnectionStateDisconnected && s != webrtc.PeerConnectionStateFailed {
		return
	}
	time.AfterFunc(restartDebounce, func() {
		st := pc.ConnectionState()
		if st != webrtc.PeerConnectionStateDisconnected && st != webrtc.PeerConnectionStateFailed {
			return
		}
		c.mu.Lock()
		current := c.pub == pc || c.sub == pc
		c.mu.Unlock()
		if !current {
			return
		}
		switch name {
		case protocol.PCPublish:
			c.later(func() { c.restartPublish(false) })
		case protocol.PCSubscribe:
			_ = c.Send(protocol.TypeICERestart, protocol.ICERestart{PC: protocol.PCSubscribe})
		}
	})
}
