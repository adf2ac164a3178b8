package web_test

import (
	"strings"
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

// When the signaling connection drops, the page says so, rejoins by
// itself and the call resumes: both pages see each other again.
func TestPagesRejoinByThemselvesAfterTheConnectionDrops(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	_, p := newPages(t, 90*time.Second, 2, "ana", "ben")
	ana, ben := p[0], p[1]
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "blip", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "blip", "Ben", true)))
	before := waitVideoFlowing(t, ana, "Ana", 1)[0]
	waitVideoFlowing(t, ben, "Ben", 1)

	if n := srv.dropConnections(); n != 2 {
		t.Fatalf("dropped %d sockets, want 2", n)
	}
	waitFor(t, ana, "the page to say it is reconnecting", 10*time.Second,
		`document.getElementById('room-view').dataset.state + ' ' + document.getElementById('banner-text').textContent`,
		func(s string) bool { return strings.HasPrefix(s, "reconnecting Connection lost") })
	after := waitVideoFlowing(t, ana, "Ana", 1)[0]
	waitVideoFlowing(t, ben, "Ben", 1)
	if after.PID == before.PID || after.Name != "Ben" {
		t.Errorf("after the rejoin Ana shows %+v; want Ben under a new participant id (was %s)", after, before.PID)
	}
	if s := eval[string](t, ana, `document.getElementById('room-view').dataset.state + (document.getElementById('banner').hidden ? '' : ' banner shown')`); s != "live" {
		t.Errorf("after the rejoin the page is %q, want live with no banner", s)
	}
}
