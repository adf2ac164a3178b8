package signaling_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"consult/client"
	"consult/protocol"
)

// awaitChat returns the next chat message p receives.
func (p *peer) awaitChat() protocol.ChatMessage {
	p.t.Helper()
	var ev protocol.ChatEvent
	p.await(protocol.TypeChat, &ev)
	return ev.Message
}

// Chat follows who may see whom: the call's messages reach its live
// members and the hosts, never a waiting guest; a host writes to one
// waiting guest, whose answer reaches the hosts only; a late joiner gets
// the history it may read, a guest let in gets the call's; text stays
// text; too many messages get rate-limited; the export has them all.
func TestChatReachesWhoMayReadIt(t *testing.T) {
	e := startServer(t, nil)
	dr, _ := e.joinAs(t, "clinic", "Dr Lee", protocol.RoleHost, true)
	fam, _ := e.joinAs(t, "clinic", "Alex (daughter)", protocol.RoleHost, true)
	pat, pj := e.joinAs(t, "clinic", "Pat", protocol.RoleGuest, true)
	if pj.Live {
		t.Fatal("the patient skipped the waiting room")
	}
	other, oj := e.joinAs(t, "clinic", "Sam", protocol.RoleGuest, true)

	if err := dr.Chat(`<img src=x onerror="alert(1)"> see https://example.org/leaflet`, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{dr, fam} {
		if m := p.awaitChat(); m.Text != `<img src=x onerror="alert(1)"> see https://example.org/leaflet` || m.FromName != "Dr Lee" || m.To != "" {
			t.Fatalf("call message arrived as %+v", m)
		}
	}
	// To one waiting guest; its answer goes to the hosts.
	if err := dr.Chat("Running 5 minutes late", pj.You); err != nil {
		t.Fatal(err)
	}
	if m := pat.awaitChat(); m.Text != "Running 5 minutes late" || m.To != pj.You {
		t.Fatalf("the waiting patient got %+v", m)
	}
	if err := pat.Chat("Thanks, I'm here", ""); err != nil {
		t.Fatal(err)
	}
	if m := pat.awaitChat(); m.Text != "Thanks, I'm here" || m.To != protocol.ChatToHosts {
		t.Fatalf("the patient's own copy: %+v", m)
	}
	for _, p := range []*peer{dr, fam} {
		p.awaitChat() // the note to Pat (hosts read every message)
		if m := p.awaitChat(); m.Text != "Thanks, I'm here" || m.To != protocol.ChatToHosts || m.FromRole != protocol.RoleGuest {
			t.Fatalf("a host got %+v", m)
		}
	}
	if err := other.Chat("hello?", pj.You); err != nil {
		t.Fatal(err)
	}
	other.awaitError(protocol.ErrForbidden)

	// A late joiner reads the call's messages; the other waiting guest
	// has read nothing of anyone's.
	_, lj := e.joinAs(t, "clinic", "Interpreter", protocol.RoleGuest, false)
	if len(lj.Chat) != 0 {
		t.Fatalf("a waiting guest joining reads %+v", lj.Chat)
	}
	if other.said("Running 5 minutes late") || other.said("Thanks, I'm here") || other.said("leaflet") {
		t.Fatal("a waiting guest read another patient's conversation or the call's")
	}
	_, hj := e.joinAs(t, "clinic", "Nurse", protocol.RoleHost, true)
	if len(hj.Chat) != 3 {
		t.Fatalf("a late host reads %d messages, want 3", len(hj.Chat))
	}
	// Let Pat in: the call's messages from before are not Pat's to read
	// (in a room kept open all day they would be another patient's).
	if err := dr.Admit(pj.You); err != nil {
		t.Fatal(err)
	}
	pat.awaitMatch(protocol.TypeParticipantUpdated, pj.You)
	if err := dr.Chat("Welcome, Pat", ""); err != nil {
		t.Fatal(err)
	}
	if m := pat.awaitChat(); m.Text != "Welcome, Pat" {
		t.Fatalf("the admitted patient got %+v first", m)
	}
	// A private note to the other waiting patient, then Pat back to the
	// waiting room and a note to the call: none of it is Pat's.
	if err := dr.Chat("Sam, nearly your turn", oj.You); err != nil {
		t.Fatal(err)
	}
	if m := other.awaitChat(); m.Text != "Sam, nearly your turn" {
		t.Fatalf("Sam got %+v", m)
	}
	if err := dr.ReturnToWaiting(pj.You); err != nil {
		t.Fatal(err)
	}
	pat.awaitMatch(protocol.TypeParticipantUpdated, pj.You)
	if err := dr.Chat("Notes before the next patient", ""); err != nil {
		t.Fatal(err)
	}
	// Pat's own message comes back after anything queued for Pat before it.
	if err := pat.Chat("Am I still connected?", ""); err != nil {
		t.Fatal(err)
	}
	for m := pat.awaitChat(); m.Text != "Am I still connected?"; m = pat.awaitChat() {
		if m.Text != "Welcome, Pat" {
			t.Fatalf("the patient read %+v", m)
		}
	}
	for _, leak := range []string{"leaflet", "nearly your turn", "Notes before the next patient"} {
		if pat.said(leak) {
			t.Fatalf("the patient read %q", leak)
		}
	}

	// Rate limit: a burst, then a clear error for that client only.
	var limited protocol.Error
	for i := 0; i < 20; i++ {
		if err := fam.Chat("spam", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fam.AwaitMatch(ctxT(t, 5*time.Second), func(ev client.Event) bool {
		return ev.Type == protocol.TypeError && ev.Decode(&limited) == nil && limited.Code == protocol.ErrRateLimited
	}); err != nil || !strings.Contains(limited.Message, "too fast") {
		t.Fatalf("no clear rate-limit error: %v %+v", err, limited)
	}

	// The export has every message, for the hosts' record.
	resp, err := http.Get("http" + strings.TrimSuffix(strings.TrimPrefix(e.url, "ws"), "/ws") + "/api/rooms/clinic/chat")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ex struct {
		Room     string                 `json:"room"`
		Messages []protocol.ChatMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil || ex.Room != "clinic" || len(ex.Messages) < 8 {
		t.Fatalf("export: %v %+v", err, ex)
	}
}
