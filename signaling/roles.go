package signaling

import (
	"consult/protocol"
)

// The rules of a clinic, in one place. A host (clinician, staff) runs the
// consult; a guest (patient, family, interpreter) is let in by a host and
// sees only the call it is in. Handlers ask may before acting, the presence
// code asks canSee before telling anyone about anyone, and join asks
// entersLive. roles_test.go holds the table of who may do what.

// action is something a member asks the server to do.
type action string

const (
	actInvite  action = "invite"            // ring a waiting member
	actAdmit   action = "admit"             // let a waiting member in at once
	actToWait  action = "return-to-waiting" // take a live member out of the call
	actRemove  action = "remove"            // remove a member from the room
	actMute    action = "mute"              // mute another member
	actEnd     action = "end"               // end the consultation for everyone
	actRecord  action = "record"            // start or stop a recording (HTTP API)
	actSeeWait action = "see-waiting"       // know who is in the waiting room
	actGoLive  action = "go-live"           // enter the call by oneself
)

// hostOnly lists what only a host may do; everything else is anyone's.
var hostOnly = map[action]bool{
	actInvite: true, actAdmit: true, actToWait: true, actRemove: true, actMute: true,
	actEnd: true, actRecord: true, actSeeWait: true, actGoLive: true,
}

// may reports whether m may do a. A guest may still go live by itself when
// its token or the room grants direct entry (see entersLive).
func may(m *member, a action) bool { return roleMay(m.role, a) }

// roleMay reports whether a holder of role may do a (also for HTTP
// requests, which carry a role in their token but are no member).
func roleMay(role string, a action) bool {
	return role == protocol.RoleHost || !hostOnly[a]
}

// entersLive says whether a member who asked to be live goes straight into
// the call: a host does, a guest only with direct entry from its token or
// the room. Everyone else waits for a host.
func entersLive(m *member, asked bool, r *room) bool {
	if !asked {
		return false
	}
	return may(m, actGoLive) || m.directEntry || r.directEntry
}

// canSee reports whether viewer may know that subject is in the room, and
// see its name, state and tracks. Hosts see everyone, with wait times; a
// guest in the call sees the call's members and never the waiting room; a
// waiting guest sees nobody (it is told only that a clinician knows it is
// there).
func canSee(viewer, subject *member) bool {
	switch {
	case viewer == subject:
		return true
	case may(viewer, actSeeWait):
		return true
	default:
		return viewer.live && subject.live
	}
}

// validRole maps a client's requested role (open mode) to a role: empty
// means host, so a server run without auth keeps working for clients that
// predate roles.
func validRole(r string) string {
	if r == protocol.RoleGuest {
		return protocol.RoleGuest
	}
	return protocol.RoleHost
}
