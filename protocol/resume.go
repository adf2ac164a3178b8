package protocol

// Resume. A member outlives its socket for a grace period: a client whose
// socket dropped opens a new one and sends resume with the token of its
// last joined or resumed message; the server answers resumed, with a new
// token (each is good for one resume), and then sends, in order, every
// message the client missed. After the grace period, or with a bad token,
// the answer is the error resume-expired: join afresh.
const (
	TypeResume     = "resume"      // client: take my session back (body: Resume)
	TypeResumed    = "resumed"     // server: it is yours (body: Resumed); what was missed follows
	TypeICERestart = "ice-restart" // both ways: restart ICE on that PeerConnection (body: ICERestart)
)

// Resume asks for a session back.
type Resume struct {
	Token string `json:"token"`
}

// Resumed answers a resume. AddressChanged says the new socket comes from
// another address than the last: the client should restart ICE on the
// PeerConnections it offers (the server does on its own).
type Resumed struct {
	You            string `json:"you"`
	ResumeToken    string `json:"resumeToken"`
	AddressChanged bool   `json:"addressChanged,omitempty"`
}

// ICERestart names the PeerConnection to restart: from the server,
// "publish" (the client offers it, so the client restarts it); from the
// client, "subscribe" (the server offers it).
type ICERestart struct {
	PC string `json:"pc"`
}

// ErrResumeExpired answers a resume that came too late or with a token
// the server does not know (it restarted): join again.
const ErrResumeExpired = "resume-expired"
