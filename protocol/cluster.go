package protocol

import "strings"

// Cluster messages and views (docs/cluster.md). In a cluster, a room lives
// on one node. A join or resume that reaches another node is answered with
// redirect: the client opens a socket to URL and sends the same message
// there. Media always goes to the owner, whose address the SDP carries.

const (
	TypeRedirect = "redirect" // server: go to another node (body: Redirect), then the socket closes

	// ErrClusterUnavailable answers a join for a new room while the
	// cluster's coordination (Redis) cannot be reached: running consults
	// go on, new ones wait.
	ErrClusterUnavailable = "cluster-unavailable"
)

// Redirect names the node that holds the room: a WebSocket URL.
type Redirect struct {
	URL  string `json:"url"`
	Room string `json:"room,omitempty"`
}

// Node is one server of a cluster, as GET /api/nodes lists it.
type Node struct {
	ID        string `json:"id"`
	URL       string `json:"url"` // public base URL, http(s)://host[:port]
	MediaAddr string `json:"mediaAddr,omitempty"`
	// Capacity is how many live participants it takes (0: no limit).
	Capacity int      `json:"capacity"`
	Draining bool     `json:"draining"`
	Load     NodeLoad `json:"load"`
	// Rooms is how many rooms are placed on it now (from the placements,
	// fresher than Load.Rooms).
	Rooms int `json:"rooms"`
	// Seen is when it last said it was alive (Unix milliseconds).
	Seen int64 `json:"seen"`
}

// NodeLoad is what a node reports of itself at each heartbeat.
type NodeLoad struct {
	CPU              float64 `json:"cpu"`          // 1-minute load per CPU (0 where unknown)
	Participants     int     `json:"participants"` // live members
	Rooms            int     `json:"rooms"`
	ForwardedBitrate int64   `json:"forwardedBitrate"` // bit/s, server to subscribers
}

// SignalURL is the WebSocket URL of a node's signaling.
func (n Node) SignalURL() string { return n.SocketOrigin() + "/ws" }

// SocketOrigin is the node's URL as a WebSocket origin (ws:// or wss://),
// what a page's connect-src must list to reach it.
func (n Node) SocketOrigin() string {
	u := strings.TrimSuffix(n.URL, "/")
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}
