package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The ring flow as people see it. A clinician's page calls a patient's in
// the waiting room: the patient's page rings ("your clinician"), Accept
// puts both in the call with video both ways. Then each other ending shows
// its message: a decline (to the caller), a cancel (to the callee), and an
// unanswered call (to both). A patient in the call cannot call anyone.
func TestRingFlowInTheUI(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	_, p := newPages(t, 90*time.Second, 3, "doctor", "patient", "other")
	doctor, patient, other := p[0], p[1], p[2]

	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "ring", "Dr Lee", true)))
	waitFor(t, doctor, "the doctor to be live", 15*time.Second,
		`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "live" })

	// The patient arrives by an invite link without autojoin: the lobby is
	// filled in, tells nothing of who is there, and offers one way in.
	do(t, patient, chromedp.Navigate(guestURL(srv.URL, "ring", "Pat Doe", false)))
	waitFor(t, patient, "the patient's lobby", 10*time.Second,
		`document.getElementById('join-live').textContent + '|' + document.getElementById('join-wait').hidden`,
		func(s string) bool { return s == "Join the consultation|true" })
	if status := eval[string](t, patient, `document.getElementById('room-status').textContent`); status != "" {
		t.Errorf("the patient's lobby tells who is there: %q", status)
	}
	click(t, patient, "#join-live")
	waitFor(t, patient, "the patient to wait", 10*time.Second,
		`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "waiting" })

	// The doctor opens the member list and calls the patient.
	waitFor(t, doctor, "the waiting badge", 10*time.Second,
		`document.getElementById('people-badge').textContent`, func(s string) bool { return s == "1" })
	click(t, doctor, "#btn-people")
	click(t, doctor, `button[aria-label="Call Pat Doe"]`)
	waitFor(t, doctor, "the calling dialog", 10*time.Second,
		`document.getElementById('ring-out').open && document.getElementById('ring-out-title').textContent`,
		func(s string) bool { return s == "Calling Pat Doe…" })
	waitFor(t, patient, "the incoming call dialog", 10*time.Second,
		`document.getElementById('ring-in').open && document.getElementById('ring-in-title').textContent`,
		func(s string) bool { return s == "Your clinician is calling you" })
	screenshot(t, patient, "ring-incoming-phone", 390, 844, true)
	click(t, patient, "#ring-accept")

	waitVideoFlowing(t, patient, "patient", 1)
	waitVideoFlowing(t, doctor, "doctor", 1)
	if open := eval[bool](t, doctor, `document.getElementById('ring-out').open`); open {
		t.Error("the calling dialog stayed open after the call was accepted")
	}

	// A second waiting person declines.
	do(t, other, chromedp.Navigate(guestURL(srv.URL, "ring", "Sam Roe", true)))
	waitFor(t, other, "Sam to wait", 10*time.Second,
		`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "waiting" })
	click(t, doctor, `button[aria-label="Call Sam Roe"]`)
	waitFor(t, other, "the second incoming call", 10*time.Second,
		`document.getElementById('ring-in').open`, func(b bool) bool { return b })
	click(t, other, "#ring-reject")
	waitFor(t, doctor, "the doctor to be told of the decline", 10*time.Second,
		toastsJS,
		func(s string) bool { return strings.Contains(s, "Sam Roe declined the call") })
	if open := eval[bool](t, doctor, `document.getElementById('ring-out').open`); open {
		t.Error("the calling dialog stayed open after the decline")
	}
	if state := eval[string](t, other, `document.getElementById('room-view').dataset.state`); state != "waiting" {
		t.Errorf("after declining, the page is %q, want waiting", state)
	}

	// The patient, in the call, has no way to call Sam (nor sees Sam).
	click(t, patient, "#btn-people")
	if n := eval[int](t, patient, `document.querySelectorAll('#people-list button').length`); n != 0 {
		t.Errorf("the patient has %d buttons in the member list", n)
	}

	// The doctor calls again, then gives up, and Sam is told.
	click(t, doctor, `button[aria-label="Call Sam Roe"]`)
	waitFor(t, other, "the third incoming call", 10*time.Second,
		`document.getElementById('ring-in').open`, func(b bool) bool { return b })
	click(t, doctor, "#ring-cancel")
	waitFor(t, other, "the callee to be told of the cancel", 10*time.Second,
		`document.getElementById('ring-in').open + ' ' + `+toastsJS,
		func(s string) bool {
			return strings.HasPrefix(s, "false ") && strings.Contains(s, "Your clinician cancelled the call")
		})

	// Nobody answers: with a short ring timeout, both sides are told.
	quick := startServer(t, 2*time.Second)
	do(t, patient, chromedp.Navigate(roomURL(quick.URL, "ring-quick", "Dr Kim", true)))
	do(t, other, chromedp.Navigate(guestURL(quick.URL, "ring-quick", "Sam Roe", true)))
	waitFor(t, other, "Sam to wait", 10*time.Second,
		`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "waiting" })
	waitFor(t, patient, "Dr Kim to be live", 15*time.Second,
		`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "live" })
	click(t, patient, "#btn-people")
	click(t, patient, `button[aria-label="Call Sam Roe"]`)
	waitFor(t, patient, "the no-answer message", 10*time.Second, toastsJS,
		func(s string) bool { return strings.Contains(s, "No answer from Sam Roe") })
	waitFor(t, other, "the missed-call message", 10*time.Second,
		`document.getElementById('ring-in').open + ' ' + `+toastsJS,
		func(s string) bool {
			return strings.HasPrefix(s, "false ") && strings.Contains(s, "You missed a call from your clinician")
		})
}

const toastsJS = `[...document.querySelectorAll('.toast')].map(e => e.textContent).join('|')`
