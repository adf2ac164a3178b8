package signaling_test

import (
	"testing"

	"github.com/gorilla/websocket"
)

// rawConn is a WebSocket that never reads, so it never answers pings:
// what a client on a dead network looks like to the server.
type rawConn struct{ ws *websocket.Conn }

func (e *env) dialRaw(t *testing.T) *rawConn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &rawConn{ws: ws}
}

func (r *rawConn) send(t *testing.T, msg string) {
	t.Helper()
	if err := r.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}
