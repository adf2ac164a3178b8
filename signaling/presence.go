package signaling

import (
	"consult/protocol"
)

// Presence: what each member knows of the others. Every member keeps the
// set of participants it has been told about (knows). After any change, the
// server compares that set with what canSee allows and sends the difference
// as participant-joined, -updated or -left, so a guest who goes back to the
// waiting room is told that the others left, and a live guest never hears
// of anyone waiting. All of it is called with Server.mu held.

// announce brings everyone's view of subject up to date after subject
// changed (joined, went live or back to waiting, muted, published). The
// subject itself is sent its own participant-updated when self is set: it
// is how a client learns that a host let it in or took it out of the call.
func (r *room) announce(subject *member, self bool) {
	if r.find(subject.id) != subject {
		return // gone: forget told those who knew
	}
	for _, m := range r.members {
		if m == subject {
			if self {
				m.send(protocol.TypeParticipantUpdated, protocol.ParticipantEvent{Participant: subject.view()})
			}
			continue
		}
		m.sync(subject)
	}
}

// resync brings viewer's view of every other member up to date after
// viewer's own rights changed (it went live or back to waiting).
func (r *room) resync(viewer *member) {
	for _, s := range r.members {
		if s != viewer {
			viewer.sync(s)
		}
	}
}

// sync tells m what changed about subject, as m may see it.
func (m *member) sync(subject *member) {
	see := canSee(m, subject)
	switch {
	case see && !m.knows[subject]:
		m.knows[subject] = true
		m.send(protocol.TypeParticipantJoined, protocol.ParticipantEvent{Participant: subject.view()})
	case see:
		m.send(protocol.TypeParticipantUpdated, protocol.ParticipantEvent{Participant: subject.view()})
	case m.knows[subject]:
		delete(m.knows, subject)
		m.send(protocol.TypeParticipantLeft, protocol.ParticipantLeft{Participant: subject.id})
	}
}

// forget tells everyone who knew subject that it left.
func (r *room) forget(subject *member) {
	for _, m := range r.members {
		if m.knows[subject] {
			delete(m.knows, subject)
			m.send(protocol.TypeParticipantLeft, protocol.ParticipantLeft{Participant: subject.id})
		}
	}
}

// tellAbout sends a message concerning subject (its tracks) to subject and
// to the members who know it.
func (r *room) tellAbout(subject *member, typ string, body any) {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		return
	}
	for _, m := range r.members {
		if m == subject || m.knows[subject] {
			m.sendRaw(b)
		}
	}
}

// visibleTo lists the members m may see, and records that it knows them:
// the participants of its joined message.
func (r *room) visibleTo(m *member) []protocol.Participant {
	out := []protocol.Participant{}
	for _, o := range r.members {
		if o != m && canSee(m, o) {
			m.knows[o] = true
			out = append(out, o.view())
		}
	}
	return out
}
