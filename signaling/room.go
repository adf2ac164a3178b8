package signaling

import (
	"crypto/rand"
	"encoding/hex"

	"go.uber.org/zap"

	"consult/protocol"
)

// room is a room's presence and call state; guarded by Server.mu.
type room struct {
	name     string
	capacity int
	members  []*member        // in join order
	calls    map[string]*call // ringing calls by callee id
	// recording is whether a recording of the room runs (clients show it).
	recording bool
}

// member is one present participant.
type member struct {
	id, name, identity string
	room               *room
	conn               *conn
	grants             Grants
	live               bool
	audioMuted         bool
	videoMuted         bool
	peer               Peer // set while live and the media session exists
	gen                int  // counts media sessions, to ignore a stale one's events
	tracks             []protocol.Track
	log                *zap.Logger
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *room) find(id string) *member {
	for _, m := range r.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (r *room) liveCount() int {
	n := 0
	for _, m := range r.members {
		if m.live {
			n++
		}
	}
	return n
}

func (r *room) remove(m *member) {
	for i, x := range r.members {
		if x == m {
			r.members = append(r.members[:i], r.members[i+1:]...)
			return
		}
	}
}

// broadcast sends to every member but skip (which may be nil).
func (r *room) broadcast(skip *member, typ string, body any) {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		return
	}
	for _, m := range r.members {
		if m != skip {
			m.conn.send(b)
		}
	}
}

func (m *member) view() protocol.Participant {
	tracks := append([]protocol.Track{}, m.tracks...)
	return protocol.Participant{ID: m.id, Name: m.name, Live: m.live,
		AudioMuted: m.audioMuted, VideoMuted: m.videoMuted, Tracks: tracks}
}

func (r *room) mode() string { return protocol.ModeSFU }
