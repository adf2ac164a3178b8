package protocol

// Roles. A host (clinician, staff) runs the consult: lets guests in, sends
// them back to the waiting room, removes or mutes them, records, ends the
// consult. A guest (patient, family, interpreter) waits until a host lets
// it in, and sees the call's members only while it is in the call.
const (
	RoleHost  = "host"
	RoleGuest = "guest"
)

// Messages a host sends about another member (body: Moderate), and the
// end of the consult (no body).
const (
	TypeAdmit           = "admit"             // let a waiting member in now (no ringing)
	TypeReturnToWaiting = "return-to-waiting" // take a live member out of the call, back to the waiting room
	TypeRemove          = "remove"            // remove a member from the room
	TypeEnd             = "end"               // end the consultation for everyone
	TypeRefresh         = "refresh"           // a fresh token for this session (body: Refresh)
)

// Messages the server sends about the session and the consult.
const (
	TypeEnded         = "ended"          // a host ended the consultation (body: Ended); goodbye follows
	TypeTokenExpiring = "token-expiring" // the session ends at ExpiresAt unless refreshed (body: Session)
	TypeRefreshed     = "refreshed"      // a refresh was taken (body: Session)
	TypeMuted         = "muted"          // a host muted this member (body: Muted)
)

// Moderate names the member a host acts on.
type Moderate struct {
	Participant string `json:"participant"`
}

// Refresh carries a new token for the running session: same identity and
// room, a later expiry.
type Refresh struct {
	Token string `json:"token"`
}

// Session tells a member when its session ends (Unix ms).
type Session struct {
	ExpiresAt int64 `json:"expiresAt"`
}

// Ended tells everyone the consultation is over: who ended it and how
// long the call ran (from when two members were first live together).
type Ended struct {
	By         string `json:"by"`
	ByName     string `json:"byName"`
	DurationMS int64  `json:"durationMs"`
}

// Muted tells a member that a host turned its microphone ("audio") or
// camera ("video") off. The server stops forwarding that kind until the
// member itself sends mute with muted:false.
type Muted struct {
	Kind string `json:"kind"`
	By   string `json:"by"`
}
