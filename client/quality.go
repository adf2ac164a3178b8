package client

import (
	"context"
	"encoding/json"
	"sync"

	"consult/protocol"
)

// Network quality (docs/protocol.md, "Network quality"). The server sends
// a call's members a quality message every two seconds when something
// changed; it is state, not an event, so the client keeps only the latest
// (Quality, AwaitQuality) and it never fills the inbox of Await.

// ReportLink sends the client's own view of its media link (link-stats):
// what the server grades this member by on the direct path, where media
// never reaches it, and on the SFU path until the server has figures. The
// server keeps at most one a second.
func (c *Client) ReportLink(s protocol.LinkStats) error {
	return c.Send(protocol.TypeLinkStats, s)
}

// Quality returns the latest quality message, false before the first.
func (c *Client) Quality() (protocol.Quality, bool) {
	c.quality.mu.Lock()
	defer c.quality.mu.Unlock()
	return c.quality.latest, c.quality.have
}

// AwaitQuality waits until the latest quality message satisfies match
// (nil: any) and returns it. One already there counts; messages that came
// and went while match was not being asked are not seen.
func (c *Client) AwaitQuality(ctx context.Context, match func(protocol.Quality) bool) (protocol.Quality, error) {
	for {
		c.quality.mu.Lock()
		q, have, ch := c.quality.latest, c.quality.have, c.quality.changed
		c.quality.mu.Unlock()
		if have && (match == nil || match(q)) {
			return q, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return protocol.Quality{}, ctx.Err()
		case <-c.done:
			return protocol.Quality{}, errClosed
		}
	}
}

// qualityBox holds the latest quality message.
type qualityBox struct {
	mu      sync.Mutex
	latest  protocol.Quality
	have    bool
	changed chan struct{} // closed and replaced on each message
}

func (b *qualityBox) set(raw []byte) {
	var q protocol.Quality
	if json.Unmarshal(raw, &q) != nil {
		return
	}
	b.mu.Lock()
	b.latest, b.have = q, true
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
	b.mu.Unlock()
}
