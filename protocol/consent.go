package protocol

import (
	"errors"
	"time"
)

// Consent to record, over the signaling socket (docs/protocol.md,
// "Recording and consent"). A host asks to record (record {start:true});
// unless the room's policy takes consent elsewhere, every other live
// member gets consent-request and answers with consent; the recording
// starts once all have agreed, and not at all if one declines or does
// not answer in time. The hosts follow it through record-state. A member
// who comes into the call while it is recorded is asked too, and is
// recorded only once it agrees. The same types are the consent part of a
// recording's manifest.

const (
	TypeRecord         = "record"          // client (host): Record
	TypeConsent        = "consent"         // client: ConsentReply
	TypeConsentRequest = "consent-request" // server: ConsentRequest
	TypeRecordState    = "record-state"    // server, to hosts: RecordState
)

// Record starts (true) or stops a recording of the host's room.
type Record struct {
	Start bool `json:"start"`
}

// ConsentRequest asks a member to agree to a recording; Closed withdraws
// the request (the recording will not start, or was stopped).
type ConsentRequest struct {
	Request string `json:"request"`
	From    string `json:"from,omitempty"` // the host who asked
	Closed  bool   `json:"closed,omitempty"`
}

// ConsentReply is a member's answer.
type ConsentReply struct {
	Request string `json:"request"`
	Accept  bool   `json:"accept"`
}

// Record states.
const (
	RecordAsking    = "asking"    // waiting for answers (Waiting)
	RecordDeclined  = "declined"  // not started: Declined did not agree (or did not answer)
	RecordStarted   = "recording" // running; Declined lists later members who are not recorded
	RecordStopped   = "stopped"
	RecordCancelled = "cancelled" // the host withdrew the request
	RecordFailed    = "failed"
)

// RecordState tells a room's hosts where a request to record stands.
type RecordState struct {
	Request  string   `json:"request"`
	State    string   `json:"state"`
	Waiting  []string `json:"waiting,omitempty"`
	Declined []string `json:"declined,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// Consent policies: how consent to a room's recording is taken.
const (
	ConsentAsked     = "asked"     // every live member agreed in the call
	ConsentElsewhere = "elsewhere" // outside the call (the room's policy, or the API)
)

// RecordingConsent is how a recording's consent was taken, with the answers.
type RecordingConsent struct {
	Policy  string          `json:"policy"`
	By      string          `json:"by,omitempty"` // the member (or "api") that started it
	Answers []ConsentAnswer `json:"answers,omitempty"`
}

// ConsentAnswer is one member's answer, or why there was none ("no
// answer", "left").
type ConsentAnswer struct {
	Participant string    `json:"participant"`
	Accepted    bool      `json:"accepted"`
	At          time.Time `json:"at"`
	Why         string    `json:"why,omitempty"`
}

// RecordedPerson is a member of a recorded room, for the manifest.
type RecordedPerson struct {
	ID       string `json:"id"`
	Role     string `json:"role,omitempty"`
	Identity string `json:"identity,omitempty"`
}

func validConsent(r *ConsentReply) error {
	if r.Request == "" || len(r.Request) > 64 {
		return errors.New("consent needs the request's id")
	}
	return nil
}
