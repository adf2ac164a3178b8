package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"consult/internal/shaper"
)

// shaped forces a page's WebRTC through a shaping relay of its own (see
// internal/shaper): every PeerConnection the page makes gets that relay as
// its only ICE server and the "relay" transport policy, so the relay sees,
// and can impair, all its media. Call before the page loads.
func shaped(t *testing.T, ctx context.Context) *shaper.Shaper {
	t.Helper()
	s, err := shaper.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	js := `(() => {
  const Orig = window.RTCPeerConnection;
  const relay = { urls: ` + jsString(s.URL()) + `, username: ` + jsString(shaper.User) + `, credential: ` + jsString(shaper.Pass) + ` };
  window.RTCPeerConnection = class extends Orig {
    constructor(config = {}) { super({ ...config, iceServers: [relay], iceTransportPolicy: 'relay' }); }
  };
})();`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatal(err)
	}
	return s
}
