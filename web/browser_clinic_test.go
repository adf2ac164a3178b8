package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/signaling"
)

// A clinic consult in the browser: a doctor and two patients. The
// patients wait; the doctor is alerted and admits the first; the second
// never sees the first's name, anywhere in its page; a patient in the call
// has no control over anyone; the doctor ends the consult and both
// patients see the ended screen.
func TestClinicConsultWithADoctorAndTwoPatients(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	_, p := newPages(t, 120*time.Second, 3, "doctor", "pat1", "pat2")
	doctor, pat1, pat2 := p[0], p[1], p[2]

	// The patients come first: the doctor, arriving later, is still told.
	do(t, pat1, chromedp.Navigate(guestURL(srv.URL, "clinic", "Pat One", true)))
	waitState(t, pat1, "pat1", "waiting")
	waitFor(t, pat1, "the patient's waiting screen", 5*time.Second, `document.getElementById('waiting-text').textContent`,
		func(s string) bool { return strings.Contains(s, "Your clinician has been told you are here") })
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "clinic", "Dr Lee", true)))
	waitState(t, doctor, "doctor", "live")
	do(t, pat2, chromedp.Navigate(guestURL(srv.URL, "clinic", "Sam Two", true)))
	waitState(t, pat2, "pat2", "waiting")

	// The doctor sees both waiting: a card on the stage, the count in the
	// tab's title, and a toast.
	waitFor(t, doctor, "the waiting card", 10*time.Second,
		`document.getElementById('waiting-card').hidden ? '' : document.getElementById('waiting-card').textContent`,
		func(s string) bool {
			return strings.Contains(s, "2 people are in the waiting room") && strings.Contains(s, "Pat One") && strings.Contains(s, "Sam Two")
		})
	if title := eval[string](t, doctor, `document.title`); !strings.HasPrefix(title, "(2) ") {
		t.Errorf("the doctor's tab title is %q, want the number waiting first", title)
	}
	if toasts := eval[string](t, doctor, toastsJS); !strings.Contains(toasts, "waiting room") {
		t.Errorf("no toast told the doctor someone was waiting: %q", toasts)
	}
	screenshot(t, doctor, "clinic-doctor-waiting-card", 1280, 800, false)

	click(t, doctor, `#waiting-card button[aria-label="Admit Pat One"]`)
	waitState(t, pat1, "pat1", "live")
	waitVideoFlowing(t, pat1, "pat1", 1)
	waitVideoFlowing(t, doctor, "doctor", 1)

	// Pat One, in the call, sees the doctor marked as the clinician, and
	// no control over anyone: no Call, Admit, Remove or Mute for others.
	click(t, pat1, "#btn-people")
	people := eval[string](t, pat1, `document.getElementById('people-list').textContent`)
	if !strings.Contains(people, "Dr Lee") || !strings.Contains(people, "Clinician") || strings.Contains(people, "Sam Two") {
		t.Errorf("Pat One's member list: %q", people)
	}
	if n := eval[int](t, pat1, `document.querySelectorAll('#people-list button, #waiting-card button').length`); n != 0 {
		t.Errorf("a patient in the call has %d controls over others", n)
	}

	// Sam Two has been told nothing of anyone.
	for _, name := range []string{"Pat One", "Dr Lee"} {
		if eval[bool](t, pat2, `document.documentElement.outerHTML.includes(`+jsString(name)+`)`) {
			t.Errorf("the waiting patient's page holds %q", name)
		}
	}

	// The doctor leaves by ending the consult for everyone.
	click(t, doctor, "#btn-hangup")
	waitFor(t, doctor, "the leave dialog", 5*time.Second, `document.getElementById('leave-dialog').open`, func(b bool) bool { return b })
	click(t, doctor, "#leave-end")
	for _, pg := range []struct {
		name string
		ctx  context.Context
	}{{"pat1", pat1}, {"pat2", pat2}, {"doctor", doctor}} {
		text := waitFor(t, pg.ctx, pg.name+"'s ended screen", 10*time.Second,
			`document.getElementById('ended').hidden ? '' : document.getElementById('ended').textContent`,
			func(s string) bool { return strings.Contains(s, "The consultation has ended") })
		if !strings.Contains(text, "ended the consultation") {
			t.Errorf("%s's ended screen says %q", pg.name, text)
		}
	}
	screenshot(t, pat1, "clinic-ended-phone", 390, 844, true)
	if n := eval[int](t, pat1, `document.querySelectorAll('.tile[data-remote] video').length`); n != 0 {
		t.Errorf("the ended page still shows %d remote videos", n)
	}
	srv.waitNoRooms(t)
}

// With auth on, the doctor's page copies a guest invite link minted by
// the server; it lets the patient in (to the waiting room, then admitted).
// No token stays in either address bar, and a refused link says why and
// leaves the lobby usable.
func TestInviteLinkWithAuthAdmitsThePatient(t *testing.T) {
	const secret = "clinic-secret"
	srv := startServerWith(t, serverOptions{secret: secret})
	_, p := newPages(t, 90*time.Second, 2, "doctor", "patient")
	doctor, patient := p[0], p[1]
	hostTok, err := signaling.MintToken([]byte(secret), signaling.TokenSpec{Room: "clinic", Identity: "dr-lee", Name: "Dr Lee",
		Role: protocol.RoleHost, Grants: signaling.Grants{Publish: true, Subscribe: true}, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The clipboard is the browser's; the test only needs what went in.
	if _, err := chromedp.Call(doctor, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `navigator.clipboard.writeText = (t) => { window.copied = t; return Promise.resolve(); };`}); err != nil {
		t.Fatal(err)
	}
	do(t, doctor, chromedp.Navigate(srv.URL+"/?room=clinic&autojoin=1#token="+url.QueryEscape(hostTok)))
	waitState(t, doctor, "doctor", "live")
	if href := eval[string](t, doctor, `location.href`); strings.Contains(href, "token") {
		t.Errorf("the doctor's address bar still holds the token: %s", href)
	}
	click(t, doctor, "#copy-invite-room")
	link := waitFor(t, doctor, "the copied invite link", 10*time.Second, `window.copied || ''`, func(s string) bool { return s != "" })
	if !strings.Contains(link, "#token=") || strings.Contains(link, hostTok) {
		t.Fatalf("copied link %q: want a guest token of its own in the fragment", link)
	}

	// A forged link is refused with words, and the lobby stays usable.
	do(t, patient, chromedp.Navigate(srv.URL+"/?room=clinic#token=forged.token.here"))
	waitFor(t, patient, "the lobby", 10*time.Second, `!document.getElementById('lobby').hidden`, func(b bool) bool { return b })
	do(t, patient, chromedp.SetValue(chromedp.CSS("#name"), "Pat Doe"))
	click(t, patient, "#join-live")
	waitFor(t, patient, "the refusal", 10*time.Second,
		`document.getElementById('form-error').textContent + '|' + document.getElementById('join-live').disabled + '|' + document.getElementById('join-live').textContent`,
		func(s string) bool {
			return strings.Contains(s, "does not let you in") && strings.HasSuffix(s, "|false|Join the consultation")
		})

	// The real link, opened afresh (as from an e-mail; the same address
	// with another fragment would not reload the page).
	do(t, patient, chromedp.Navigate("about:blank"))
	do(t, patient, chromedp.Navigate(link))
	waitFor(t, patient, "the lobby", 10*time.Second, `!document.getElementById('lobby').hidden && document.getElementById('role-fixed').textContent`,
		func(s string) bool { return strings.Contains(s, "patient") })
	if href := eval[string](t, patient, `location.href`); strings.Contains(href, "token") {
		t.Errorf("the patient's address bar still holds the token: %s", href)
	}
	click(t, patient, "#join-live")
	waitState(t, patient, "patient", "waiting")
	click(t, doctor, `#waiting-card button[aria-label="Admit Pat Doe"]`)
	waitState(t, patient, "patient", "live")
	waitVideoFlowing(t, patient, "patient", 1)
	waitVideoFlowing(t, doctor, "doctor", 1)
}

func waitState(t *testing.T, ctx context.Context, who, state string) {
	t.Helper()
	waitFor(t, ctx, who+" to be "+state, 15*time.Second, `document.getElementById('room-view').dataset.state`,
		func(s string) bool { return s == state })
}

// waitNoRooms waits until the server holds no room.
func (ts *testServer) waitNoRooms(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testenv.Scale(10 * time.Second))
	for len(ts.sig.AllRooms()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("rooms left: %+v", ts.sig.AllRooms())
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}
