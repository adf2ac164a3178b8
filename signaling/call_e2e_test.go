package signaling_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

func TestRingFlow(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.RingTimeout = 300 * time.Millisecond })

	t.Run("invite then accept puts both in the call with media both ways", func(t *testing.T) {
		doc, _ := e.join(t, "ring-accept", "Doctor", true)
		pat, _ := e.join(t, "ring-accept", "Patient", false)
		startPublisher(t, doc)
		if err := doc.Invite(pat.ID()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*peer{doc, pat} {
			c := p.awaitCall(protocol.CallRinging)
			if c.Caller != doc.ID() || c.Callee != pat.ID() {
				t.Fatalf("ringing %+v", c)
			}
		}
		if err := pat.Accept(); err != nil {
			t.Fatal(err)
		}
		doc.awaitCall(protocol.CallAccepted)
		pat.awaitCall(protocol.CallAccepted)
		var upd protocol.ParticipantEvent
		doc.await(protocol.TypeParticipantUpdated, &upd)
		if upd.Participant.ID != pat.ID() || !upd.Participant.Live {
			t.Fatalf("room not told the patient is live: %+v", upd)
		}
		startPublisher(t, pat)
		awaitMedia(t, pat, doc.ID())
		awaitMedia(t, doc, pat.ID())

		// Hang up leaves the call but stays present.
		if err := pat.Hangup(); err != nil {
			t.Fatal(err)
		}
		doc.await(protocol.TypeParticipantUpdated, &upd)
		if upd.Participant.ID != pat.ID() || upd.Participant.Live {
			t.Fatalf("hangup not seen: %+v", upd)
		}
	})

	t.Run("reject", func(t *testing.T) {
		doc, _ := e.join(t, "ring-reject", "Doctor", true)
		pat, _ := e.join(t, "ring-reject", "Patient", false)
		_ = doc.Invite(pat.ID())
		pat.awaitCall(protocol.CallRinging)
		_ = pat.Reject()
		doc.awaitCall(protocol.CallRejected)
		pat.awaitCall(protocol.CallRejected)
	})

	t.Run("cancel", func(t *testing.T) {
		doc, _ := e.join(t, "ring-cancel", "Doctor", true)
		pat, _ := e.join(t, "ring-cancel", "Patient", false)
		_ = doc.Invite(pat.ID())
		pat.awaitCall(protocol.CallRinging)
		_ = doc.Cancel(pat.ID())
		pat.awaitCall(protocol.CallCancelled)
		doc.awaitCall(protocol.CallCancelled)
		_ = pat.Accept() // too late
		pat.awaitError(protocol.ErrInvalidState)
	})

	t.Run("timeout", func(t *testing.T) {
		doc, _ := e.join(t, "ring-timeout", "Doctor", true)
		pat, _ := e.join(t, "ring-timeout", "Patient", false)
		_ = doc.Invite(pat.ID())
		doc.awaitCall(protocol.CallTimeout)
		pat.awaitCall(protocol.CallTimeout)
	})

	t.Run("busy", func(t *testing.T) {
		doc, _ := e.join(t, "ring-busy", "Doctor", true)
		nurse, _ := e.join(t, "ring-busy", "Nurse", true)
		pat, _ := e.join(t, "ring-busy", "Patient", false)
		_ = doc.Invite(pat.ID())
		pat.awaitCall(protocol.CallRinging)
		_ = nurse.Invite(pat.ID())
		c := nurse.awaitCall(protocol.CallBusy)
		if c.Callee != pat.ID() {
			t.Fatalf("busy %+v", c)
		}
	})

	t.Run("caller leaving cancels the ring", func(t *testing.T) {
		doc, _ := e.join(t, "ring-leave", "Doctor", true)
		pat, _ := e.join(t, "ring-leave", "Patient", false)
		_ = doc.Invite(pat.ID())
		pat.awaitCall(protocol.CallRinging)
		_ = doc.Leave()
		pat.awaitCall(protocol.CallCancelled)
	})

	t.Run("only live members can call", func(t *testing.T) {
		a, _ := e.join(t, "ring-waiting", "A", false)
		b, _ := e.join(t, "ring-waiting", "B", false)
		_ = a.Invite(b.ID())
		a.awaitError(protocol.ErrInvalidState)
		c, _ := e.join(t, "ring-waiting", "C", true)
		_ = c.Invite("nobody")
		c.awaitError(protocol.ErrNotFound)
	})
}

// awaitMedia waits until p receives a video packet from the participant from.
func awaitMedia(t *testing.T, p *peer, from string) {
	t.Helper()
	deadline := testenv.After(10 * time.Second)
	for {
		select {
		case r := <-p.trackCh:
			owner, _, _ := cutID(r.ID())
			if owner != from || r.Kind() != webrtc.RTPCodecTypeVideo {
				continue
			}
			_ = r.SetReadDeadline(time.Now().Add(testenv.Scale(5 * time.Second)))
			if _, _, err := r.ReadRTP(); err != nil {
				t.Fatal(err)
			}
			return
		case <-deadline:
			t.Fatalf("no video from %s", from)
		}
	}
}

func TestRoomFull(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.Capacity = 2 })
	a, _ := e.join(t, "small", "A", true)
	e.join(t, "small", "B", true)

	c := e.dial(t)
	_, err := c.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "small", Name: "C", Live: true})
	if err == nil || !strings.Contains(err.Error(), protocol.ErrRoomFull) {
		t.Fatalf("third live join: %v", err)
	}
	// Nothing changed: the others saw no one join, and C can still wait.
	w, _ := e.join(t, "small", "Waiting", false)
	var pj protocol.ParticipantEvent
	a.await(protocol.TypeParticipantJoined, &pj) // B
	a.await(protocol.TypeParticipantJoined, &pj)
	if pj.Participant.Name != "Waiting" {
		t.Fatalf("unexpected join seen: %+v", pj)
	}
	// Accepting a call into a full room fails cleanly.
	_ = a.Invite(w.ID())
	w.awaitCall(protocol.CallRinging)
	_ = w.Accept()
	w.awaitError(protocol.ErrRoomFull)
	if c := a.awaitCall(protocol.CallFailed); c.Reason != protocol.ErrRoomFull {
		t.Fatalf("call failed for %q", c.Reason)
	}
	check := e.roomCheck(t, "small")
	if !check.Full || check.Live != 2 || check.Present != 3 {
		t.Fatalf("room check %+v", check)
	}
}
