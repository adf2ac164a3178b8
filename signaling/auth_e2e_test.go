package signaling_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

var testSecret = []byte("test-secret")

// authServer runs the server with auth on.
func authServer(t *testing.T) *env {
	return startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.Secret = testSecret })
}

// mint signs a token for spec (one hour unless spec says).
func mint(t *testing.T, spec signaling.TokenSpec) string {
	t.Helper()
	if spec.TTL == 0 {
		spec.TTL = time.Hour
	}
	if spec.Grants == (signaling.Grants{}) {
		spec.Grants = signaling.Grants{Publish: true, Subscribe: true}
	}
	tok, err := signaling.MintToken(testSecret, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) joinToken(t *testing.T, room, name string, live bool, tok string) (*peer, *protocol.Joined) {
	t.Helper()
	p := e.dial(t)
	j, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: room, Name: name, Live: live, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return p, j
}

func TestJoinNeedsAValidTokenWhenASecretIsSet(t *testing.T) {
	e := authServer(t)
	other, _ := signaling.MintToken([]byte("other-secret"), signaling.TokenSpec{Room: "clinic", Identity: "u1", TTL: time.Hour}, time.Now())
	for _, c := range []struct {
		name, token string
	}{
		{"no token", ""},
		{"garbage", "not.a.jwt"},
		{"wrong secret", other},
		{"other room", mint(t, signaling.TokenSpec{Room: "elsewhere", Identity: "u1"})},
		{"expired", mint(t, signaling.TokenSpec{Room: "clinic", Identity: "u1", TTL: -time.Minute})},
		{"unknown role", mint(t, signaling.TokenSpec{Room: "clinic", Identity: "u1", Role: "boss"})},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := e.dial(t)
			_, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "X", Live: true, Token: c.token})
			if err == nil || !strings.Contains(err.Error(), protocol.ErrUnauthorized) {
				t.Fatalf("join: %v", err)
			}
		})
	}
}

// The token, not the client, says who a member is: its role (a token
// without one is a guest's), name and direct entry.
func TestTheTokenSetsRoleNameAndEntry(t *testing.T) {
	e := authServer(t)
	host, jh := e.joinToken(t, "clinic", "Impostor", true, mint(t, signaling.TokenSpec{Room: "clinic", Identity: "dr-lee", Name: "Dr Lee", Role: protocol.RoleHost}))
	if !jh.Live || jh.Role != protocol.RoleHost || jh.Name != "Dr Lee" || jh.ExpiresAt == 0 {
		t.Fatalf("host joined %+v", jh)
	}
	// A guest token waits, whatever role the client asks for.
	p := e.dial(t)
	jg, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "Pat", Live: true, Role: protocol.RoleHost,
		Token: mint(t, signaling.TokenSpec{Room: "clinic", Identity: "pat"})})
	if err != nil || jg.Live || jg.Role != protocol.RoleGuest {
		t.Fatalf("guest joined %+v, %v", jg, err)
	}
	// Direct entry lets a guest in at once.
	_, jd := e.joinToken(t, "clinic", "Interpreter", true, mint(t, signaling.TokenSpec{Room: "clinic", Identity: "int", DirectEntry: true}))
	if !jd.Live || jd.Role != protocol.RoleGuest {
		t.Fatalf("direct-entry guest joined %+v", jd)
	}
	var pj protocol.ParticipantEvent
	host.awaitMatchInto(protocol.TypeParticipantJoined, jg.You, &pj)
	if pj.Participant.Role != protocol.RoleGuest || pj.Participant.Live {
		t.Fatalf("the host sees the guest as %+v", pj.Participant)
	}
}

// A token without the publish grant cannot send media on any path: the
// SFU refuses its offer, and a room with it never takes the direct path.
func TestGrantsHoldOnEveryPath(t *testing.T) {
	e := authServer(t)
	host := e.dial(t)
	jh, err := host.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "Dr", Live: true, P2P: true,
		Token: mint(t, signaling.TokenSpec{Room: "clinic", Identity: "dr", Role: protocol.RoleHost})})
	if err != nil || jh.Mode != protocol.ModeP2P {
		t.Fatalf("host alone: %+v, %v", jh, err)
	}
	viewer := e.dial(t)
	jv, err := viewer.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "clinic", Name: "V", Live: true, P2P: true,
		Token: mint(t, signaling.TokenSpec{Room: "clinic", Identity: "viewer", DirectEntry: true, Grants: signaling.Grants{Subscribe: true}})})
	if err != nil || jv.CanPublish {
		t.Fatalf("viewer: %+v, %v", jv, err)
	}
	waitUntil(t, "the room on the SFU", 5*time.Second, func() bool { return e.sig.AllRooms()[0].Mode == protocol.ModeSFU })
	tr, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "s")
	go func() { _, _ = viewer.Publish(ctxT(t, 5*time.Second), tr) }()
	viewer.awaitError(protocol.ErrForbidden)
}

// A second join with the same identity replaces the first, which is told
// why and closed; only one seat is held.
func TestTheSameIdentityJoiningAgainReplacesTheFirst(t *testing.T) {
	e := authServer(t)
	tok := mint(t, signaling.TokenSpec{Room: "clinic", Identity: "dr-lee", Role: protocol.RoleHost})
	first, j1 := e.joinToken(t, "clinic", "Dr", true, tok)
	_, j2 := e.joinToken(t, "clinic", "Dr", true, tok)
	var g protocol.Goodbye
	first.await(protocol.TypeGoodbye, &g)
	if g.Code != protocol.GoodbyeReplaced {
		t.Fatalf("goodbye %+v", g)
	}
	select {
	case <-first.Done():
	case <-testenv.After(5 * time.Second):
		t.Fatal("the replaced session stayed open")
	}
	rooms := e.sig.AllRooms()
	if len(rooms) != 1 || len(rooms[0].Members) != 1 || rooms[0].Members[0].ID != j2.You || j1.You == j2.You {
		t.Fatalf("rooms %+v", rooms)
	}
}

// A session ends with its token: warned first, then told goodbye and
// removed. A fresh token for the same identity keeps it going; one for
// someone else is refused.
func TestASessionEndsWhenItsTokenExpiresUnlessRefreshed(t *testing.T) {
	e := authServer(t)
	host, _ := e.joinToken(t, "clinic", "Dr", true, mint(t, signaling.TokenSpec{Room: "clinic", Identity: "dr", Role: protocol.RoleHost}))

	short, js := e.joinToken(t, "clinic", "Pat", false, mint(t, signaling.TokenSpec{Room: "clinic", Identity: "pat", TTL: 2 * time.Second}))
	var warn protocol.Session
	short.await(protocol.TypeTokenExpiring, &warn) // under a minute left: at once
	if warn.ExpiresAt != js.ExpiresAt {
		t.Fatalf("warned of %d, joined with %d", warn.ExpiresAt, js.ExpiresAt)
	}
	var g protocol.Goodbye
	short.await(protocol.TypeGoodbye, &g)
	if g.Code != protocol.GoodbyeExpired || time.Now().UnixMilli() < js.ExpiresAt {
		t.Fatalf("goodbye %+v at %d, token expired at %d", g, time.Now().UnixMilli(), js.ExpiresAt)
	}
	host.awaitMatch(protocol.TypeParticipantLeft, js.You)

	kept, jk := e.joinToken(t, "clinic", "Sam", false, mint(t, signaling.TokenSpec{Room: "clinic", Identity: "sam", TTL: 2 * time.Second}))
	_ = kept.Refresh(mint(t, signaling.TokenSpec{Room: "clinic", Identity: "someone-else"}))
	kept.awaitError(protocol.ErrForbidden)
	_ = kept.Refresh(mint(t, signaling.TokenSpec{Room: "clinic", Identity: "sam"}))
	var rs protocol.Session
	kept.await(protocol.TypeRefreshed, &rs)
	if rs.ExpiresAt <= jk.ExpiresAt {
		t.Fatalf("refreshed to %d, was %d", rs.ExpiresAt, jk.ExpiresAt)
	}
	past := time.UnixMilli(jk.ExpiresAt).Add(500 * time.Millisecond)
	waitUntil(t, "the first token's expiry to pass", 5*time.Second, func() bool { return time.Now().After(past) })
	select {
	case <-kept.Done():
		t.Fatal("a refreshed session was closed at its first token's expiry")
	default:
	}
	if len(e.sig.AllRooms()[0].Members) != 2 {
		t.Fatalf("members %+v", e.sig.AllRooms()[0].Members)
	}
}

// Admin rights reach the token's room only; a host's token reaches its
// own room; "*" with admin reaches all.
func TestAdminAndHostTokensAreScopedToTheirRoom(t *testing.T) {
	e := authServer(t)
	e.joinToken(t, "room-a", "A", true, mint(t, signaling.TokenSpec{Room: "room-a", Identity: "a", Role: protocol.RoleHost}))
	e.joinToken(t, "room-b", "B", true, mint(t, signaling.TokenSpec{Room: "room-b", Identity: "b", Role: protocol.RoleHost}))
	adminA := mint(t, signaling.TokenSpec{Room: "room-a", Identity: "ops-a", Grants: signaling.Grants{Admin: true}})
	hostA := mint(t, signaling.TokenSpec{Room: "room-a", Identity: "dr-a", Role: protocol.RoleHost})
	guestA := mint(t, signaling.TokenSpec{Room: "room-a", Identity: "pat-a"})
	all := mint(t, signaling.TokenSpec{Room: "*", Identity: "ops", Grants: signaling.Grants{Admin: true}})
	hostAll := mint(t, signaling.TokenSpec{Room: "*", Identity: "dr-any", Role: protocol.RoleHost})

	rooms := func(tok string) []string {
		var rs []signaling.RoomStatus
		if code := getJSON(t, e.httpURL("/api/rooms"), tok, &rs); code != http.StatusOK {
			return []string{http.StatusText(code)}
		}
		var names []string
		for _, r := range rs {
			names = append(names, r.Room)
		}
		return names
	}
	for _, c := range []struct {
		name, tok, want string
	}{
		{"room admin", adminA, "room-a"},
		{"room host", hostA, "room-a"},
		{"guest", guestA, "Unauthorized"},
		{"server-wide admin", all, "room-a,room-b"},
		{"host of no room in particular", hostAll, "Unauthorized"},
		{"none", "", "Unauthorized"},
	} {
		if got := strings.Join(rooms(c.tok), ","); got != c.want {
			t.Errorf("%s: /api/rooms shows %q, want %q", c.name, got, c.want)
		}
	}
	if code := post(t, e.httpURL("/api/rooms/room-b/policy"), adminA, `{"sfuOnly":true}`, nil); code != http.StatusUnauthorized {
		t.Errorf("room-a's admin set room-b's policy: %d", code)
	}
	if code := post(t, e.httpURL("/api/rooms/room-a/policy"), adminA, `{"sfuOnly":true}`, nil); code != http.StatusOK {
		t.Errorf("room-a's admin could not set room-a's policy: %d", code)
	}
	if code := getJSON(t, e.httpURL("/api/stats"), adminA, nil); code != http.StatusUnauthorized {
		t.Errorf("a room admin read server-wide stats: %d", code)
	}
	// The lobby's room check tells counts to hosts only.
	var check signaling.RoomCheck
	getJSON(t, e.httpURL("/api/rooms/room-a"), "", &check)
	if check.Exists || check.Present != 0 {
		t.Errorf("an anonymous room check learnt %+v", check)
	}
	getJSON(t, e.httpURL("/api/rooms/room-a"), hostA, &check)
	if !check.Exists || check.Present != 1 || check.Live != 1 {
		t.Errorf("the host's room check: %+v", check)
	}
}

// A host mints a guest invite link through the server; the link's token
// is a guest's for the host's room, and it admits to the waiting room.
func TestHostsMintGuestInvites(t *testing.T) {
	e := authServer(t)
	host, _ := e.joinToken(t, "clinic", "Dr", true, mint(t, signaling.TokenSpec{Room: "clinic", Identity: "dr", Role: protocol.RoleHost}))
	hostTok := mint(t, signaling.TokenSpec{Room: "clinic", Identity: "dr2", Role: protocol.RoleHost})
	guestTok := mint(t, signaling.TokenSpec{Room: "clinic", Identity: "pat"})
	for _, c := range []struct {
		name, tok, body string
		want            int
	}{
		{"guest", guestTok, `{"room":"clinic"}`, http.StatusUnauthorized},
		{"other room", hostTok, `{"room":"elsewhere"}`, http.StatusUnauthorized},
		{"host invite by a host", hostTok, `{"room":"clinic","role":"host"}`, http.StatusForbidden},
		{"bad name", hostTok, `{"room":"clinic","name":"\u202e"}`, http.StatusBadRequest},
		{"too long", hostTok, `{"room":"clinic","ttlSeconds":99999999}`, http.StatusBadRequest},
	} {
		if code := post(t, e.httpURL("/api/invites"), c.tok, c.body, nil); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	var inv signaling.Invite
	if code := post(t, e.httpURL("/api/invites"), hostTok, `{"room":"clinic","name":"Pat Doe","ttlSeconds":600}`, &inv); code != http.StatusOK {
		t.Fatalf("invite: %d", code)
	}
	u, err := url.Parse(inv.URL)
	if err != nil || u.Query().Get("room") != "clinic" || u.Query().Has("token") || !strings.HasPrefix(u.Fragment, "token=") {
		t.Fatalf("invite URL %q: the token belongs in the fragment", inv.URL)
	}
	c, err := signaling.VerifyToken(testSecret, inv.Token, "clinic")
	if err != nil || c.Role != protocol.RoleGuest || c.Name != "Pat Doe" || c.Grants.Admin ||
		time.Until(c.ExpiresAt.Time) > 10*time.Minute+time.Second {
		t.Fatalf("invite token %+v, %v", c, err)
	}
	_, j := e.joinToken(t, "clinic", "Someone", true, inv.Token)
	if j.Live || j.Name != "Pat Doe" {
		t.Fatalf("the invited guest joined %+v", j)
	}
	host.awaitMatch(protocol.TypeParticipantJoined, j.You)
}

func TestShutdownSaysGoodbye(t *testing.T) {
	e := startServer(t, nil)
	p, _ := e.join(t, "bye", "A", true)
	startPublisher(t, p)
	p.await(protocol.TypeTrackPublished, nil)
	go func() { _ = e.sig.Shutdown(ctxT(t, 5*time.Second)) }()
	var g protocol.Goodbye
	p.await(protocol.TypeGoodbye, &g)
	if g.Code != protocol.GoodbyeShutdown {
		t.Fatalf("goodbye %+v", g)
	}
	select {
	case <-p.Done():
	case <-testenv.After(5 * time.Second):
		t.Fatal("connection not closed after goodbye")
	}
	waitUntil(t, "the SFU to be empty", 5*time.Second, func() bool { return e.sfu.Stats().Participants == 0 })
}

// post sends a JSON body with a bearer token and decodes a 200 answer.
func post(t *testing.T, url, bearer, body string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}
