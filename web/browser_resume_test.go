package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"consult/internal/shaper"
	"consult/signaling"
)

// stateLogJS, added to a page before it loads, records every state the
// room view passes through (a resume may take only a few milliseconds).
const stateLogJS = `window.stateLog = [];
new MutationObserver(() => {
  const s = document.getElementById('room-view')?.dataset.state;
  if (s && window.stateLog[window.stateLog.length - 1] !== s) window.stateLog.push(s);
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });`

// meJS is the page's own participant id.
const meJS = `window.consultApp.roster.me.id`

// markTilesJS tags the page's remote tiles, so a later check can tell
// whether they were ever replaced (a leave and a join make new ones).
const markTilesJS = `document.querySelectorAll('.tile[data-remote]').forEach(t => t.dataset.mark = 'before'); true`
const markedTilesJS = `[...document.querySelectorAll('.tile[data-remote]')].filter(t => t.dataset.mark === 'before').length`

func logStates(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: stateLogJS}); err != nil {
		t.Fatal(err)
	}
}

// When the signaling sockets drop, both pages take their sessions back:
// the same ids, the same tiles, the pictures never stop.
func TestPagesResumeAfterTheSocketsDrop(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}})
	_, p := newPages(t, 90*time.Second, 2, "ana", "ben")
	ana, ben := p[0], p[1]
	logStates(t, ana)
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "blip", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "blip", "Ben", true)))
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)
	anaID, benID := eval[string](t, ana, meJS), eval[string](t, ben, meJS)
	eval[bool](t, ana, markTilesJS)

	if n := srv.dropConnections(); n != 2 {
		t.Fatalf("dropped %d sockets, want 2", n)
	}
	waitFor(t, ana, "Ana's page to have reconnected", 10*time.Second, `window.stateLog.join(' ')`,
		func(s string) bool { return strings.HasSuffix(s, "live reconnecting live") })
	waitFor(t, ben, "Ben's page to be live", 10*time.Second, `document.getElementById('room-view').dataset.state`,
		func(s string) bool { return s == "live" })
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)
	if a, b := eval[string](t, ana, meJS), eval[string](t, ben, meJS); a != anaID || b != benID {
		t.Errorf("ids %s/%s after the drop, were %s/%s", a, b, anaID, benID)
	}
	if n := eval[int](t, ana, markedTilesJS); n != 1 {
		t.Errorf("Ana's tile of Ben was replaced: a leave and a join instead of a resume")
	}
	if s := eval[string](t, ana, `document.getElementById('banner').hidden ? 'hidden' : document.getElementById('banner-text').textContent`); s != "hidden" {
		t.Errorf("after the resume the banner says %q", s)
	}
}

// offline takes a page off the network, as a phone losing its signal:
// its WebSocket and its WebRTC packets alike, and navigator.onLine.
func offline(t *testing.T, ctx context.Context, off bool) {
	t.Helper()
	loss := 0.0
	if off {
		loss = 100
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	// Chromium's protocol moved "offline" from the command into each rule
	// (Chromium 148 wants it on the command; the newest revision, cdproto's,
	// in the rule), so the command goes out with both: a field a version
	// does not know is ignored.
	type params struct {
		Offline bool                  `json:"offline"`
		Rules   []*network.Conditions `json:"matchedNetworkConditions"`
	}
	byRule := cdp.Command[params, network.EmulateNetworkConditionsByRuleResult]{Method: network.EmulateNetworkConditionsByRule.Method}
	if _, err := chromedp.Call(ctx, byRule, params{off, []*network.Conditions{{Offline: off, PacketLoss: loss, DownloadThroughput: -1, UploadThroughput: -1}}}); err != nil {
		t.Fatalf("Network.emulateNetworkConditionsByRule: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: off, DownloadThroughput: -1, UploadThroughput: -1,
	}); err != nil {
		t.Fatalf("Network.overrideNetworkState: %v", err)
	}
}

// A page that goes offline for 5 s and comes back is the same member: the
// other page never sees it leave, and its picture decodes again at the
// other page within 3 s of it being back online. Offline means all of it:
// DevTools' network emulation (navigator.onLine, new connections refused),
// its signaling socket cut, and its media black-holed. Chromium's
// emulation does not stop the packets of a call already set up (a page
// kept decoding through it), so through the SFU the page's media goes
// through a shaping relay that drops it; on the direct path the relay
// cannot be used (a relayed direct path is no better than the SFU), so
// there only the socket and the network state go.
func TestAPageOfflineFor5sComesBackAsTheSameMember(t *testing.T) {
	for _, c := range []struct {
		name string
		p2p  signaling.P2PConfig
		mode string
	}{{"sfu", signaling.P2PConfig{Disabled: true}, "sfu"}, {"p2p", signaling.P2PConfig{}, "p2p"}} {
		t.Run(c.name, func(t *testing.T) {
			srv := startServerWith(t, serverOptions{p2p: c.p2p})
			_, p := newPages(t, 120*time.Second, 2, "doctor", "patient")
			doctor, patient := p[0], p[1]
			logStates(t, patient)
			var relay *shaper.Shaper
			if c.mode == "sfu" {
				relay = shaped(t, patient)
			}
			do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "away", "Dr", true)))
			waitState(t, doctor, "doctor", "live") // its socket is the first
			do(t, patient, chromedp.Navigate(roomURL(srv.URL, "away", "Pat", true)))
			srv.waitMode(t, "away", c.mode)
			waitVideoFlowing(t, doctor, "doctor", 1)
			waitVideoFlowing(t, patient, "patient", 1)
			id := eval[string](t, patient, meJS)
			eval[bool](t, doctor, markTilesJS)

			offline(t, patient, true)
			if relay != nil {
				relay.Blackout(true)
			}
			srv.dropConnection(t, 1)
			back := time.Now().Add(5 * time.Second)
			waitFor(t, patient, "the patient's page to know it is offline", 10*time.Second, `window.stateLog.join(' ')`,
				func(s string) bool { return strings.HasSuffix(s, "reconnecting") && time.Now().After(back) })
			if relay != nil {
				relay.Blackout(false)
			}
			offline(t, patient, false)
			online := time.Now()
			// Decoding again: new frames (a few, so not a stray one); the
			// frame rate then climbs back as the sender's estimate does.
			frames := eval[int](t, doctor, doctorFramesJS)
			waitFor(t, doctor, "the patient's picture to decode again", 15*time.Second, doctorFramesJS,
				func(n int) bool { return n > frames+3 })
			took := time.Since(online)
			t.Logf("%s: the patient's picture decoded again %v after it came back online; its states: %s",
				c.name, took, eval[string](t, patient, `window.stateLog.join(' ')`))
			if took > 3*time.Second {
				t.Errorf("the picture came back %v after the page was online, want within 3 s", took)
			}
			waitState(t, patient, "patient", "live")
			if now := eval[string](t, patient, meJS); now != id {
				t.Errorf("the patient is %s after the outage, was %s", now, id)
			}
			if n := eval[int](t, doctor, markedTilesJS); n != 1 {
				t.Error("the doctor's page replaced the patient's tile: a leave and a join instead of a resume")
			}
		})
	}
}

// doctorFramesJS counts the frames the page decoded of its one remote
// tile.
const doctorFramesJS = `document.querySelector('.tile[data-remote] video').getVideoPlaybackQuality().totalVideoFrames`
