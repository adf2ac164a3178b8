package recording_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
)

// awaitState waits for the next record-state in state.
func awaitState(t *testing.T, c *client.Client, state string) protocol.RecordState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(15*time.Second))
	defer cancel()
	var st protocol.RecordState
	_, err := c.AwaitMatch(ctx, func(e client.Event) bool {
		return e.Type == protocol.TypeRecordState && e.Decode(&st) == nil && st.State == state
	})
	if err != nil {
		t.Fatalf("no record-state %q: %v", state, err)
	}
	return st
}

// awaitRequest waits for a consent-request (open, or closed).
func awaitRequest(t *testing.T, c *client.Client, closed bool) protocol.ConsentRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(15*time.Second))
	defer cancel()
	var rq protocol.ConsentRequest
	_, err := c.AwaitMatch(ctx, func(e client.Event) bool {
		return e.Type == protocol.TypeConsentRequest && e.Decode(&rq) == nil && rq.Closed == closed
	})
	if err != nil {
		t.Fatalf("no consent-request (closed %v): %v", closed, err)
	}
	return rq
}

// guest joins as a guest, waits, and is let in by the host; it reports
// whether the room was being recorded when it joined.
func guest(t *testing.T, st *stack, host *client.Client, name string) (*client.Client, string, bool) {
	t.Helper()
	c, joined := participantWith(t, st.url, protocol.Join{Room: "visit", Name: name, Role: protocol.RoleGuest, Live: true}, nil)
	id := c.ID()
	if err := host.Admit(id); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	if _, err := c.AwaitMatch(ctx, func(e client.Event) bool {
		var u struct{ Participant protocol.Participant }
		return e.Type == protocol.TypeParticipantUpdated && e.Decode(&u) == nil && u.Participant.ID == id && u.Participant.Live
	}); err != nil {
		t.Fatalf("%s not let in: %v", name, err)
	}
	return c, id, joined.Recording
}

func recordings(t *testing.T, st *stack) []recording.Info {
	t.Helper()
	var list []recording.Info
	get(t, st.api+"/api/recordings", &list)
	return list
}

// A host records from the call only with everyone's consent: one decline
// and nothing starts; all agreed, it starts; a member who comes in later
// and declines is left out of it; no answer in time is no consent. The
// manifest holds every answer.
func TestRecordingNeedsEveryonesConsent(t *testing.T) {
	needTools(t)
	ivf, ogg := makeClip(t, 30)
	st := startStack(t, t.TempDir())
	doctor := participant(t, st.url, "visit", "Doctor", nil)
	patient, patientID, _ := guest(t, st, doctor, "Patient")
	stop := make(chan struct{})
	defer close(stop)
	go sendClip(t, publishClip(t, doctor), ivf, ogg, stop)
	go sendClip(t, publishClip(t, patient), ivf, ogg, stop)

	// A guest may not ask; the patient declines the doctor's request.
	if err := patient.Record(true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	var pe protocol.Error
	if e, err := patient.Await(ctx, protocol.TypeError); err != nil || e.Decode(&pe) != nil || pe.Code != protocol.ErrNotHost {
		t.Fatalf("a guest's record: %v %+v", err, pe)
	}
	_ = doctor.Record(true)
	asking := awaitState(t, doctor, protocol.RecordAsking)
	if !slices.Equal(asking.Waiting, []string{patientID}) {
		t.Fatalf("asking %+v, want the patient", asking)
	}
	rq := awaitRequest(t, patient, false)
	if rq.From != doctor.ID() || rq.Request != asking.Request {
		t.Fatalf("request %+v", rq)
	}
	_ = patient.Consent(rq.Request, false)
	if d := awaitState(t, doctor, protocol.RecordDeclined); !slices.Equal(d.Declined, []string{patientID}) {
		t.Fatalf("declined %+v", d)
	}
	if list := recordings(t, st); len(list) != 0 {
		t.Fatalf("a recording started without consent: %+v", list)
	}

	// Asked again, the patient agrees: it starts, and both are recorded.
	_ = doctor.Record(true)
	rq = awaitRequest(t, patient, false)
	_ = patient.Consent(rq.Request, true)
	awaitState(t, doctor, protocol.RecordStarted)
	var ind protocol.Recording
	if e, err := patient.Await(ctx, protocol.TypeRecording); err != nil || e.Decode(&ind) != nil || !ind.Active {
		t.Fatalf("no indicator: %v %+v", err, ind)
	}
	var rec recording.Info
	if !testenv.Within(20*time.Second, func() bool {
		list := recordings(t, st)
		if len(list) == 1 {
			rec = list[0]
		}
		// Both members recorded: a file each, or more for one whose video
		// came after its audio's file had begun (a part file).
		who := map[string]bool{}
		for _, f := range rec.Files {
			who[f.Participant] = true
		}
		return len(who) == 2
	}) {
		t.Fatalf("files %+v", rec)
	}

	// Family comes in, is asked, declines: the doctor is told, and no
	// file of theirs is made.
	family, familyID, shown := guest(t, st, doctor, "Family")
	if !shown {
		t.Fatal("a guest joining during the recording is not told of it")
	}
	go sendClip(t, publishClip(t, family), ivf, ogg, stop)
	rq = awaitRequest(t, family, false)
	_ = family.Consent(rq.Request, false)
	if d := awaitState(t, doctor, protocol.RecordStarted); !slices.Equal(d.Declined, []string{familyID}) {
		t.Fatalf("late decline %+v", d)
	}
	_ = doctor.Record(false)
	awaitState(t, doctor, protocol.RecordStopped)
	var man recording.Info
	if !testenv.Within(15*time.Second, func() bool {
		var list []recording.Info
		get(t, st.api+"/api/recordings", &list)
		if len(list) != 1 || list[0].State != recording.StateStopped || len(list[0].Files) == 0 || list[0].Files[0].SHA256 == "" {
			return false
		}
		code, b := call(t, "GET", st.api+"/api/recordings/"+list[0].ID+"/manifest", "", "")
		return code == 200 && json.Unmarshal(b, &man) == nil && man.Files[0].SHA256 != ""
	}) {
		t.Fatalf("no final manifest: %+v", man)
	}
	for _, f := range man.Files {
		if f.Participant == familyID {
			t.Fatalf("family was recorded after declining: %+v", man.Files)
		}
	}
	answers := map[string]bool{}
	for _, a := range man.Consent.Answers {
		answers[a.Participant] = a.Accepted
	}
	if man.Consent.Policy != recording.ConsentAsked || man.Consent.By != doctor.ID() || len(answers) != 3 ||
		!answers[doctor.ID()] || !answers[patientID] || answers[familyID] {
		t.Fatalf("consent %+v", man.Consent)
	}
	roles := map[string]string{}
	for _, p := range man.People {
		roles[p.ID] = p.Role
	}
	if roles[doctor.ID()] != protocol.RoleHost || roles[patientID] != protocol.RoleGuest || roles[familyID] != protocol.RoleGuest {
		t.Fatalf("people %+v", man.People)
	}

	// Nobody answers: after the timeout it is as a decline, and the
	// requests are withdrawn.
	_ = doctor.Record(true)
	awaitRequest(t, patient, false)
	awaitRequest(t, family, false)
	d := awaitState(t, doctor, protocol.RecordDeclined)
	if want := []string{familyID, patientID}; !slices.Equal(d.Declined, sorted(want)) {
		t.Fatalf("timed out %+v, want %v", d, want)
	}
	awaitRequest(t, patient, true)
	if list := recordings(t, st); len(list) != 1 {
		t.Fatalf("recordings %+v", list)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// A room whose policy takes consent outside the call records at the
// host's word, without asking, and the manifest says so.
func TestRecordingWithConsentTakenElsewhere(t *testing.T) {
	st := startStack(t, t.TempDir())
	if code, b := call(t, "PUT", st.api+"/api/rooms/visit", "", `{"consent":"maybe"}`); code != 400 {
		t.Fatalf("a bad consent policy: %d %s", code, b)
	}
	if code, b := call(t, "PUT", st.api+"/api/rooms/visit", "", `{"consent":"elsewhere"}`); code != 200 {
		t.Fatalf("policy: %d %s", code, b)
	}
	doctor := participant(t, st.url, "visit", "Doctor", nil)
	patient, _, _ := guest(t, st, doctor, "Patient")
	_ = doctor.Record(true)
	awaitState(t, doctor, protocol.RecordStarted)
	var list []recording.Info
	if list = recordings(t, st); len(list) != 1 || list[0].Consent.Policy != recording.ConsentElsewhere ||
		list[0].Consent.By != doctor.ID() || list[0].State != recording.StateRecording {
		t.Fatalf("recordings %+v", list)
	}
	_ = doctor.Record(false)
	awaitState(t, doctor, protocol.RecordStopped)
	// The patient saw the indicator come and go, and was never asked.
	for _, active := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
		var ind protocol.Recording
		e, err := patient.Await(ctx, protocol.TypeRecording)
		cancel()
		if err != nil || e.Decode(&ind) != nil || ind.Active != active {
			t.Fatalf("indicator %v: %v %+v", active, err, ind)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if e, err := patient.Await(ctx, protocol.TypeConsentRequest); err == nil {
		t.Fatalf("the patient was asked: %s", e.Raw)
	}
}
