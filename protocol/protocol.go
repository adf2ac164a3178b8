// Package protocol defines the JSON messages exchanged over the signaling
// WebSocket. The types here are the reference for clients (docs/protocol.md
// walks through them); both the server and the Go client use them.
//
// Every message is one JSON object with a "type" field and the fields of
// the struct named after that type, at the top level:
//
//	{"type":"join","room":"consult-42","name":"Dr Lee","live":true}
package protocol

// Message types sent by clients.
const (
	TypeJoin       = "join"
	TypeLeave      = "leave"
	TypeOffer      = "offer"
	TypeAnswer     = "answer"
	TypeCandidate  = "candidate"
	TypeMute       = "mute"
	TypeInvite     = "invite"
	TypeAccept     = "accept"
	TypeReject     = "reject"
	TypeCancel     = "cancel"
	TypeHangup     = "hangup"
	TypeP2PState   = "p2p-state"   // outcome of a direct connection attempt
	TypePathSwitch = "path-switch" // how long the picture stalled when the media path changed
	TypePathReady  = "path-ready"  // the peer's video reaches this client over a new path
)

// Message types sent by the server. offer, answer and candidate go both
// ways.
const (
	TypeJoined             = "joined"
	TypeParticipantJoined  = "participant-joined"
	TypeParticipantUpdated = "participant-updated"
	TypeParticipantLeft    = "participant-left"
	TypeTrackPublished     = "track-published"
	TypeTrackUnpublished   = "track-unpublished"
	TypeCall               = "call"
	TypeRecording          = "recording"
	TypeMode               = "mode"
	TypeError              = "error"
	TypeGoodbye            = "goodbye"
)

// TargetServer addresses the server's PeerConnections in offer, answer
// and candidate. Any other target is a participant id (peer-to-peer mode).
const TargetServer = "server"

// PC names which PeerConnection a candidate belongs to: one of a
// participant's two server PeerConnections, or the direct one to its peer.
const (
	PCPublish   = "publish"   // the client offers, and sends media on it
	PCSubscribe = "subscribe" // the server offers, and sends media on it
	PCP2P       = "p2p"       // the direct connection of a 1:1 call
)

// Room modes.
const (
	ModeSFU = "sfu"
	ModeP2P = "p2p"
)

// Join enters a room. Live members publish and receive at once; others
// wait (a waiting room) until a host lets them in. A guest asking to be
// live waits all the same, unless its token or the room grants direct
// entry (see roles.go).
type Join struct {
	Room  string `json:"room"`
	Name  string `json:"name"`
	Live  bool   `json:"live"`
	Token string `json:"token,omitempty"`
	// Role is "host" or "guest". With auth on it comes from the token and
	// this field is ignored; without, the server trusts it (default host).
	Role string `json:"role,omitempty"`
	// Capacity sets the room's live capacity when this join creates the
	// room; honoured for admin tokens, or for anyone when auth is off.
	Capacity int `json:"capacity,omitempty"`
	// P2P says the client can take a direct connection in a 1:1 call
	// (see Mode).
	P2P bool `json:"p2p,omitempty"`
	// Video is what the client can decode and encode (videocodec.go).
	Video *VideoCodecs `json:"video,omitempty"`
}

// Mode tells a live client which media path to use.
//
//   - mode "p2p", state "trying": connect directly to Peer (the offerer
//     offers, target = the peer's id; pc "p2p"), using only IceServers
//     (STUN: host and server-reflexive candidates). Keep any server
//     connections until told otherwise. Report the outcome in p2p-state.
//   - mode "p2p", state "active": the direct path is the path; close the
//     server PeerConnections (the server closes its side too).
//   - mode "sfu": publish to the server (offer on "publish" if not yet) and
//     receive from it. A direct connection that never connected closes at
//     once; one that carried the call stays until mode "sfu", state
//     "active" (send path-ready "sfu" once the peer's video arrives from
//     the server).
//   - mode "sfu", state "active": the server carries the call: close the
//     direct connection.
type Mode struct {
	Mode       string      `json:"mode"`
	State      string      `json:"state,omitempty"`
	Peer       string      `json:"peer,omitempty"`
	Offerer    bool        `json:"offerer,omitempty"`
	ICEServers []ICEServer `json:"iceServers,omitempty"`
}

// Mode states.
const (
	ModeTrying = "trying"
	ModeActive = "active"
)

// P2PState reports a direct attempt: state "connected" with the selected
// candidate pair's local and remote types (host, srflx, prflx, relay), or
// "failed".
type P2PState struct {
	State  string `json:"state"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
}

// PathReady says the peer's video now reaches this client over Path
// ("sfu" or "p2p"). The server closes the old path of a 1:1 call only once
// both members said so (or after a bound), since closing it on one side
// cuts both directions.
type PathReady struct {
	Path string `json:"path"`
}

// PathSwitch reports the longest stall of the peer's video a client saw
// while the media path changed (0 when the new path delivered before the
// old one stopped).
type PathSwitch struct {
	From  string `json:"from"`
	To    string `json:"to"`
	GapMS int    `json:"gapMs"`
}

// SessionDescription carries an offer or an answer. From the server,
// From is "server" (or the sending participant's id in p2p mode).
//
// Screen, in a client's publish offer to the server, is the mid of the
// transceiver that carries a screen share (sent beside the camera, not in
// its place), so the server can mark that track as a screen for the
// others (Track.Source).
type SessionDescription struct {
	Target string `json:"target,omitempty"`
	From   string `json:"from,omitempty"`
	SDP    string `json:"sdp"`
	Screen string `json:"screen,omitempty"`
}

// ICECandidate has the field names of the browser's RTCIceCandidateInit,
// so a page can pass candidate.toJSON() through unchanged.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Candidate trickles one ICE candidate. PC says which server
// PeerConnection it belongs to ("publish" or "subscribe").
type Candidate struct {
	Target    string       `json:"target,omitempty"`
	From      string       `json:"from,omitempty"`
	PC        string       `json:"pc,omitempty"`
	Candidate ICECandidate `json:"candidate"`
}

// Mute tells the room that the sender muted or unmuted its microphone
// ("audio") or turned its camera off or on ("video"), or started
// ("screen", muted false) or stopped (muted true) sharing its screen. With
// Participant set, a host mutes another member's microphone or camera
// (muted:true only: nobody is unmuted by someone else).
type Mute struct {
	Kind        string `json:"kind"`
	Muted       bool   `json:"muted"`
	Participant string `json:"participant,omitempty"`
}

// Invite rings a waiting member; Cancel stops ringing them.
type Invite struct {
	Participant string `json:"participant"`
}

// Joined answers a successful join. Participants are the members this
// client may see: everyone for a host, the live members for a live guest,
// nobody for a waiting guest.
type Joined struct {
	Room         string        `json:"room"`
	You          string        `json:"you"`
	Name         string        `json:"name"` // as others see it (cleaned, or the token's)
	Role         string        `json:"role"`
	CanPublish   bool          `json:"canPublish"`
	ExpiresAt    int64         `json:"expiresAt,omitempty"` // the session ends then (Unix ms; token expiry)
	Live         bool          `json:"live"`
	Mode         string        `json:"mode"`
	Capacity     int           `json:"capacity"`
	Recording    bool          `json:"recording"`
	Participants []Participant `json:"participants"`
	// Chat is the room's messages this member may read (chat.go).
	Chat       []ChatMessage `json:"chat,omitempty"`
	ICEServers []ICEServer   `json:"iceServers"`
	// ResumeToken takes the session back on a new socket (resume.go),
	// within ResumeGraceMS of losing the old one.
	ResumeToken   string `json:"resumeToken,omitempty"`
	ResumeGraceMS int64  `json:"resumeGraceMs,omitempty"`
	// Simulcast asks the client to send its camera to the server as
	// simulcast layers (rids q, h, f; docs/simulcast.md).
	Simulcast bool `json:"simulcast,omitempty"`
	// VideoCodec is the video codec to publish (MIME type; videocodec.go).
	VideoCodec string `json:"videoCodec,omitempty"`
}

// ICEServer has the field names of the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Participant is a room member as others see it. WaitingSince (Unix ms)
// is set for a waiting member, and only hosts see waiting members.
type Participant struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Role         string `json:"role"`
	Live         bool   `json:"live"`
	WaitingSince int64  `json:"waitingSince,omitempty"`
	// Reconnecting: the member's socket or media is down; it keeps its
	// place for the grace period (resume.go) and may come back.
	Reconnecting bool `json:"reconnecting,omitempty"`
	AudioMuted   bool `json:"audioMuted"`
	VideoMuted   bool `json:"videoMuted"`
	// Sharing: the member is presenting its screen (Mute kind "screen").
	Sharing bool    `json:"sharing,omitempty"`
	Tracks  []Track `json:"tracks"`
}

// Track is a published track. ID and StreamID are what a subscriber's
// RTCPeerConnection reports for the received track and its stream.
// Source is "screen" for a screen share, whose stream id then ends in
// ":screen"; empty for camera and microphone.
type Track struct {
	ID       string `json:"id"`
	StreamID string `json:"streamId"`
	Kind     string `json:"kind"`
	Codec    string `json:"codec"`
	Source   string `json:"source,omitempty"`
}

// SourceScreen marks a screen share track.
const SourceScreen = "screen"

// ParticipantEvent is the body of participant-joined and
// participant-updated.
type ParticipantEvent struct {
	Participant Participant `json:"participant"`
}

// ParticipantLeft names a member who left.
type ParticipantLeft struct {
	Participant string `json:"participant"`
}

// TrackEvent is the body of track-published and track-unpublished.
type TrackEvent struct {
	Participant string `json:"participant"`
	Track       Track  `json:"track"`
}

// Call states, sent to both the caller and the callee at each transition.
const (
	CallRinging   = "ringing"   // the callee is being rung
	CallAccepted  = "accepted"  // the callee is live now
	CallRejected  = "rejected"  // the callee declined
	CallCancelled = "cancelled" // the caller gave up (or either left)
	CallTimeout   = "timeout"   // nobody answered in time
	CallBusy      = "busy"      // the callee is already being called (to the caller only)
	CallFailed    = "failed"    // could not go live (Reason says why, e.g. room-full)
)

// Call reports a call transition.
type Call struct {
	State  string `json:"state"`
	Caller string `json:"caller"`
	Callee string `json:"callee"`
	Reason string `json:"reason,omitempty"`
}

// Recording tells the room whether it is being recorded (clients show an
// indicator while Active). Error says why a recording stopped on its own.
type Recording struct {
	Active bool   `json:"active"`
	Error  string `json:"error,omitempty"`
}

// Error codes.
const (
	ErrBadRequest    = "bad-request"    // malformed JSON or fields out of range
	ErrUnknownType   = "unknown-type"   // no such message type
	ErrTooLarge      = "too-large"      // message over the size limit
	ErrRateLimited   = "rate-limited"   // too many messages; this one was dropped
	ErrNotJoined     = "not-joined"     // join first
	ErrAlreadyJoined = "already-joined" // one room per connection
	ErrRoomFull      = "room-full"      // the room's live capacity is reached
	ErrUnauthorized  = "unauthorized"   // missing, invalid or expired token
	ErrForbidden     = "forbidden"      // the token does not grant this
	ErrInvalidSDP    = "invalid-sdp"
	ErrInvalidICE    = "invalid-candidate"
	ErrNotFound      = "not-found"     // no such participant
	ErrInvalidState  = "invalid-state" // e.g. accept with no incoming call
	ErrServer        = "server-error"
	ErrTransport     = "transport-failed" // the media connection died
	ErrRecording     = "recording-failed" // to admins: a recording stopped on an error
	// ErrRecordingIncomplete, to admins: a recording runs without one of
	// a participant's tracks (a codec no file holds, or an unusable stream).
	ErrRecordingIncomplete = "recording-incomplete"
	ErrNotHost             = "not-host"        // only a host may do this
	ErrServerBusy          = "server-busy"     // a server-wide limit: try again after Error.RetryAfterMS
	ErrServerDraining      = "server-draining" // the server is being replaced and opens no new rooms
)

// Error reports a problem with one client message. Ref is the message's
// "id" field when it had one, else its type.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
	// RetryAfterMS, with server-busy, is when trying again may work.
	RetryAfterMS int `json:"retryAfterMs,omitempty"`
}

// Goodbye is the last message before the server closes the connection.
// Code says why, for the client to act on (GoodbyeShutdown: rejoin; the
// others: do not rejoin by yourself).
type Goodbye struct {
	Reason string `json:"reason"`
	Code   string `json:"code,omitempty"`
}

// Goodbye codes.
const (
	GoodbyeShutdown  = "shutdown"      // the server is stopping (a deploy); rejoin
	GoodbyeRemoved   = "removed"       // a host removed this member
	GoodbyeReplaced  = "replaced"      // the same identity joined again elsewhere
	GoodbyeExpired   = "token-expired" // the session's token expired
	GoodbyeEnded     = "ended"         // a host ended the consultation (after "ended")
	GoodbyeTransport = "transport"     // the media connection died
)
