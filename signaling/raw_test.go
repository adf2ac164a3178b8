package signaling_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"consult/internal/testenv"
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

// read returns the next message as text.
func (r *rawConn) read(t *testing.T) string {
	t.Helper()
	_ = r.ws.SetReadDeadline(time.Now().Add(testenv.Scale(5 * time.Second)))
	_, b, err := r.ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
