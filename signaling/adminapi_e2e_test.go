package signaling_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

// Each server API call works with an admin token for the room, and is
// refused (401, nothing changed) with another room's admin token.
func TestServerAPIActsWithTheRoomsTokenOnly(t *testing.T) {
	secret := []byte("api-secret")
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.Secret = secret })
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(e.url, "ws"), "/ws")
	mint := func(spec signaling.TokenSpec) string {
		spec.TTL = time.Hour
		tok, err := signaling.MintToken(secret, spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ctx := ctxT(t, 30*time.Second)
	ours := &client.Admin{Base: base, Token: mint(signaling.TokenSpec{Room: "room-a", Identity: "ops-a", Grants: signaling.Grants{Admin: true}})}
	theirs := &client.Admin{Base: base, Token: mint(signaling.TokenSpec{Room: "room-b", Identity: "ops-b", Grants: signaling.Grants{Admin: true}})}
	refused := func(what string, err error) {
		t.Helper()
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
			t.Fatalf("%s with room-b's token: %v, want 401", what, err)
		}
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s with room-a's token: %v", what, err)
		}
	}

	// Set up ahead, before anyone comes.
	three := 3
	refused("set the room up", theirs.SetRoom(ctx, "room-a", client.RoomSettings{Capacity: &three}))
	ok("set the room up", ours.SetRoom(ctx, "room-a", client.RoomSettings{Capacity: &three}))

	join := func(name, role string) *peer {
		p := e.dial(t)
		tok := mint(signaling.TokenSpec{Room: "room-a", Identity: name, Role: role, Grants: signaling.Grants{Publish: true, Subscribe: true}})
		if _, err := p.Join(ctx, protocol.Join{Room: "room-a", Name: name, Live: true, Token: tok}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	doc, pat, fam := join("doc", protocol.RoleHost), join("pat", protocol.RoleGuest), join("fam", protocol.RoleGuest)
	member := func(id string) (protocol.Participant, int) {
		for _, r := range e.sig.AllRooms() {
			if r.Room == "room-a" {
				for _, m := range r.Members {
					if m.ID == id {
						return m, r.Capacity
					}
				}
			}
		}
		return protocol.Participant{}, 0
	}
	if m, capacity := member(pat.ID()); m.Live || capacity != 3 {
		t.Fatalf("before the API: the patient %+v, capacity %d; want waiting, 3", m, capacity)
	}

	refused("admit", theirs.Admit(ctx, "room-a", pat.ID()))
	ok("admit", ours.Admit(ctx, "room-a", pat.ID()))
	testenv.Eventually(t, 5*time.Second, "the patient to be live", func() bool { m, _ := member(pat.ID()); return m.Live })

	refused("mute", theirs.Mute(ctx, "room-a", pat.ID(), "audio"))
	ok("mute", ours.Mute(ctx, "room-a", pat.ID(), "audio"))
	var muted protocol.Muted
	pat.await(protocol.TypeMuted, &muted)
	if muted.Kind != "audio" {
		t.Fatalf("muted %+v", muted)
	}

	refused("back to waiting", theirs.ToWaiting(ctx, "room-a", pat.ID()))
	ok("back to waiting", ours.ToWaiting(ctx, "room-a", pat.ID()))
	testenv.Eventually(t, 5*time.Second, "the patient to wait again", func() bool { m, _ := member(pat.ID()); return !m.Live })

	refused("remove", theirs.Remove(ctx, "room-a", fam.ID()))
	ok("remove", ours.Remove(ctx, "room-a", fam.ID()))
	var bye protocol.Goodbye
	fam.await(protocol.TypeGoodbye, &bye)
	if bye.Code != protocol.GoodbyeRemoved {
		t.Fatalf("goodbye %+v", bye)
	}

	_, err := theirs.Invite(ctx, "room-a", protocol.RoleGuest, "", 0)
	refused("invite", err)
	inv, err := ours.Invite(ctx, "room-a", protocol.RoleGuest, "", 0)
	ok("invite", err)
	if c, err := signaling.VerifyToken(secret, inv.Token, "room-a"); err != nil || c.Role != protocol.RoleGuest {
		t.Fatalf("invite token: %+v %v", c, err)
	}

	if rooms, err := theirs.Rooms(ctx); err != nil || len(rooms) != 0 {
		t.Fatalf("room-b's token lists %+v, %v; want nothing", rooms, err)
	}
	if rooms, err := ours.Rooms(ctx); err != nil || len(rooms) != 1 || rooms[0].Capacity != 3 {
		t.Fatalf("room-a's token lists %+v, %v", rooms, err)
	}
	var ae *client.APIError
	if err := ours.Admit(ctx, "room-a", "nobody"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("admitting nobody: %v, want 404", err)
	}
	refused("drain (room-scoped)", ours.Drain(ctx))

	refused("end", theirs.EndRoom(ctx, "room-a"))
	ok("end", ours.EndRoom(ctx, "room-a"))
	doc.await(protocol.TypeEnded, nil)
	doc.await(protocol.TypeGoodbye, &bye)
	if bye.Code != protocol.GoodbyeEnded {
		t.Fatalf("the clinician's goodbye %+v", bye)
	}
	testenv.Eventually(t, 5*time.Second, "the room to be gone", func() bool { return len(e.sig.AllRooms()) == 0 })
}
