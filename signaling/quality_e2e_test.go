package signaling_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/transport/v5/vnet"

	"consult/internal/testenv"
	"consult/protocol"
)

// memberOf finds id's entry in a quality message.
func memberOf(q protocol.Quality, id string) (protocol.MemberQuality, bool) {
	for _, m := range q.Members {
		if m.Participant == id {
			return m, true
		}
	}
	return protocol.MemberQuality{}, false
}

// awaitQuality waits until p's latest quality message satisfies ok.
func (p *peer) awaitQuality(what string, d time.Duration, ok func(protocol.Quality) bool) protocol.Quality {
	p.t.Helper()
	q, err := p.AwaitQuality(ctxT(p.t, d), ok)
	if err != nil {
		last, _ := p.Quality()
		p.t.Fatalf("%s: %v; the last quality message: %+v", what, err, last)
	}
	return q
}

// readAll reads every track p receives, as a real client plays them:
// pion's transport-cc feedback counts only what the application reads.
func readAll(t *testing.T, p *peer) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case r := <-p.trackCh:
				record(r)
			case <-done:
				return
			}
		}
	}()
}

// levels is "id=level lossPct/rttMs/jitterMs ..." for a failure message.
func levels(q protocol.Quality) string {
	var b strings.Builder
	for _, m := range q.Members {
		fmt.Fprintf(&b, "%s=%s(%s) %.1f%%/%dms/%dms/%dkbps ", m.Participant, m.Level, m.Path, m.LossPct, m.RTTMS, m.JitterMS, m.DownKbps)
	}
	return b.String()
}

// Three members on the SFU; one of them on a network that loses a fifth
// of its packets both ways. Everyone in the call is told that member's
// link is poor, with the loss it has, and that the others' are not: they
// lose little (what the impaired member's uplink lost before the
// server is not theirs). A clean link is graded good or fair, not good
// alone: the round trip and jitter of this in-process network are the
// machine's scheduling, and on a loaded machine they pass good's bounds.
func TestTheCallIsToldWhoseLinkIsPoor(t *testing.T) {
	mw := newMediaWorld(t, 0)
	ips := []string{"1.2.3.20", "1.2.3.21", "1.2.3.22"}
	var ps []*peer
	for i, ip := range ips {
		p := mw.member(t, fmt.Sprint("member-", i), ip)
		readAll(t, p)
		ps = append(ps, p)
	}
	clean := func(m protocol.MemberQuality) bool {
		return (m.Level == protocol.QualityGood || m.Level == protocol.QualityFair) && m.Path == protocol.PathSFU && m.LossPct < 5
	}
	// Each member's downlink estimate comes with its figures (the
	// clients send transport-cc feedback).
	estimated := func(q protocol.Quality) bool {
		for _, p := range ps {
			if m, ok := memberOf(q, p.ID()); !ok || m.DownKbps <= 0 {
				return false
			}
		}
		return true
	}
	allClean := func(q protocol.Quality) bool {
		for _, p := range ps {
			if m, ok := memberOf(q, p.ID()); !ok || !clean(m) {
				return false
			}
		}
		return len(q.Members) == 3
	}
	for _, p := range ps {
		p.awaitQuality("every link clean, with its estimate, before the loss", 20*time.Second,
			func(q protocol.Quality) bool { return allClean(q) && estimated(q) })
	}

	mw.setLoss(ips[2], 0.2)
	mw.setLossTo(ips[2], 0.2)
	impaired := ps[2].ID()
	for _, p := range ps {
		q := p.awaitQuality("the impaired member poor, the others clean", 20*time.Second, func(q protocol.Quality) bool {
			for _, o := range ps {
				m, ok := memberOf(q, o.ID())
				switch {
				case !ok:
					return false
				case o.ID() == impaired && (m.Level != protocol.QualityPoor || m.LossPct <= 5):
					return false
				case o.ID() != impaired && !clean(m):
					return false
				}
			}
			return len(q.Members) == 3
		})
		t.Logf("%s is told: %s", p.ID(), levels(q))
	}
}

// On the direct path the server sees no media: a member's own report is
// its grade, for both members of the call. Of a burst of reports only the
// first in a second is kept, and the others are dropped without an error.
func TestOnTheDirectPathTheClientsReportGradesItsLink(t *testing.T) {
	var lanHosts [2]*vnet.Net
	w := newWorld(t, func(w *world) {
		lan := w.lan("10.0.1.0/24", symmetric)
		lanHosts[0], lanHosts[1] = w.host(lan, "10.0.1.2"), w.host(lan, "10.0.1.3")
	})
	a := w.join(t, lanHosts[0], "Doctor")
	b := w.join(t, lanHosts[1], "Patient")
	w.awaitDirect(t, a, b)
	if err := a.ReportLink(protocol.LinkStats{RTTMS: 600, Loss: 0.01, JitterMS: 4}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := a.ReportLink(protocol.LinkStats{RTTMS: 20}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*p2pPeer{a, b} {
		q := p.awaitQuality("the doctor's reported link poor on the direct path", 15*time.Second, func(q protocol.Quality) bool {
			ma, okA := memberOf(q, a.ID())
			mb, okB := memberOf(q, b.ID())
			return okA && okB && len(q.Members) == 2 && ma.Level == protocol.QualityPoor && ma.Path == protocol.PathDirect &&
				ma.RTTMS == 600 && ma.LossPct == 1 && mb.Path == protocol.PathDirect && mb.Level == protocol.QualityUnknown
		})
		for _, m := range q.Members {
			if m.DownKbps != 0 {
				t.Errorf("%s has a downlink estimate (%d kbit/s) on the direct path, where the server sends it nothing", m.Participant, m.DownKbps)
			}
		}
		t.Logf("%s is told: %s", p.ID(), levels(q))
	}
	if a.said(`"type":"error"`) {
		t.Fatal("a burst of reports was answered with an error")
	}
}

// Only the call hears of it: a waiting guest never gets a quality
// message, nor is listed in one, and its own report is refused.
func TestWaitingGuestsGetNoQuality(t *testing.T) {
	e := startServer(t, nil)
	host, hj := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	pat, pj := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	if err := host.Admit(pj.You); err != nil {
		t.Fatal(err)
	}
	pat.awaitMatch(protocol.TypeParticipantUpdated, pj.You)
	waiting, wj := e.joinAs(t, "clinic", "Sam", protocol.RoleGuest, true)
	if wj.Live {
		t.Fatal("the second guest skipped the waiting room")
	}
	host.awaitMatch(protocol.TypeParticipantJoined, wj.You)
	for _, p := range []*peer{host, pat} {
		p.awaitQuality("quality of the two in the call", 10*time.Second, func(q protocol.Quality) bool {
			_, h := memberOf(q, hj.You)
			_, g := memberOf(q, pj.You)
			return h && g && len(q.Members) == 2
		})
	}
	// The answer to the waiting guest's own message comes after anything
	// the server queued for it before: the quality just sent included.
	if err := waiting.ReportLink(protocol.LinkStats{RTTMS: 30}); err != nil {
		t.Fatal(err)
	}
	waiting.awaitError(protocol.ErrInvalidState)
	if waiting.said(`"type":"quality"`) || waiting.said(pj.You) {
		t.Fatal("a waiting guest heard of the call's links")
	}
}

// A bad report is refused, to its sender only, with what is wrong; the
// call goes on.
func TestBadLinkStatsAreRefusedToTheSenderOnly(t *testing.T) {
	e := startServer(t, nil)
	a, _ := e.join(t, "r", "A", true)
	b, _ := e.join(t, "r", "B", true)
	a.awaitQuality("a call's quality", 10*time.Second, func(q protocol.Quality) bool { return len(q.Members) == 2 })
	for _, bad := range []string{
		`{"type":"link-stats","rttMs":-5,"loss":0,"jitterMs":0}`,
		`{"type":"link-stats","rttMs":50,"loss":1.5}`,
		`{"type":"link-stats","loss":-0.1}`,
		`{"type":"link-stats","rttMs":1e9}`,
		`{"type":"link-stats","jitterMs":1e7}`,
		`{"type":"link-stats","loss":"high"}`,
		`{"type":"link-stats","rttMs":true}`,
		`{"type":"link-stats","relay":"yes"}`,
	} {
		if err := a.SendRaw([]byte(bad)); err != nil {
			t.Fatal(err)
		}
		if pe := a.awaitError(protocol.ErrBadRequest); pe.Ref != protocol.TypeLinkStats || pe.Message == "" {
			t.Fatalf("%s refused with %+v", bad, pe)
		}
	}
	if err := a.Chat("still here?", ""); err != nil {
		t.Fatal(err)
	}
	if m := b.awaitChat(); m.Text != "still here?" {
		t.Fatalf("the other member got %+v", m)
	}
	if b.said(`"type":"error"`) {
		t.Fatal("another member was told of a bad report")
	}
	testenv.Eventually(t, 5*time.Second, "both still in the call", func() bool {
		rooms := e.sig.AllRooms()
		return len(rooms) == 1 && len(rooms[0].Members) == 2 && rooms[0].Members[0].Live && rooms[0].Members[1].Live
	})
}
