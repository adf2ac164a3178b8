package client

import (
	"encoding/json"

	"consult/protocol"
)

// Views and dynacast (protocol/view.go). A subscriber says how it shows a
// track (View), and the server sends it no larger layer than that needs;
// a publisher hears which of its layers anyone needs (Config.OnLayers),
// and may stop writing the others.

// View tells the server how this client shows a video track it receives:
// the picture's size in pixels (0, 0 if not known) and whether it can be
// seen.
func (c *Client) View(track string, width, height int, visible bool) error {
	return c.Send(protocol.TypeTrackView, protocol.TrackView{Track: track, Width: width, Height: height, Visible: visible})
}

func (c *Client) onLayers(b []byte) {
	if c.cfg.OnLayers != nil {
		var l protocol.Layers
		if json.Unmarshal(b, &l) == nil {
			c.cfg.OnLayers(l)
		}
	}
	c.inbox.push(Event{Type: protocol.TypeLayers, Raw: b})
}
