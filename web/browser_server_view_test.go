package web_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"consult/internal/shaper"
	"consult/signaling"
)

// Who speaks comes from the server while the call goes through it: with
// the patient's microphone muted, the patient's page rings the clinician's
// tile and puts it on the main stage of speaker view, from the server's
// speaker events (the page's own levels are not used). The clinician's
// microphone is a steady tone: Chromium's fake one only beeps, shorter
// than speech.
func TestSpeakerViewFollowsTheServersActiveSpeaker(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}})
	_, p := newPages(t, 90*time.Second, 2, "doctor", "patient")
	doctor, patient := p[0], p[1]
	if _, err := chromedp.Call(doctor, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		const real = MediaDevices.prototype.getUserMedia;
		MediaDevices.prototype.getUserMedia = async function (c) {
			const s = await real.call(this, c);
			if (!c?.audio) return s;
			const ctx = new AudioContext();
			const osc = ctx.createOscillator();
			const gain = ctx.createGain();
			gain.gain.value = 0.5;
			const out = ctx.createMediaStreamDestination();
			osc.connect(gain).connect(out);
			osc.start();
			for (const t of s.getAudioTracks()) { s.removeTrack(t); t.stop(); }
			s.addTrack(out.stream.getAudioTracks()[0]);
			return s;
		};`}); err != nil {
		t.Fatal(err)
	}
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "speakers", "Dr Amara Lee", true)))
	do(t, patient, chromedp.Navigate(roomURL(srv.URL, "speakers", "Jordan Patel", true)))
	doc := waitVideoFlowing(t, patient, "patient", 1)[0]
	waitVideoFlowing(t, doctor, "doctor", 1)
	click(t, patient, "#btn-mic")
	click(t, patient, "#btn-layout")
	tile := fmt.Sprintf(`document.querySelector('.tile[data-pid=%s]')`, jsString(doc.PID))
	waitFor(t, patient, "the clinician on the main stage, ringed from the server's word", 20*time.Second,
		`[window.consultApp.stage.speakerSource, window.consultApp.stage.dominant, `+tile+`.dataset.main, `+tile+`.dataset.speaking,
		  document.querySelector('.tile[data-local]').dataset.speaking].join(' ')`,
		func(s string) bool { return s == "server "+doc.PID+" true true false" })
}

// estimateWords is how a tooltip gives the server's downlink estimate.
var estimateWords = regexp.MustCompile(`you can receive about [0-9.]+ (kbit|Mbit)/s\.$`)

// The server's view of each member's connection shows on every tile: the
// patient's link through a lossy relay is marked poor on the clinician's
// page, with the figures in words, and the clinician is told; the
// clinician's own link is good, and its tooltip says what the server
// estimates reaches it.
func TestNetworkQualityMarksAndTheHostAlert(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}})
	_, p := newPages(t, 90*time.Second, 2, "doctor", "patient")
	doctor, patient := p[0], p[1]
	relay := shaped(t, patient)
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "quality", "Dr Amara Lee", true)))
	do(t, patient, chromedp.Navigate(guestURL(srv.URL, "quality", "Jordan Patel", true)))
	click(t, doctor, `#waiting-card button[aria-label="Admit Jordan Patel"]`)
	pat := waitVideoFlowing(t, doctor, "doctor", 1)[0]
	relay.Set(shaper.Link{Loss: 0.2}, shaper.Link{Loss: 0.2})

	mark := fmt.Sprintf(`document.querySelector('.tile[data-pid=%s] .tile-net')`, jsString(pat.PID))
	words := waitFor(t, doctor, "the patient's poor connection mark", 30*time.Second,
		`(() => { const m = `+mark+`; return m && !m.hidden && m.dataset.quality === 'poor' ? m.title : ''; })()`,
		func(s string) bool { return s != "" })
	for _, w := range []string{"Connection poor", "through a relay", "% of data lost"} {
		if !strings.Contains(words, w) {
			t.Errorf("the mark's words %q lack %q", words, w)
		}
	}
	waitFor(t, doctor, "the clinician told of it", 10*time.Second,
		`[...document.querySelectorAll('#toasts .toast')].map(t => t.textContent).join('|')`,
		func(s string) bool { return strings.Contains(s, "Jordan Patel's connection is poor") })
	waitFor(t, doctor, "the clinician's own mark", 10*time.Second,
		`(() => { const m = document.querySelector('.tile[data-local] .tile-net'); return m.hidden ? '' : m.dataset.quality; })()`,
		func(s string) bool { return s == "good" })
	// With the server's estimate of what reaches the clinician, in words.
	waitFor(t, doctor, "the clinician's downlink estimate in the mark's words", 10*time.Second,
		`document.querySelector('.tile[data-local] .tile-net').title`,
		func(s string) bool { return estimateWords.MatchString(s) })
	// The patient's page shows the clinician's mark too, and is not told
	// about anyone's connection.
	waitFor(t, patient, "the clinician's mark on the patient's page", 20*time.Second,
		`(() => { const m = document.querySelector('.tile[data-remote] .tile-net'); return m && !m.hidden ? m.dataset.quality : ''; })()`,
		func(s string) bool { return s != "" && s != "unknown" })
	if s := eval[string](t, patient, `[...document.querySelectorAll('#toasts .toast')].map(t => t.textContent).join('|')`); strings.Contains(s, "connection is poor") {
		t.Errorf("a patient was told about a connection: %q", s)
	}
}
