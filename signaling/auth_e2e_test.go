package signaling_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

func TestJoinNeedsAValidTokenWhenASecretIsSet(t *testing.T) {
	secret := []byte("test-secret")
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.Secret = secret })
	now := time.Now()
	mint := func(room, id string, g signaling.Grants, ttl time.Duration) string {
		tok, err := signaling.MintToken(secret, room, id, "", g, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	user := signaling.Grants{Publish: true, Subscribe: true}
	other, _ := signaling.MintToken([]byte("other-secret"), "clinic", "u1", "", user, time.Hour, now)
	for _, c := range []struct {
		name, token string
	}{
		{"no token", ""},
		{"garbage", "not.a.jwt"},
		{"wrong secret", other},
		{"other room", mint("elsewhere", "u1", user, time.Hour)},
		{"expired", mint("clinic", "u1", user, -time.Minute)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := e.dial(t)
			_, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "X", Live: true, Token: c.token})
			if err == nil || !strings.Contains(err.Error(), protocol.ErrUnauthorized) {
				t.Fatalf("join: %v", err)
			}
		})
	}

	// A valid token admits; its name wins over the one asked for.
	named, _ := signaling.MintToken(secret, "clinic", "dr-lee", "Dr Lee", user, time.Hour, now)
	p := e.dial(t)
	j, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "Impostor", Live: true, Token: named})
	if err != nil {
		t.Fatal(err)
	}
	// A subscribe-only token cannot publish.
	viewer := e.dial(t)
	if _, err := viewer.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "V", Live: true,
		Token: mint("*", "viewer", signaling.Grants{Subscribe: true}, time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var pj protocol.ParticipantEvent
	p.await(protocol.TypeParticipantJoined, &pj)
	tr, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "s")
	go func() { _, _ = viewer.Publish(ctxT(t, 5*time.Second), tr) }()
	viewer.awaitError(protocol.ErrForbidden)
	_ = j

	// /api/rooms needs an admin token.
	if code := getJSON(t, e.httpURL("/api/rooms"), "", nil); code != http.StatusUnauthorized {
		t.Fatalf("/api/rooms without token: %d", code)
	}
	if code := getJSON(t, e.httpURL("/api/rooms"), mint("*", "ops", user, time.Hour), nil); code != http.StatusUnauthorized {
		t.Fatalf("/api/rooms with a non-admin token: %d", code)
	}
	var rooms []signaling.RoomStatus
	getJSON(t, e.httpURL("/api/rooms"), mint("*", "ops", signaling.Grants{Admin: true}, time.Hour), &rooms)
	if len(rooms) != 1 || rooms[0].Members[0].Name != "Dr Lee" {
		t.Fatalf("rooms %+v", rooms)
	}
}

func TestShutdownSaysGoodbye(t *testing.T) {
	e := startServer(t, nil)
	p, _ := e.join(t, "bye", "A", true)
	startPublisher(t, p)
	p.await(protocol.TypeTrackPublished, nil)
	go func() { _ = e.sig.Shutdown(ctxT(t, 5*time.Second)) }()
	var g protocol.Goodbye
	p.await(protocol.TypeGoodbye, &g)
	select {
	case <-p.Done():
	case <-testenv.After(5 * time.Second):
		t.Fatal("connection not closed after goodbye")
	}
	waitUntil(t, "the SFU to be empty", 5*time.Second, func() bool { return e.sfu.Stats().Participants == 0 })
}
