package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"consult/protocol"
)

// In a cluster, a room lives on one node; a join or resume that reaches
// another is answered with redirect (docs/cluster.md). The client follows
// it on its own: it opens a socket to the owner and sends the same join
// there, so Join returns the owner's answer. Resumes always start at
// Config.URL (the cluster's entry, which knows where each session lives)
// and follow redirects the same way.

// maxRedirects bounds a chain of redirects (a placement that moves while
// a client follows it).
const maxRedirects = 3

// redirectTarget reads a redirect message's URL.
func redirectTarget(b []byte) string {
	var r protocol.Redirect
	if json.Unmarshal(b, &r) != nil {
		return ""
	}
	return r.URL
}

// follow opens a socket to url after a redirect and sends the join again
// there. It returns the new socket, or nil after telling Join why not.
func (c *Client) follow(url string) *websocket.Conn {
	c.mu.Lock()
	c.hops++
	hops, join := c.hops, c.joinMsg
	c.mu.Unlock()
	fail := func(why string) *websocket.Conn {
		b, _ := protocol.Encode(protocol.TypeError, protocol.Error{Code: protocol.ErrClusterUnavailable, Ref: protocol.TypeJoin,
			Message: why})
		c.inbox.push(Event{Type: protocol.TypeError, Raw: b})
		return nil
	}
	switch {
	case hops > maxRedirects:
		return fail("too many redirects")
	case url == "":
		return fail("a redirect without a URL")
	}
	stop, cancelStop := contextWithDone(c.stop) // Close ends the dial
	defer cancelStop()
	ctx, cancel := context.WithTimeout(stop, 5*time.Second)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, c.cfg.Header)
	if err != nil {
		return fail(fmt.Sprintf("cannot reach the room's server: %v", err))
	}
	c.wmu.Lock()
	if c.closing.Load() { // Close ran during the dial, on the old socket
		c.wmu.Unlock()
		_ = ws.Close()
		return nil
	}
	c.ws = ws
	c.at = url
	c.wmu.Unlock()
	if join != nil {
		if err := c.SendRaw(join); err != nil {
			_ = ws.Close()
			return fail(fmt.Sprintf("the room's server: %v", err))
		}
	}
	return ws
}

// dialResume dials url and presents token, following redirects; it
// returns the socket and the server's first answer.
func (c *Client) dialResume(ctx context.Context, url, token string) (*websocket.Conn, []byte, error) {
	for range maxRedirects + 1 {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, c.cfg.Header)
		if err != nil {
			return nil, nil, err
		}
		b, _ := protocol.Encode(protocol.TypeResume, protocol.Resume{Token: token})
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			_ = ws.Close()
			return nil, nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = ws.SetReadDeadline(dl)
		}
		_, reply, err := ws.ReadMessage()
		_ = ws.SetReadDeadline(time.Time{})
		if err != nil {
			_ = ws.Close()
			return nil, nil, err
		}
		var head struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(reply, &head)
		if head.Type != protocol.TypeRedirect {
			c.wmu.Lock()
			c.at = url
			c.wmu.Unlock()
			return ws, reply, nil
		}
		_ = ws.Close()
		if url = redirectTarget(reply); url == "" {
			return nil, nil, fmt.Errorf("client: a redirect without a URL")
		}
	}
	return nil, nil, fmt.Errorf("client: too many redirects")
}

// URL is the signaling URL the client is connected to now: Config.URL,
// or the node a redirect sent it to.
func (c *Client) URL() string {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.at
}
