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
// read every message of their room, and a host who joins late gets them
// all. A guest reads only what was for it when it was sent: in a room a
// clinician keeps open all day, a patient let in at two never reads the
// call of the patient before (a reload or a resume gives back what it had).
// The room keeps its messages while it lives (up to maxChat; when full, a
// guest's oldest goes before a host's). Each identity may send chatBurst
// messages at once and chatRate a second after that. Messages are patient
// data: logs carry their ids and lengths, never their text.

const (
	maxChat   = 1000 // messages kept per room
	chatRate  = 1    // messages per second, sustained
	chatBurst = 5
)

// chatEntry is a kept message with the identities it was from, to, and
// for when it was sent, so that a member who reloads (a new id, the same
// identity) reads what it read before, and nothing more.
type chatEntry struct {
	msg      protocol.ChatMessage
	from, to string              // identities; to is empty unless one member's
	readers  map[string]struct{} // identities of those it went to
	byHost   bool
}

// mayReceive reports whether a message e, being sent, goes to m.
func (m *member) mayReceive(e *chatEntry) bool {
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

// mayRead reports whether m may read a kept message: a host, any; a
// guest, those that went to it.
func (m *member) mayRead(e *chatEntry) bool {
	if may(m, actAdmit) {
		return true
	}
	_, ok := e.readers[m.identity]
	return ok
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

// keepChatLocked adds e to the room's messages; when they are at the
// bound, the oldest of a guest's goes first (a guest cannot push the
// clinicians' notes out of the record), else the oldest.
func (r *room) keepChatLocked(e chatEntry) {
	if len(r.chat) >= maxChat {
		drop := 0
		for i := range r.chat {
			if !r.chat[i].byHost {
				drop = i
				break
			}
		}
		r.chat = append(r.chat[:drop], r.chat[drop+1:]...)
	}
	r.chat = append(r.chat, e)
}

// chat sends m's message to those who may read it, m included (its copy
// says the server took it).
func (s *Server) chat(m *member, ref string, c *protocol.Chat) {
	s.mu.Lock()
	if !present(m) {
		s.mu.Unlock()
		return
	}
	r := m.room
	refuse := func(code, msg string) {
		m.replyError(ref, code, msg)
		s.mu.Unlock()
	}
	lim := r.chatLimits[m.identity]
	if lim == nil {
		if r.chatLimits == nil {
			r.chatLimits = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(chatRate, chatBurst)
		r.chatLimits[m.identity] = lim
	}
	if !lim.Allow() {
		refuse(protocol.ErrRateLimited, "you are sending messages too fast; wait a few seconds, then send it again")
		return
	}
	host := may(m, actAdmit)
	e := chatEntry{from: m.identity, byHost: host, readers: map[string]struct{}{},
		msg: protocol.ChatMessage{ID: newID(), From: m.id, FromName: m.name, FromRole: m.role,
			To: c.To, Text: c.Text, At: time.Now().UnixMilli()}}
	switch {
	case c.To == protocol.ChatToHosts:
	case c.To != "":
		t := r.find(c.To)
		switch {
		case !host:
			refuse(protocol.ErrForbidden, "only a clinician can write to one person; write to everyone in the call")
			return
		case t == nil:
			refuse(protocol.ErrNotFound, "that participant is not in the room")
			return
		}
		e.to = t.identity
	case !m.live && !host:
		e.msg.To = protocol.ChatToHosts // a waiting guest writes to the clinicians
	}
	b, err := protocol.Encode(protocol.TypeChat, protocol.ChatEvent{Message: e.msg})
	if err != nil {
		s.mu.Unlock()
		return
	}
	for _, o := range r.members {
		if o.mayReceive(&e) {
			o.sendRaw(b)
			e.readers[o.identity] = struct{}{}
		}
	}
	r.keepChatLocked(e)
	readers := len(e.readers)
	s.mu.Unlock()
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
