package web_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Muting the microphone and turning the camera off show on the other
// page (from the "mute" messages), by mouse and by keyboard; a shared
// screen reaches the other page beside the camera (on the direct path of
// a 1:1 call: the third m-line), large on the main stage with the
// presenter's camera in the strip and marked "Presenting", and stopping
// the share brings the grid back.
func TestMuteCameraOffAndScreenShareReachTheOtherPage(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	_, p := newPages(t, 90*time.Second, 2, "ana", "ben")
	ana, ben := p[0], p[1]
	// Chromium's fake screen has the fake camera's 16:9 shape. Give the
	// shared screen a 4:3 shape so that Ben's page can tell them apart;
	// the page's own share code runs unchanged.
	if _, err := chromedp.Call(ana, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		const real = MediaDevices.prototype.getDisplayMedia;
		MediaDevices.prototype.getDisplayMedia = async function (c) {
			const s = await real.call(this, c);
			await s.getVideoTracks()[0].applyConstraints({width: 640, height: 480});
			return s;
		};`}); err != nil {
		t.Fatal(err)
	}
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "controls", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "controls", "Ben", true)))
	cam := waitVideoFlowing(t, ben, "Ben", 1)[0]
	waitVideoFlowing(t, ana, "Ana", 1)
	tile := fmt.Sprintf(`document.querySelector('.tile[data-pid=%s]')`, jsString(cam.PID))
	seenByBen := func(what, js, want string) {
		t.Helper()
		waitFor(t, ben, what, 10*time.Second, js, func(s string) bool { return s == want })
	}

	click(t, ana, "#btn-mic")
	seenByBen("Ana's muted microphone", tile+`.dataset.audioMuted`, "true")
	if p := eval[string](t, ana, `document.getElementById('btn-mic').getAttribute('aria-pressed')`); p != "true" {
		t.Errorf("mute button aria-pressed %q after muting", p)
	}
	// The keyboard shortcut unmutes; Enter on the focused camera button
	// turns the camera off.
	front(t, ana)
	do(t, ana, chromedp.KeyEvent("m"))
	seenByBen("Ana's microphone back on", tile+`.dataset.audioMuted`, "false")
	do(t, ana, chromedp.Focus(chromedp.ID("btn-cam")), chromedp.KeyEvent("\r"))
	seenByBen("Ana's camera off", tile+`.dataset.videoMuted + ' ' + `+tile+`.dataset.video`, "true off")

	click(t, ana, "#btn-cam")
	seenByBen("Ana's camera back on", tile+`.dataset.videoMuted + ' ' + `+tile+`.dataset.video`, "false on")
	waitVideoFlowing(t, ben, "Ben", 1)

	// Share the screen: Ben receives a picture of the screen's size. Compare
	// shapes, not sizes: the encoder may scale a picture down while the
	// bandwidth estimate ramps up, but keeps its aspect ratio. Ana's own
	// tile may show a frame or two of the screen's first shape before the
	// constraint above takes effect (seen on a busy machine).
	camAspect := float64(cam.Width) / float64(cam.Height)
	// The share below goes over the direct path (its third m-line).
	waitFor(t, ana, "the direct path to carry the call", 20*time.Second, `window.consultApp.session?.directActive === true`,
		func(b bool) bool { return b })
	click(t, ana, "#btn-share")
	screen := waitFor(t, ana, "Ana's own screen tile in another shape than the camera's", 10*time.Second,
		`(() => { const t = document.querySelector('.tile[data-pid="local:screen"]'); const v = t?.querySelector('video');
		  return {main: t?.dataset.main || '', w: v?.videoWidth || 0, h: v?.videoHeight || 0}; })()`,
		func(s struct {
			Main string `json:"main"`
			W    int    `json:"w"`
			H    int    `json:"h"`
		}) bool {
			return s.Main == "true" && s.H > 0 && math.Abs(float64(s.W)/float64(s.H)-camAspect) >= 0.1
		})
	screenAspect := float64(screen.W) / float64(screen.H)
	if s := eval[string](t, ana, `document.querySelector('.tile[data-local]').dataset.sharing`); s != "true" {
		t.Errorf("Ana's own camera tile sharing=%q while sharing", s)
	}
	aspectOf := func(tile string) string {
		return fmt.Sprintf(`(() => { const v = %s?.querySelector('video'); return v && v.videoHeight ? v.videoWidth / v.videoHeight : 0; })()`, tile)
	}
	near := func(want float64) func(float64) bool {
		return func(got float64) bool { return math.Abs(got-want) < 0.03 }
	}
	screenTile := fmt.Sprintf(`document.querySelector('.tile[data-pid=%s]')`, jsString(cam.PID+":screen"))
	waitFor(t, ben, "the screen share on its own tile", 10*time.Second, aspectOf(screenTile), near(screenAspect))
	// The camera goes on beside it, in the strip, marked as presenting.
	waitFor(t, ben, "the layout with the share on the main stage", 10*time.Second,
		`[document.getElementById('grid').dataset.layout, `+screenTile+`.dataset.main, `+tile+`.dataset.main, `+tile+`.dataset.sharing,
		  getComputedStyle(`+tile+`.querySelector('.tile-share')).display !== 'none'].join(' ')`,
		func(s string) bool { return s == "focus true false true true" })
	if got := eval[float64](t, ben, aspectOf(tile)); math.Abs(got-camAspect) >= 0.03 {
		t.Errorf("Ana's camera tile on Ben's page has shape %.2f while she shares, want the camera's %.2f", got, camAspect)
	}
	screenshot(t, ben, "call-screenshare-desktop", 1280, 800, false)

	click(t, ana, "#btn-share")
	waitFor(t, ben, "the grid after the share", 10*time.Second,
		`document.getElementById('grid').dataset.layout + ' ' + `+tile+`.dataset.sharing + ' ' + (`+screenTile+`?.hidden ?? true)`,
		func(s string) bool { return s == "grid false true" })
	if s := eval[string](t, ana, `document.querySelector('.tile[data-local]').dataset.sharing`); s != "false" {
		t.Errorf("local tile sharing=%q after stopping", s)
	}
	if n := eval[int](t, ana, `document.querySelectorAll('.tile[data-pid="local:screen"]').length`); n != 0 {
		t.Errorf("Ana's own screen tile still shown after stopping (%d)", n)
	}

	// A clinician's Leave asks whether to end the consult for everyone;
	// Ana only leaves, Ben stays, and Ana can rejoin.
	click(t, ana, "#btn-hangup")
	waitFor(t, ana, "the leave dialog", 5*time.Second, `document.getElementById('leave-dialog').open`, func(b bool) bool { return b })
	click(t, ana, "#leave-only")
	waitFor(t, ben, "Ana's tile to go", 10*time.Second, `document.querySelectorAll('.tile[data-remote]').length`,
		func(n int) bool { return n == 0 })
	waitFor(t, ana, "Ana's page to say she left", 10*time.Second,
		`document.getElementById('ended').hidden ? '' : document.getElementById('ended-title').textContent`,
		func(s string) bool { return s == "You left the consultation" })
	if state := eval[string](t, ben, `document.getElementById('room-view').dataset.state`); state != "live" {
		t.Errorf("Ben's page is %q after Ana left, want live", state)
	}
	click(t, ana, "#ended-back")
	click(t, ana, "#join-live")
	waitVideoFlowing(t, ben, "Ben", 1)
	waitVideoFlowing(t, ana, "Ana", 1)
}
