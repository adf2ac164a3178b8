package client

import (
	"context"
	"encoding/json"
	"sync"

	"consult/protocol"
)

// Speakers: the server's speaker messages (protocol.Speaker) say who the
// room's dominant speaker is and who speaks now. Each replaces the ones
// before it, so the client keeps only the latest, outside the inbox: a
// long call's hundreds of them would push out of it the events a caller
// awaits. Config.OnSpeaker sees every one.

// speakerBox holds the latest speaker message.
type speakerBox struct {
	mu      sync.Mutex
	cur     protocol.Speaker
	changed chan struct{} // closed and replaced at each message
}

func newSpeakerBox() *speakerBox { return &speakerBox{changed: make(chan struct{})} }

// onSpeaker takes a speaker message from the reader goroutine.
func (c *Client) onSpeaker(b []byte) {
	var sp protocol.Speaker
	if json.Unmarshal(b, &sp) != nil {
		return
	}
	if sp.Active == nil {
		sp.Active = []string{}
	}
	box := c.speakers
	box.mu.Lock()
	box.cur = sp
	close(box.changed)
	box.changed = make(chan struct{})
	box.mu.Unlock()
	if f := c.cfg.OnSpeaker; f != nil {
		f(sp)
	}
}

// Speaker is the room's speakers as the server last said (the zero value
// before its first speaker message).
func (c *Client) Speaker() protocol.Speaker {
	c.speakers.mu.Lock()
	defer c.speakers.mu.Unlock()
	return c.speakers.cur
}

// AwaitSpeaker returns the latest speaker message once ok accepts it,
// checking it now and at each new message. Messages that come faster than
// it looks may be passed over: to see every one, use Config.OnSpeaker.
func (c *Client) AwaitSpeaker(ctx context.Context, ok func(protocol.Speaker) bool) (protocol.Speaker, error) {
	box := c.speakers
	for {
		box.mu.Lock()
		cur, ch := box.cur, box.changed
		box.mu.Unlock()
		if ok(cur) {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return cur, ctx.Err()
		case <-c.done:
			return cur, errClosed
		}
	}
}
