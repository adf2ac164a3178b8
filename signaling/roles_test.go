package signaling

import (
	"testing"

	"consult/protocol"
)

// The clinic's rules as one table: who may do what.
func TestWhoMayDoWhat(t *testing.T) {
	host := &member{role: protocol.RoleHost}
	guest := &member{role: protocol.RoleGuest}
	for _, c := range []struct {
		a           action
		host, guest bool
	}{
		{actInvite, true, false},
		{actAdmit, true, false},
		{actToWait, true, false},
		{actRemove, true, false},
		{actMute, true, false},
		{actEnd, true, false},
		{actRecord, true, false},
		{actSeeWait, true, false},
		{actGoLive, true, false},
	} {
		if got := may(host, c.a); got != c.host {
			t.Errorf("host may %s: %v, want %v", c.a, got, c.host)
		}
		if got := may(guest, c.a); got != c.guest {
			t.Errorf("guest may %s: %v, want %v", c.a, got, c.guest)
		}
	}
}

func TestWhoSeesWhom(t *testing.T) {
	host := &member{role: protocol.RoleHost}
	waitingHost := &member{role: protocol.RoleHost}
	liveGuest := &member{role: protocol.RoleGuest, live: true}
	otherLive := &member{role: protocol.RoleGuest, live: true}
	waiting := &member{role: protocol.RoleGuest}
	otherWaiting := &member{role: protocol.RoleGuest}
	host.live = true
	for _, c := range []struct {
		name            string
		viewer, subject *member
		want            bool
	}{
		{"a host sees a waiting guest", host, waiting, true},
		{"a waiting host sees a waiting guest", waitingHost, waiting, true},
		{"a host sees a live guest", host, liveGuest, true},
		{"a live guest sees the host", liveGuest, host, true},
		{"a live guest sees another live guest", liveGuest, otherLive, true},
		{"a live guest does not see the waiting room", liveGuest, waiting, false},
		{"a live guest does not see a waiting host", liveGuest, waitingHost, false},
		{"a waiting guest does not see the host", waiting, host, false},
		{"a waiting guest does not see another waiting guest", waiting, otherWaiting, false},
		{"a waiting guest does not see a live guest", waiting, liveGuest, false},
		{"everyone sees itself", waiting, waiting, true},
	} {
		if got := canSee(c.viewer, c.subject); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}

func TestWhoEntersLive(t *testing.T) {
	open, direct := &room{}, &room{directEntry: true}
	for _, c := range []struct {
		name  string
		m     *member
		asked bool
		r     *room
		want  bool
	}{
		{"a host asking", &member{role: protocol.RoleHost}, true, open, true},
		{"a host not asking", &member{role: protocol.RoleHost}, false, open, false},
		{"a guest asking", &member{role: protocol.RoleGuest}, true, open, false},
		{"a guest with a direct-entry token", &member{role: protocol.RoleGuest, directEntry: true}, true, open, true},
		{"a guest in a direct-entry room", &member{role: protocol.RoleGuest}, true, direct, true},
		{"a guest with direct entry not asking", &member{role: protocol.RoleGuest, directEntry: true}, false, direct, false},
	} {
		if got := entersLive(c.m, c.asked, c.r); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}
