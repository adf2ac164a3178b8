package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// stateIs waits until the page's room view is in state.
func stateIs(t *testing.T, ctx context.Context, who, state string) {
	t.Helper()
	waitFor(t, ctx, who+" to be "+state, 30*time.Second, `document.getElementById('room-view').dataset.state`,
		func(s string) bool { return s == state })
}

// chatTexts is the texts of a list of messages, as the page shows them.
func chatTexts(list string) string {
	return `[...document.querySelectorAll('#` + list + ` .chat-text')].map(p => p.textContent)`
}

// sendChat writes text into a chat form and submits it, as the Send
// button does.
func sendChat(t *testing.T, ctx context.Context, input, form, text string) {
	t.Helper()
	eval[bool](t, ctx, `(() => { document.getElementById(`+jsString(input)+`).value = `+jsString(text)+`;
		document.getElementById(`+jsString(form)+`).requestSubmit(); return true; })()`)
}

func hasText(want string) func([]string) bool {
	return func(got []string) bool {
		for _, g := range got {
			if g == want {
				return true
			}
		}
		return false
	}
}

// A clinician writes to a patient in the waiting room, who answers from
// the waiting screen; a message to the call that holds markup shows as
// text, its link clickable; a family member joining late reads the history
// and, panel closed, sees the unread badge; too many messages at once get
// a clear error.
func TestChatInTheRoom(t *testing.T) {
	srv := startServer(t, 0)
	ps, p := newPages(t, 120*time.Second, 3, "dr", "pat")
	dr, pat := p[0], p[1]
	logConsole(t, dr, "dr")
	do(t, dr, chromedp.Navigate(roomURL(srv.URL, "clinic", "Dr Lee", true)))
	stateIs(t, dr, "Dr Lee", "live")
	do(t, pat, chromedp.Navigate(guestURL(srv.URL, "clinic", "Pat", true)))
	stateIs(t, pat, "Pat", "waiting")

	front(t, dr)
	click(t, dr, `#btn-chat`)
	patID := waitFor(t, dr, "Dr Lee to see Pat waiting", 10*time.Second,
		`[...document.getElementById('chat-to').options].find(o => o.textContent === 'Pat (waiting)')?.value || ''`,
		func(s string) bool { return s != "" })
	eval[bool](t, dr, `(document.getElementById('chat-to').value = `+jsString(patID)+`, true)`)
	sendChat(t, dr, "chat-input", "chat-form", "Running 5 minutes late")
	waitFor(t, pat, "Pat's waiting screen to show the note", 10*time.Second, chatTexts("waiting-chat-list"), hasText("Running 5 minutes late"))
	sendChat(t, pat, "waiting-chat-input", "waiting-chat-form", "Thanks, I'm here")
	waitFor(t, dr, "Dr Lee to read Pat's answer", 10*time.Second, chatTexts("chat-list"), hasText("Thanks, I'm here"))

	hostile := `<img src=x onerror="window.pwned=1"> leaflet: https://example.org/leaflet`
	eval[bool](t, dr, `(document.getElementById('chat-to').value = '', true)`)
	sendChat(t, dr, "chat-input", "chat-form", hostile)
	waitFor(t, dr, "Dr Lee's own copy", 10*time.Second, chatTexts("chat-list"), hasText(hostile))

	// A late joiner reads the history; the patient never read the call's.
	fam := ps.page("fam")
	do(t, fam, chromedp.Navigate(roomURL(srv.URL, "clinic", "Alex (daughter)", true)))
	stateIs(t, fam, "Alex", "live")
	got := waitFor(t, fam, "the late joiner's history", 10*time.Second, chatTexts("chat-list"), hasText(hostile))
	if len(got) != 3 {
		t.Errorf("the late joiner (a clinician too) reads %q", got)
	}
	type rendered struct {
		Imgs  int    `json:"imgs"`
		Href  string `json:"href"`
		Pwned bool   `json:"pwned"`
	}
	r := eval[rendered](t, fam, `(() => { const ps = [...document.querySelectorAll('#chat-list .chat-text')];
		const p = ps[ps.length - 1];
		return {imgs: document.querySelectorAll('#chat-list img').length, href: p.querySelector('a')?.href || '', pwned: !!window.pwned}; })()`)
	if r.Imgs != 0 || r.Pwned || r.Href != "https://example.org/leaflet" {
		t.Errorf("a message with markup rendered as %+v; want text, one link", r)
	}
	if seen := eval[[]string](t, pat, chatTexts("waiting-chat-list")); len(seen) != 2 {
		t.Errorf("the waiting patient reads %q; want only its conversation with the clinic", seen)
	}
	if eval[bool](t, pat, `document.body.textContent.includes('leaflet')`) {
		t.Error("the waiting patient's page holds the call's message")
	}

	// Unread: the panel is closed on the family's page.
	front(t, dr)
	sendChat(t, dr, "chat-input", "chat-form", "Alex, can you hear us?")
	waitFor(t, fam, "the unread badge", 10*time.Second, `document.getElementById('chat-badge').hidden ? '' : document.getElementById('chat-badge').textContent`,
		func(s string) bool { return s == "1" })

	// Too fast: the server refuses, the page says why. The ten go out
	// at once (from one script), as from a person holding Enter down.
	eval[bool](t, dr, `(() => { for (let i = 0; i < 10; i++) {
		document.getElementById('chat-input').value = 'again ' + i;
		document.getElementById('chat-form').requestSubmit();
	} return true; })()`)
	waitFor(t, dr, "a clear rate-limit error", 10*time.Second, `document.getElementById('chat-error').textContent`,
		func(s string) bool { return strings.Contains(s, "too fast") })
}
