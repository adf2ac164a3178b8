package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// After the other person leaves a direct 1:1 call, the page still says
// how it is connected (it went blank); initials skip punctuation.
func TestStatusAfterTheDirectPeerLeavesAndInitials(t *testing.T) {
	srv := startServer(t, 0)
	ps, p := newPages(t, 90*time.Second, 2, "ana")
	ana := p[0]
	ben, closeBen := ps.tab("ben")
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "duo", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "duo", "Ben", true)))
	srv.waitMode(t, "duo", "p2p")
	waitVideoFlowing(t, ana, "Ana", 1)
	waitFor(t, ana, "the direct path to carry the call", 20*time.Second, `window.consultApp.session?.directActive === true`,
		func(b bool) bool { return b })
	closeBen()
	waitFor(t, ana, "Ben's tile to go", 20*time.Second, `document.querySelectorAll('.tile[data-remote]').length`,
		func(n int) bool { return n == 0 })
	waitFor(t, ana, "the status after Ben left", 10*time.Second, `document.getElementById('conn-status').textContent`,
		func(s string) bool { return s == "Connected" })

	got := eval[[]string](t, ana, `import('/js/ui.js').then(m => ["Alex (daughter)", "  dr. lee ", "(Sam)", "Ólafur-Már Ó'Neill", "?!", "李 小龙"].map(m.initials))`)
	want := []string{"AD", "DL", "S", "ÓÓ", "?", "李小"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("initials %q, want %q", got, want)
		}
	}
}
