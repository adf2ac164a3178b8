package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Screenshots of the main screens at desktop (1280×800) and phone
// (390×844) sizes, saved to <repo>/testdata/artifacts/ for a person to
// look at. The test also checks that nothing overflows the phone screen
// sideways, that every button has an accessible name, and that a
// recording is shown; on the phone, the Join button shows without
// scrolling.
func TestScreenshotsAtDesktopAndPhoneSize(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	_, p := newPages(t, 90*time.Second, 3, "doctor", "patient", "waiting")
	doctor, patient, waiting := p[0], p[1], p[2]

	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "clinic-4", "Dr Amara Lee", false)))
	waitFor(t, doctor, "the preview", 10*time.Second,
		`document.getElementById('preview').videoWidth > 0 && document.getElementById('cam-select').options.length > 0`,
		func(b bool) bool { return b })
	screenshot(t, doctor, "lobby-desktop", 1280, 800, false)
	screenshot(t, doctor, "lobby-phone", 390, 844, true)
	checkPhoneLayout(t, doctor, "lobby")
	checkJoinVisible(t, doctor, "clinician's lobby")

	do(t, doctor, chromedp.EmulateViewport(1280, 800))
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "clinic-4", "Dr Amara Lee", true)))
	do(t, patient, chromedp.Navigate(guestURL(srv.URL, "clinic-4", "Jordan Patel", true)))
	click(t, doctor, `#waiting-card button[aria-label="Admit Jordan Patel"]`)
	waitVideoFlowing(t, doctor, "doctor", 1)
	waitVideoFlowing(t, patient, "patient", 1)
	click(t, patient, "#btn-mic")
	waitFor(t, doctor, "the patient's mute", 10*time.Second,
		`document.querySelector('.tile[data-remote]').dataset.audioMuted`, func(s string) bool { return s == "true" })

	do(t, waiting, chromedp.Navigate(guestURL(srv.URL, "clinic-4", "Sam Rivera", false)))
	screenshot(t, waiting, "lobby-patient-phone", 390, 844, true)
	checkJoinVisible(t, waiting, "patient's lobby")
	click(t, waiting, "#join-live")
	waitFor(t, waiting, "the waiting room", 10*time.Second,
		`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "waiting" })
	screenshot(t, waiting, "waiting-phone", 390, 844, true)
	checkPhoneLayout(t, waiting, "waiting room")
	screenshot(t, doctor, "call-waiting-card-desktop", 1280, 800, false)

	// A recorded consult says so on every page.
	srv.sig.SetRecording("clinic-4", true, nil)
	waitFor(t, doctor, "the recording indicator", 10*time.Second,
		`!document.getElementById('rec').hidden`, func(b bool) bool { return b })
	screenshot(t, doctor, "call-1to1-desktop", 1280, 800, false)
	click(t, doctor, "#btn-people")
	screenshot(t, doctor, "call-people-desktop", 1280, 800, false)
	click(t, doctor, "#people-close")
	screenshot(t, doctor, "call-1to1-phone", 390, 844, true)
	checkPhoneLayout(t, doctor, "call")
	// On a phone, Devices is one of the controls under "More".
	click(t, doctor, "#btn-more")
	screenshot(t, doctor, "call-more-phone", 390, 844, true)
	checkNoOverlap(t, doctor, "the More row (phone)")
	click(t, doctor, "#btn-devices")
	screenshot(t, doctor, "devices-phone", 390, 844, true)
	click(t, doctor, "#devices-done")
	waitFor(t, doctor, "the device pickers back in the lobby form", 5*time.Second,
		`document.getElementById('devices').parentElement.id`, func(s string) bool { return s == "join-form" })
}

// checkPhoneLayout fails if the page is wider than the phone's screen or
// a visible button has no accessible name.
func checkPhoneLayout(t *testing.T, ctx context.Context, screen string) {
	t.Helper()
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("%s: page is %d px wide on a 390 px screen", screen, w)
	}
	unnamed := eval[[]string](t, ctx, `[...document.querySelectorAll('button')]
		.filter(b => b.offsetParent !== null && !(b.getAttribute('aria-label') || b.textContent.trim()))
		.map(b => b.id || b.className)`)
	if len(unnamed) > 0 {
		t.Errorf("%s: buttons without an accessible name: %v", screen, unnamed)
	}
}

// checkJoinVisible fails if the lobby's Join button is not wholly on the
// screen without scrolling.
func checkJoinVisible(t *testing.T, ctx context.Context, screen string) {
	t.Helper()
	r := eval[[]float64](t, ctx, `(() => { scrollTo(0, 0); const r = document.getElementById('join-live').getBoundingClientRect();
	  return [r.top, r.bottom, innerHeight]; })()`)
	if r[0] < 0 || r[1] > r[2] {
		t.Errorf("%s: the Join button spans %.0f..%.0f px of a %.0f px high screen", screen, r[0], r[1], r[2])
	}
}
