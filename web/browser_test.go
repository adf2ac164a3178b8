package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Three people open an invite link with autojoin=1: each page joins the
// call at once and shows the other two, with pictures that keep moving.
// One name is markup, which must show as text.
func TestThreePagesJoinByInviteLinkAndSeeEachOther(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	names := []string{"Ana Ruiz", "Ben Okafor", "<b>Cy</b>"}
	_, pages := newPages(t, 90*time.Second, 3, "ana", "ben", "cy")
	for i, p := range pages {
		do(t, p, chromedp.Navigate(roomURL(srv.URL, "trio", names[i], true)))
	}
	for i, p := range pages {
		vs := waitVideoFlowing(t, p, names[i], 2)
		got := map[string]bool{}
		for _, v := range vs {
			got[v.Name] = true
		}
		for j, n := range names {
			if j != i && !got[n] {
				t.Errorf("%s's tiles are named %v, want %q among them", names[i], got, n)
			}
		}
	}
	if n := eval[int](t, pages[0], `document.querySelectorAll('.tile b, .person b').length`); n != 0 {
		t.Errorf("a display name was parsed as HTML (%d <b> elements)", n)
	}
	screenshot(t, pages[0], "call-3-desktop", 1280, 800, false)
	screenshot(t, pages[0], "call-3-phone", 390, 844, true)
}
