package signaling_test

import (
	"errors"
	"testing"
	"time"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

// joinErr joins and returns the server's refusal (nil if it let p in).
func joinErr(t *testing.T, p *peer, j protocol.Join) *client.ServerError {
	t.Helper()
	_, err := p.Join(ctxT(t, 5*time.Second), j)
	if err == nil {
		return nil
	}
	var se *client.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("join %+v: %v", j, err)
	}
	return se
}

func wantBusy(t *testing.T, what string, se *client.ServerError) {
	t.Helper()
	if se == nil || se.Code != protocol.ErrServerBusy || se.RetryAfter <= 0 {
		t.Fatalf("%s: %+v, want server-busy with a time to retry after", what, se)
	}
}

// With the server at its limit of people in calls, a new live join and a
// host's admission are refused with server-busy, a waiting join is not
// (until the room's waiting room is full), and the running call's media
// goes on throughout.
func TestAdmissionLimitsRefuseNewSeatsAndKeepTheCall(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) {
		c.Admission = signaling.AdmissionConfig{MaxLive: 2, MaxWaiting: 1}
	})
	doc, _ := e.joinAs(t, "clinic", "Dr", "host", true)
	pat, _ := e.joinAs(t, "clinic", "Pat", "guest", false)
	doc.Admit(pat.ID())
	pat.awaitMatch(protocol.TypeParticipantUpdated, pat.ID())
	pub := startPublisher(t, doc)
	defer pub.close()
	var got *arrivals
	select {
	case r := <-pat.trackCh:
		got = record(r)
	case <-testenv.After(10 * time.Second):
		t.Fatal("the patient got no track")
	}
	got.flowing(t, "the call's media", time.Now(), 20, 10*time.Second)

	// Two people are in calls: the limit.
	third := e.dial(t)
	wantBusy(t, "a third live join, in another room", joinErr(t, third, protocol.Join{Room: "other", Name: "X", Live: true}))
	// The refusal changed nothing for that client: it may wait instead.
	if se := joinErr(t, third, protocol.Join{Room: "clinic", Name: "Fam", Role: "guest", Live: false}); se != nil {
		t.Fatalf("a waiting join under the live limit: %+v", se)
	}
	fourth := e.dial(t)
	wantBusy(t, "a second waiting member, over the room's waiting limit",
		joinErr(t, fourth, protocol.Join{Room: "clinic", Name: "Y", Role: "guest", Live: false}))
	// The host may not admit past the server's limit either.
	doc.Admit(third.ID())
	if pe := doc.awaitError(protocol.ErrServerBusy); pe.RetryAfterMS <= 0 {
		t.Fatalf("admission refused without a retry time: %+v", pe)
	}
	got.flowing(t, "the call's media after the refusals", time.Now(), 20, 10*time.Second)
	if st := e.sig.Counters(); st.Errors[protocol.ErrServerBusy] != 3 {
		t.Fatalf("server-busy sent %d times, want 3", st.Errors[protocol.ErrServerBusy])
	}
	for _, r := range e.sig.AllRooms() {
		if r.Room == "other" {
			t.Fatalf("the refused join left a room behind: %+v", r)
		}
	}
}

// Joins from one address are limited per second: a burst gets through,
// the next join is refused with a time to retry after, and once a new
// join is due (one every 4 s here: far longer than the burst takes on a
// loaded machine) the same client gets in.
func TestJoinsPerSecondFromOneAddressAreLimited(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) {
		c.Admission = signaling.AdmissionConfig{JoinRate: 0.25, JoinBurst: 3}
	})
	for i := range 3 {
		if se := joinErr(t, e.dial(t), protocol.Join{Room: "r", Name: "P", Live: false}); se != nil {
			t.Fatalf("join %d of the burst: %+v", i+1, se)
		}
	}
	late := e.dial(t)
	se := joinErr(t, late, protocol.Join{Room: "r", Name: "P", Live: false})
	wantBusy(t, "the join after the burst", se)
	var tried time.Time
	testenv.Eventually(t, 15*time.Second, "a join to be let in again", func() bool {
		if time.Since(tried) < 500*time.Millisecond { // a join now and then, not a flood
			return false
		}
		tried = time.Now()
		return joinErr(t, late, protocol.Join{Room: "r", Name: "P", Live: false}) == nil
	})
}
