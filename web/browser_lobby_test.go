package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The lobby explains, in words for patients, why there is no picture:
// an insecure (plain http) page, blocked permission, no camera. Each case
// is made by replacing the browser API in one tab before the page loads.
func TestLobbyExplainsMediaProblems(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	ps, _ := newPages(t, 60*time.Second, 1)
	for _, tc := range []struct {
		name, stub, title, text string
		canRetry                bool
	}{
		{
			name: "insecure context",
			stub: `Object.defineProperty(Navigator.prototype, 'mediaDevices', {get: () => undefined});
			       Object.defineProperty(window, 'isSecureContext', {get: () => false});`,
			title: "Camera and microphone need a secure connection",
			text:  "-tls-self-signed",
		},
		{
			name:     "permission denied",
			stub:     `MediaDevices.prototype.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));`,
			title:    "Access to your camera and microphone is blocked",
			text:     "choose Allow",
			canRetry: true,
		},
		{
			name: "no camera",
			stub: `const real = MediaDevices.prototype.getUserMedia;
			       MediaDevices.prototype.getUserMedia = function (c) {
			         return c.video ? Promise.reject(new DOMException('none', 'NotFoundError')) : real.call(this, c);
			       };`,
			title: "No camera found",
			text:  "join without it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, closeTab := ps.tab(tc.name)
			defer closeTab()
			if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: tc.stub}); err != nil {
				t.Fatal(err)
			}
			do(t, tab, chromedp.Navigate(roomURL(srv.URL, "lobby-"+strings.ReplaceAll(tc.name, " ", "-"), "Pat", false)))
			type notice struct {
				Title, Text string
				Retry       bool
			}
			n := waitFor(t, tab, "the notice", 10*time.Second, `(() => ({
				title: document.getElementById('lobby-notice-title').textContent,
				text: document.getElementById('lobby-notice-text').textContent,
				retry: !document.getElementById('lobby-retry').hidden }))()`,
				func(n notice) bool { return n.Title != "" })
			if n.Title != tc.title || !strings.Contains(n.Text, tc.text) || n.Retry != tc.canRetry {
				t.Errorf("notice %+v; want title %q, text with %q, retry %v", n, tc.title, tc.text, tc.canRetry)
			}
			if off := eval[bool](t, tab, `!document.getElementById('preview-off').hidden`); !off {
				t.Error("the preview shows a picture although there is no camera")
			}
			if tc.name == "insecure context" {
				screenshot(t, tab, "lobby-insecure-phone", 390, 844, true)
				do(t, tab, chromedp.EmulateViewport(1280, 800))
			}
			// Joining still works: the page can see and hear others.
			click(t, tab, "#join-live")
			waitFor(t, tab, "the call to connect without local media", 15*time.Second,
				`document.getElementById('room-view').dataset.state + ' ' + document.getElementById('conn-status').textContent`,
				func(s string) bool { return s == "live Connected" })
		})
	}
}
