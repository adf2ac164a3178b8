package signaling

import (
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"consult/protocol"
)

// Chat lets the people of a consult write to each other over their
// signaling sockets: a clinician sends a link, a dosage, or "running five
// minutes late" to a patient who waits. Who reads what follows the room's
// rules of who sees whom: a message to the call reaches its live members;
// a host may write to one member, a waiting guest too; a waiting guest's
// messages reach the hosts only, so patients never see each other. Hosts
// read every message of their room. The room keeps its messages while it
// lives (up to maxChat, the oldest dropped first) and gives each member
// those it may read: at join, and the call's when it is let in; a resumed
// session gets what it missed like any message. Each member may send
// chatBurst messages at once and chatRate a second after that. Messages
// are patient data: logs carry their ids and lengths, never their text.

const (
	maxChat   = 1000 // messages kept per room
	chatRate  = 1    // messages per second, sustained
	chatBurst = 5
)

// chatEntry is a kept message with the identities it was from and to, so
// that a member who reloads (a new id, the same identity) still reads its
// conversation.
type chatEntry struct {
	msg      protocol.ChatMessage
	from, to string // identities; to is empty unless one member's
}

// mayRead reports whether m may read e.
func (m *member) mayRead(e *chatEntry) bool {
	switch {
	case e.from == m.identity || e.to != "" && e.to == m.identity:
		return true
	case may(m, actAdmit):
		return true
	case e.msg.To == "":
		return m.live
	}
	return false
}

// chatSeenLocked is the room's messages m may read, oldest first. Called
// with s.mu held.
func (r *room) chatSeenLocked(m *member) []protocol.ChatMessage {
	out := []protocol.ChatMessage{}
	for i := range r.chat {
		if m.mayRead(&r.chat[i]) {
			out = append(out, r.chat[i].msg)
		}
	}
	return out
}

// chatCatchUpLocked sends m the messages it may read now that it is in
// the call. Called with s.mu held.
func (r *room) chatCatchUpLocked(m *member) {
	if len(r.chat) > 0 {
		m.send(protocol.TypeChatHistory, protocol.ChatHistory{Messages: r.chatSeenLocked(m)})
	}
}

// chat sends m's message to those who may read it, m included (its copy
// says the server took it).
func (s *Server) chat(m *member, ref string, c *protocol.Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !present(m) {
		return
	}
	if m.chatLimit == nil {
		m.chatLimit = rate.NewLimiter(chatRate, chatBurst)
	}
	if !m.chatLimit.Allow() {
		m.replyError(ref, protocol.ErrRateLimited, "you are sending messages too fast; wait a few seconds, then send it again")
		return
	}
	r := m.room
	host := may(m, actAdmit)
	e := chatEntry{from: m.identity, msg: protocol.ChatMessage{ID: newID(), From: m.id, FromName: m.name, FromRole: m.role,
		To: c.To, Text: c.Text, At: time.Now().UnixMilli()}}
	switch {
	case c.To == protocol.ChatToHosts:
	case c.To != "":
		t := r.find(c.To)
		switch {
		case !host:
			m.replyError(ref, protocol.ErrForbidden, "only a clinician can write to one person; write to everyone in the call")
			return
		case t == nil:
			m.replyError(ref, protocol.ErrNotFound, "that participant is not in the room")
			return
		}
		e.to = t.identity
	case !m.live && !host:
		e.msg.To = protocol.ChatToHosts // a waiting guest writes to the clinicians
	}
	if len(r.chat) >= maxChat {
		r.chat = append(r.chat[:0], r.chat[1:]...)
	}
	r.chat = append(r.chat, e)
	b, err := protocol.Encode(protocol.TypeChat, protocol.ChatEvent{Message: e.msg})
	if err != nil {
		return
	}
	readers := 0
	for _, o := range r.members {
		if o.mayRead(&e) {
			o.sendRaw(b)
			readers++
		}
	}
	m.log.Info("chat", zap.String("message", e.msg.ID), zap.String("to", e.msg.To), zap.Int("chars", len([]rune(e.msg.Text))),
		zap.Int("readers", readers))
}

// ChatExport is GET /api/rooms/{room}/chat: a running room's messages,
// for the consult's record.
type ChatExport struct {
	Room     string                 `json:"room"`
	Exported int64                  `json:"exported"` // Unix ms
	Messages []protocol.ChatMessage `json:"messages"`
}

// serveChat exports a room's messages (its admin or host).
func (s *Server) serveChat(w http.ResponseWriter, r *http.Request) {
	name, ok := s.roomFor(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	rm := s.rooms[name]
	var out ChatExport
	if rm != nil {
		out = ChatExport{Room: name, Exported: time.Now().UnixMilli(), Messages: make([]protocol.ChatMessage, 0, len(rm.chat))}
		for _, e := range rm.chat {
			out.Messages = append(out.Messages, e.msg)
		}
	}
	s.mu.Unlock()
	if rm == nil {
		http.Error(w, "no such room (its messages go with it)", http.StatusNotFound)
		return
	}
	writeJSON(w, out)
}
