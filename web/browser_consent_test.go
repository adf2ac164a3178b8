package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/recording"
)

// A clinician records from the call, with consent: the other page is
// asked in a dialog; "Don't record" starts nothing and the clinician is
// told; asked again and agreed, the recording starts and both pages show
// the indicator; Stop ends it. The recording's consent names both answers.
func TestChromiumRecordingAsksForConsent(t *testing.T) {
	srv := startServer(t, 0)
	_, p := newPages(t, 90*time.Second, 2, "ana", "ben")
	ana, ben := p[0], p[1]
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "consent", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "consent", "Ben", true)))
	waitVideoFlowing(t, ana, "Ana", 1)

	dialogOpen := `document.getElementById('consent-dialog').open`
	recShown := `!document.getElementById('rec').hidden`
	click(t, ana, "#btn-record")
	waitFor(t, ben, "Ben's consent dialog", 10*time.Second, dialogOpen, func(b bool) bool { return b })
	text := eval[string](t, ben, `document.getElementById('consent-text').textContent`)
	if !strings.Contains(text, "Ana would like to record") {
		t.Fatalf("the dialog says %q", text)
	}
	label := eval[string](t, ana, `document.querySelector('#btn-record .ctl-label').textContent`)
	if label != "Asking…" {
		t.Fatalf("Ana's button reads %q while asking", label)
	}
	click(t, ben, "#consent-decline")
	waitFor(t, ana, "Ana told of the decline", 10*time.Second,
		`[...document.querySelectorAll('#toasts .toast')].map(e => e.textContent).join('|')`,
		func(s string) bool { return strings.Contains(s, "Not recording: Ben did not agree") })
	waitFor(t, ana, "Ana's button back to Record", 5*time.Second,
		`document.querySelector('#btn-record .ctl-label').textContent`, func(s string) bool { return s == "Record" })
	var list []recording.Info
	srv.getJSON(t, "/api/recordings", &list)
	if len(list) != 0 || eval[bool](t, ben, recShown) || eval[bool](t, ben, dialogOpen) {
		t.Fatalf("after a decline: recordings %+v", list)
	}

	click(t, ana, "#btn-record")
	waitFor(t, ben, "Ben's consent dialog again", 10*time.Second, dialogOpen, func(b bool) bool { return b })
	click(t, ben, "#consent-accept")
	waitFor(t, ana, "Ana's recording indicator", 15*time.Second, recShown, func(b bool) bool { return b })
	waitFor(t, ben, "Ben's recording indicator", 15*time.Second, recShown, func(b bool) bool { return b })
	waitFor(t, ana, "Ana's button to read Stop", 5*time.Second,
		`document.querySelector('#btn-record .ctl-label').textContent`, func(s string) bool { return s == "Stop" })
	srv.getJSON(t, "/api/recordings", &list)
	if len(list) != 1 || list[0].Consent.Policy != recording.ConsentAsked || len(list[0].Consent.Answers) != 2 {
		t.Fatalf("recordings %+v", list)
	}
	for _, a := range list[0].Consent.Answers {
		if !a.Accepted {
			t.Fatalf("answers %+v", list[0].Consent.Answers)
		}
	}
	click(t, ana, "#btn-record")
	waitFor(t, ben, "Ben's indicator to go", 15*time.Second, recShown, func(b bool) bool { return !b })
	srv.getJSON(t, "/api/recordings", &list)
	if len(list) != 1 || list[0].State != recording.StateStopped {
		t.Fatalf("after stop: %+v", list)
	}
}
