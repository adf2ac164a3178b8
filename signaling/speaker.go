package signaling

import (
	"slices"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// Speakers: the SFU decides who speaks in each of its rooms (sfu/speaker.go)
// and the server passes that on to the room's live members as speaker
// messages, at most protocol.SpeakerRate a second per room. A change within
// speakerGap of the last message waits for the gap to end, and then only
// the room's latest state goes: a message replaces the ones before it, so
// nothing of value is lost. Waiting guests get nothing (they are not in
// the call), nor does a member whose socket is down: its kept messages are
// what it must not miss, and a state that is stale by the time it is back
// is not. It is sent the latest state when it comes back, as is a member
// who joins the call or is let in. The SFU names rooms and participants as
// signaling does (startMediaLocked joins the SFU room of the room's name,
// with the member's id), so its ids go out as they are, less any that is
// not a live member by now.

// speakerGap is the least time between two speaker messages to a room.
const speakerGap = time.Second / protocol.SpeakerRate

// speakerState is what a room sent of its speakers. Guarded by Server.mu.
type speakerState struct {
	sent    protocol.Speaker  // the last message
	at      time.Time         // when it went
	pending *protocol.Speaker // newer, waiting for the gap to end
	timer   *time.Timer       // set while one waits
}

// Speakers takes the SFU's report that room's speakers changed
// (sfu.Config.OnSpeakers). It queues the messages and returns.
func (s *Server) Speakers(room string, sp sfu.Speakers) {
	msg := protocol.Speaker{Participant: sp.Dominant, Active: append([]string{}, sp.Active...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil {
		return
	}
	st := &r.speakers
	st.pending = &msg
	if st.timer != nil {
		return // it goes when the gap ends, if it is still the latest
	}
	if wait := speakerGap - time.Since(st.at); wait > 0 {
		st.timer = time.AfterFunc(wait, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			r.speakers.timer = nil
			if s.rooms[room] == r {
				s.flushSpeakersLocked(r)
			}
		})
		return
	}
	s.flushSpeakersLocked(r)
}

// flushSpeakersLocked sends r's pending state to its live members, if it
// is news to them. Called with s.mu held.
func (s *Server) flushSpeakersLocked(r *room) {
	st := &r.speakers
	if st.pending == nil {
		return
	}
	msg := r.liveSpeakers(*st.pending)
	st.pending = nil
	if msg.Participant == st.sent.Participant && slices.Equal(msg.Active, st.sent.Active) {
		return
	}
	st.sent, st.at = msg, time.Now()
	b, err := protocol.Encode(protocol.TypeSpeaker, msg)
	if err != nil {
		return
	}
	n := 0
	for _, m := range r.members {
		if m.live && m.sock.Load() != nil {
			m.sendRaw(b)
			n++
		}
	}
	s.log.Debug("speakers", zap.String("room", r.name), zap.String("dominant", msg.Participant),
		zap.Strings("active", msg.Active), zap.Int("told", n))
}

// liveSpeakers is msg less the ids that are not live members of r: one
// that left or went back to waiting since the SFU last looked.
func (r *room) liveSpeakers(msg protocol.Speaker) protocol.Speaker {
	live := func(id string) bool {
		m := r.find(id)
		return m != nil && m.live
	}
	if !live(msg.Participant) {
		msg.Participant = ""
	}
	msg.Active = slices.DeleteFunc(msg.Active, func(id string) bool { return !live(id) })
	return msg
}

// speakersTo brings m up to date with its room's speakers, when it joins
// the call, is let in or comes back. Called with s.mu held.
func (r *room) speakersTo(m *member) {
	st := r.speakers.sent
	if !m.live || st.Participant == "" && len(st.Active) == 0 {
		return
	}
	m.send(protocol.TypeSpeaker, r.liveSpeakers(protocol.Speaker{Participant: st.Participant,
		Active: append([]string{}, st.Active...)}))
}
