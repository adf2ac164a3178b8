package signaling_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
)

// talking is a live member whose microphone is a client.Talker, with
// every speaker message it received.
type talking struct {
	*peer
	talk *client.Talker
	mu   sync.Mutex
	got  []protocol.Speaker
	at   []time.Time
}

func (e *env) joinTalking(t *testing.T, room, name string) *talking {
	t.Helper()
	tk := &talking{}
	tk.peer = e.dialWith(t, nil, func(c *client.Config) {
		c.OnSpeaker = func(sp protocol.Speaker) {
			tk.mu.Lock()
			tk.got, tk.at = append(tk.got, sp), append(tk.at, time.Now())
			tk.mu.Unlock()
		}
	})
	if _, err := tk.Join(ctxT(t, 5*time.Second), protocol.Join{Room: room, Name: name, Live: true}); err != nil {
		t.Fatal(err)
	}
	talk, err := client.NewTalker("mic", "av")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(talk.Close)
	senders, err := tk.Publish(ctxT(t, 5*time.Second), talk.Track())
	if err != nil || len(senders) != 1 {
		t.Fatalf("publish: %v (%d senders: the room is not on the SFU)", err, len(senders))
	}
	if client.AudioLevelID(senders[0]) == 0 {
		t.Fatal("the server did not take the audio level extension")
	}
	talk.Start(senders[0])
	tk.talk = talk
	return tk
}

// awaitSpeaker waits, within d, for a speaker message that ok accepts.
func (tk *talking) awaitSpeaker(t *testing.T, d time.Duration, what string, ok func(protocol.Speaker) bool) protocol.Speaker {
	t.Helper()
	sp, err := tk.AwaitSpeaker(ctxT(t, d), ok)
	if err != nil {
		t.Fatalf("%s was not told %s within %v: last %+v", tk.ID(), what, testenv.Scale(d), sp)
	}
	return sp
}

// awaitHeard waits, within d, until some speaker message so far, not
// only the latest, is one that ok accepts.
func (tk *talking) awaitHeard(t *testing.T, d time.Duration, what string, ok func(protocol.Speaker) bool) {
	t.Helper()
	testenv.Eventually(t, d, tk.ID()+" told "+what, func() bool { return slices.ContainsFunc(tk.history(), ok) })
}

// history is every speaker message so far.
func (tk *talking) history() []protocol.Speaker {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return append([]protocol.Speaker(nil), tk.got...)
}

// Three members on the SFU, each microphone sending its level: the one
// who speaks is named within a second; another's 200 ms cough shows it
// as active but does not take speaker view; when the speaker stops and
// another talks on, the picture moves within a second; a host who mutes
// the speaker takes it out of the active set. A waiting guest hears none
// of it, and no room gets more than five messages a second.
func TestSpeakerFollowsWhoTalks(t *testing.T) {
	e := startServer(t, nil)
	dr := e.joinTalking(t, "consult", "Dr")
	pat := e.joinTalking(t, "consult", "Pat")
	interp := e.joinTalking(t, "consult", "Interpreter")
	all := []*talking{dr, pat, interp}
	waiting, _ := e.joinAs(t, "consult", "Next patient", protocol.RoleGuest, false)
	// The server reads every microphone: each member has the two others'.
	for _, p := range all {
		testenv.Eventually(t, 10*time.Second, p.ID()+" receiving the others' audio", func() bool {
			p.peer.mu.Lock()
			defer p.peer.mu.Unlock()
			return len(p.received) == 2
		})
	}
	start := time.Now()

	// The doctor speaks (the others' microphones hear only silence).
	dr.talk.SetLevel(25)
	from := time.Now()
	for _, p := range all {
		p.awaitSpeaker(t, time.Second, "that the doctor speaks", func(sp protocol.Speaker) bool {
			return sp.Participant == dr.ID() && slices.Equal(sp.Active, []string{dr.ID()})
		})
	}
	t.Logf("the doctor named %v after starting to speak", time.Since(from))

	// The doctor stops; the patient coughs (200 ms at -15 dBov).
	dr.talk.SetLevel(client.Silence)
	for _, p := range all {
		p.awaitSpeaker(t, 3*time.Second, "that nobody speaks", func(sp protocol.Speaker) bool { return len(sp.Active) == 0 })
	}
	if err := pat.talk.Burst(15, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		p.awaitHeard(t, 3*time.Second, "that the patient coughed", func(sp protocol.Speaker) bool {
			return slices.Contains(sp.Active, pat.ID())
		})
		// Once the cough has left the active set, its window is over: it
		// can no longer take speaker view.
		p.awaitSpeaker(t, 3*time.Second, "that the cough is over", func(sp protocol.Speaker) bool {
			return !slices.Contains(sp.Active, pat.ID())
		})
		for _, sp := range p.history() {
			if sp.Participant == pat.ID() {
				t.Fatalf("%s was told %+v: the cough took speaker view", p.ID(), sp)
			}
		}
	}

	// The doctor talks for a second, stops, and the interpreter talks on.
	if err := dr.talk.Burst(25, time.Second); err != nil {
		t.Fatal(err)
	}
	interp.talk.SetLevel(30)
	from = time.Now()
	for _, p := range all {
		p.awaitSpeaker(t, time.Second, "that the interpreter speaks", func(sp protocol.Speaker) bool {
			return sp.Participant == interp.ID()
		})
	}
	t.Logf("the interpreter named %v after the doctor stopped", time.Since(from))

	// A host mutes the interpreter, who goes on talking: out of the
	// active set, still the last speaker.
	if err := dr.MuteOther(interp.ID(), "audio"); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		p.awaitSpeaker(t, 3*time.Second, "that the interpreter was muted", func(sp protocol.Speaker) bool {
			return sp.Participant == interp.ID() && len(sp.Active) == 0
		})
	}

	if waiting.said(`"type":"speaker"`) {
		t.Fatal("a waiting guest was told who speaks in the call")
	}
	elapsed := time.Since(start)
	for _, p := range all {
		if n := len(p.history()); float64(n) > elapsed.Seconds()*protocol.SpeakerRate+1 {
			t.Fatalf("%s got %d speaker messages in %v", p.ID(), n, elapsed)
		}
	}
}

// A member who joins while someone speaks is told who at once, not at
// the next change.
func TestSpeakerToldToALateJoiner(t *testing.T) {
	e := startServer(t, nil)
	dr := e.joinTalking(t, "consult", "Dr")
	pat := e.joinTalking(t, "consult", "Pat")
	testenv.Eventually(t, 10*time.Second, "the patient receiving the doctor's audio", func() bool {
		pat.peer.mu.Lock()
		defer pat.peer.mu.Unlock()
		return len(pat.received) == 1
	})
	dr.talk.SetLevel(25)
	pat.awaitSpeaker(t, 3*time.Second, "that the doctor speaks", func(sp protocol.Speaker) bool { return sp.Participant == dr.ID() })
	late, _ := e.join(t, "consult", "Nurse", true)
	sp, err := late.AwaitSpeaker(ctxT(t, 3*time.Second), func(sp protocol.Speaker) bool { return sp.Participant != "" })
	if err != nil || sp.Participant != dr.ID() {
		t.Fatalf("the late joiner was told %+v (%v)", sp, err)
	}
}
