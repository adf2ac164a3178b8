package signaling_test

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
)

// A guest that asks to be live waits; hosts see it waiting (with since
// when) and let it in, at once (admit) or by ringing (invite, accept).
func TestGuestsWaitUntilAHostLetsThemIn(t *testing.T) {
	e := startServer(t, nil)
	host, _ := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	guest, j := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	if j.Live || j.Role != protocol.RoleGuest || len(j.Participants) != 0 {
		t.Fatalf("a guest asking to be live got %+v; want waiting, seeing nobody", j)
	}
	var pj protocol.ParticipantEvent
	host.await(protocol.TypeParticipantJoined, &pj)
	if pj.Participant.ID != j.You || pj.Participant.Live || pj.Participant.Role != protocol.RoleGuest || pj.Participant.WaitingSince == 0 {
		t.Fatalf("the host was told %+v", pj.Participant)
	}

	if err := host.Admit(j.You); err != nil {
		t.Fatal(err)
	}
	var self protocol.ParticipantEvent
	guest.await(protocol.TypeParticipantUpdated, &self)
	if self.Participant.ID != j.You || !self.Participant.Live {
		t.Fatalf("the guest was told %+v, want itself live", self.Participant)
	}
	var hostSeen protocol.ParticipantEvent
	guest.await(protocol.TypeParticipantJoined, &hostSeen) // in the call, it sees the call
	if hostSeen.Participant.Name != "Dr Lee" || hostSeen.Participant.Role != protocol.RoleHost {
		t.Fatalf("the admitted guest sees %+v", hostSeen.Participant)
	}
	guest.await(protocol.TypeMode, nil)

	// A second guest is rung in and accepts.
	second, j2 := e.joinAs(t, "clinic", "Sam", protocol.RoleGuest, true)
	host.await(protocol.TypeParticipantJoined, nil)
	if err := host.Invite(j2.You); err != nil {
		t.Fatal(err)
	}
	ring := second.awaitCall(protocol.CallRinging)
	if ring.Caller != "" {
		t.Fatalf("a waiting guest was told who rings it (%q)", ring.Caller)
	}
	_ = second.Accept()
	second.awaitCall(protocol.CallAccepted)
	waitUntil(t, "three live members", 5*time.Second, func() bool {
		n := 0
		for _, m := range e.sig.AllRooms()[0].Members {
			if m.Live {
				n++
			}
		}
		return n == 3
	})
}

// Guests cannot let anyone in, send anyone back, remove, mute, or end the
// consult; the server says not-host and nothing changes.
func TestOnlyHostsModerate(t *testing.T) {
	e := startServer(t, nil)
	host, _ := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	live, jl := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	_ = host.Admit(jl.You)
	live.await(protocol.TypeParticipantUpdated, nil)
	_, jw := e.joinAs(t, "clinic", "Sam", protocol.RoleGuest, true)
	hostID := e.sig.AllRooms()[0].Members[0].ID
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"invite", func() error { return live.Invite(jw.You) }},
		{"admit", func() error { return live.Admit(jw.You) }},
		{"return to waiting", func() error { return live.ReturnToWaiting(hostID) }},
		{"remove", func() error { return live.Remove(hostID) }},
		{"mute", func() error { return live.MuteOther(hostID, "audio") }},
		{"end", func() error { return live.End() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); err != nil {
				t.Fatal(err)
			}
			live.awaitError(protocol.ErrNotHost)
		})
	}
	rooms := e.sig.AllRooms()
	if len(rooms) != 1 || len(rooms[0].Members) != 3 {
		t.Fatalf("rooms after the guest's attempts: %+v", rooms)
	}
	for _, m := range rooms[0].Members {
		if m.ID == jw.You && m.Live || m.ID == hostID && (!m.Live || m.AudioMuted) {
			t.Fatalf("a guest's attempt changed %+v", m)
		}
	}
}

// A waiting guest is told nothing about anyone: not in joined, not as
// others come, go, publish, mute or are let in. A guest in the call sees
// the call and never the waiting room.
func TestWaitingGuestsLearnNothingOfOthers(t *testing.T) {
	e := startServer(t, nil)
	host, _ := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	inCall, jc := e.joinAs(t, "clinic", "Alex In-Call", protocol.RoleGuest, true)
	_ = host.Admit(jc.You)
	inCall.await(protocol.TypeMode, nil)
	waiting, jw := e.joinAs(t, "clinic", "Wren Waiting", protocol.RoleGuest, true)
	if len(jw.Participants) != 0 {
		t.Fatalf("a waiting guest's joined lists %+v", jw.Participants)
	}
	host.await(protocol.TypeParticipantJoined, nil) // Alex
	host.await(protocol.TypeParticipantJoined, nil) // Wren

	// Life in the room: the guest in the call publishes and mutes, a third
	// guest comes and goes, the host rings and cancels the waiting one.
	startPublisher(t, inCall)
	host.await(protocol.TypeTrackPublished, nil)
	_ = inCall.Mute("audio", true)
	other, jo := e.joinAs(t, "clinic", "Olu Other", protocol.RoleGuest, false)
	host.awaitMatch(protocol.TypeParticipantJoined, jo.You)
	_ = host.Invite(jw.You)
	waiting.awaitCall(protocol.CallRinging)
	_ = host.Cancel(jw.You)
	waiting.awaitCall(protocol.CallCancelled)
	_ = other.Leave()
	host.awaitMatch(protocol.TypeParticipantLeft, jo.You)

	for _, s := range []string{jc.You, "Alex", jo.You, "Olu", "Dr Lee", `"live":true`} {
		if waiting.said(s) {
			t.Errorf("the waiting guest was told %q", s)
		}
	}
	for _, s := range []string{jw.You, "Wren", jo.You, "Olu"} {
		if inCall.said(s) {
			t.Errorf("the guest in the call was told of %q, who was only waiting", s)
		}
	}
	if !host.said(jw.You) || !host.said("Olu Other") {
		t.Error("the host was not told of the waiting guests")
	}
}

// A host sends a live guest back to the waiting room, mutes it (the SFU
// stops forwarding until the guest unmutes), and removes it.
func TestHostReturnsMutesAndRemovesAGuest(t *testing.T) {
	e := startServer(t, nil)
	host, _ := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	startPublisher(t, host)
	guest, jg := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	_ = host.Admit(jg.You)
	guest.await(protocol.TypeMode, nil)
	startPublisher(t, guest)
	audio := host.awaitTrackKind(t, webrtc.RTPCodecTypeAudio)
	packets := countPackets(audio)
	waitUntil(t, "the guest's audio at the host", 5*time.Second, func() bool { return packets() > 20 })

	// Muted by the host: the guest is told, the room sees it, nothing flows.
	if err := host.MuteOther(jg.You, "audio"); err != nil {
		t.Fatal(err)
	}
	var m protocol.Muted
	guest.await(protocol.TypeMuted, &m)
	if m.Kind != "audio" || m.By == "" {
		t.Fatalf("muted %+v", m)
	}
	waitUntil(t, "the room to show the guest muted", 5*time.Second, func() bool {
		return e.sig.AllRooms()[0].Members[1].AudioMuted
	})
	stalled := packets()
	quiet := time.Now().Add(300 * time.Millisecond)
	waitUntil(t, "300 ms to pass", 5*time.Second, func() bool { return time.Now().After(quiet) })
	if n := packets(); n > stalled+2 {
		t.Fatalf("%d audio packets reached the host after the mute", n-stalled)
	}
	// The guest unmutes itself: its audio flows again.
	_ = guest.Mute("audio", false)
	waitUntil(t, "audio again after the guest unmuted", 5*time.Second, func() bool { return packets() > stalled+20 })

	// Back to the waiting room: out of the call, its media session gone.
	_ = host.ReturnToWaiting(jg.You)
	waitUntil(t, "the guest's update", 5*time.Second, func() bool {
		return !e.sig.AllRooms()[0].Members[1].Live && e.sfu.Stats().Participants == 1
	})
	var self protocol.ParticipantEvent
	guest.awaitMatchInto(protocol.TypeParticipantUpdated, jg.You, &self)
	for self.Participant.Live {
		guest.awaitMatchInto(protocol.TypeParticipantUpdated, jg.You, &self)
	}
	guest.awaitMatch(protocol.TypeParticipantLeft, "") // it no longer sees the host

	// Removed: told why, closed, and gone from the room.
	_ = host.Remove(jg.You)
	var g protocol.Goodbye
	guest.await(protocol.TypeGoodbye, &g)
	if g.Code != protocol.GoodbyeRemoved {
		t.Fatalf("goodbye %+v", g)
	}
	select {
	case <-guest.Done():
	case <-testenv.After(5 * time.Second):
		t.Fatal("the removed guest's connection stayed open")
	}
	host.awaitMatch(protocol.TypeParticipantLeft, jg.You)
}

// Ending the consult tells everyone, live or waiting, who ended it and how
// long it ran, closes every connection and media session, and drops the
// room.
func TestHostEndsTheConsultForEveryone(t *testing.T) {
	e := startServer(t, nil)
	host, _ := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	startPublisher(t, host)
	live, jl := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	_ = host.Admit(jl.You)
	live.await(protocol.TypeMode, nil)
	startPublisher(t, live)
	waiting, _ := e.joinAs(t, "clinic", "Sam", protocol.RoleGuest, false)
	waitUntil(t, "two media sessions", 5*time.Second, func() bool { return e.sfu.Stats().Participants == 2 })

	if err := host.End(); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*peer{host, live, waiting} {
		var ended protocol.Ended
		p.await(protocol.TypeEnded, &ended)
		// A waiting guest learns that the consult is over, not who was in it.
		wantName := map[bool]string{true: "", false: "Dr Lee"}[i == 2]
		if ended.ByName != wantName || (ended.By == "") != (i == 2) || ended.DurationMS <= 0 {
			t.Fatalf("member %d was told %+v", i, ended)
		}
		var g protocol.Goodbye
		p.await(protocol.TypeGoodbye, &g)
		if g.Code != protocol.GoodbyeEnded {
			t.Fatalf("goodbye %+v", g)
		}
		select {
		case <-p.Done():
		case <-testenv.After(5 * time.Second):
			t.Fatal("a connection stayed open after the end")
		}
	}
	waitUntil(t, "no media sessions and no room", 5*time.Second, func() bool {
		return e.sfu.Stats().Participants == 0 && len(e.sig.AllRooms()) == 0
	})
}

// Display names lose what would disguise them, and one with nothing
// visible is refused.
func TestJoinCleansDisplayNames(t *testing.T) {
	e := startServer(t, nil)
	host, _ := e.joinAs(t, "clinic", "Dr \u202eeeL\u200b", protocol.RoleHost, true)
	_ = host
	if got := e.sig.AllRooms()[0].Members[0].Name; got != "Dr eeL" {
		t.Fatalf("name shown as %q", got)
	}
	p := e.dial(t)
	if _, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "\u2066\u3164\u2069", Live: true}); err == nil {
		t.Fatal("a name with nothing visible was accepted")
	}
}

// A room's policy can let guests skip the waiting room.
func TestARoomPolicyCanLetGuestsIn(t *testing.T) {
	e := startServer(t, nil)
	if code := post(t, e.httpURL("/api/rooms/clinic/policy"), "", `{"directEntry":true}`, nil); code != 200 {
		t.Fatalf("policy: %d", code)
	}
	_, j := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	if !j.Live {
		t.Fatalf("a guest in a direct-entry room joined %+v", j)
	}
	if code := post(t, e.httpURL("/api/rooms/clinic/policy"), "", `{"directEntry":false}`, nil); code != 200 {
		t.Fatalf("policy: %d", code)
	}
	_, j = e.joinAs(t, "clinic", "Sam", protocol.RoleGuest, true)
	if j.Live {
		t.Fatal("a guest went live after direct entry was turned off")
	}
	if rooms := e.sig.AllRooms(); rooms[0].DirectEntry {
		t.Fatalf("room %+v", rooms[0])
	}
}
