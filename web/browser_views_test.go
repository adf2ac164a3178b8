package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/internal/testenv"
	"consult/signaling"
)

// cameraLayersJS is the state of a page's simulcast camera encodings, as
// "q:true,h:true,f:false" ("" before there is one).
const cameraLayersJS = `(() => {
  const s = window.consultApp.session?.pub?.getSenders().find((s) => s.track?.kind === 'video' && (s.getParameters().encodings || []).length > 1);
  return s ? s.getParameters().encodings.map((e) => e.rid + ':' + e.active).join(',') : '';
})()`

// Dynacast in Chromium, through the server with simulcast: the patient's
// window is small, so the doctor's picture on it needs only the low layer;
// the patient is sent that layer, and the doctor's page turns its top
// encoding off. The window made large, the top encoding comes back on at
// once.
func TestSmallTilesTurnThePublishersTopLayerOff(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}, simulcast: true})
	_, p := newPages(t, 120*time.Second, 2, "patient", "doctor")
	patient, doctor := p[0], p[1]
	do(t, patient, chromedp.EmulateViewport(320, 240))
	// The patient first: the doctor's camera has a subscriber from the
	// start, so the doctor is never alone and told to send little.
	do(t, patient, chromedp.Navigate(roomURL(srv.URL, "dyn", "Pat", true)))
	waitState(t, patient, "patient", "live")
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "dyn", "Dr", true)))
	waitVideoFlowing(t, patient, "patient", 1)
	waitVideoFlowing(t, doctor, "doctor", 1)

	waitFor(t, doctor, "the doctor's top encoding off for the patient's small tile", 30*time.Second, cameraLayersJS,
		func(s string) bool { return strings.Contains(s, "f:false") && strings.Contains(s, "q:true") })
	testenv.Eventually(t, 10*time.Second, "the patient sent the doctor's low layer", func() bool {
		for _, l := range srv.layersAt(t, "dyn", "Pat") {
			if l != "q" {
				return false
			}
		}
		return len(srv.layersAt(t, "dyn", "Pat")) == 1
	})

	grown := time.Now()
	do(t, patient, chromedp.EmulateViewport(1280, 800))
	waitFor(t, doctor, "the doctor's top encoding back on", 10*time.Second, cameraLayersJS,
		func(s string) bool { return strings.Contains(s, "f:true") })
	t.Logf("the top encoding came back %v after the window grew", time.Since(grown).Round(10*time.Millisecond))
	testenv.Eventually(t, 30*time.Second, "the patient sent a higher layer", func() bool {
		for _, l := range srv.layersAt(t, "dyn", "Pat") {
			return l != "q"
		}
		return false
	})
	waitVideoFlowing(t, patient, "patient", 1)
}
