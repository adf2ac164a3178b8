package protocol

// Speakers in a call on the SFU (docs/protocol.md, "Speaker"). The server
// reads the audio level each publisher puts in its audio packets and tells
// every live member who the dominant speaker is (the one speaker view
// shows) and who is speaking now, whenever that changes, at most
// SpeakerRate times a second per room. On the direct path the media does
// not pass the server: there are no speaker messages, and clients use the
// levels they measure themselves.

const (
	TypeSpeaker = "speaker" // server: Speaker

	SpeakerRate = 5 // messages per second per room, at most
)

// Speaker is a room's speakers now; the latest message replaces the ones
// before it.
type Speaker struct {
	// Participant is the dominant speaker's id: "" before anyone has
	// spoken, or once the last one left. It stays on the last speaker
	// while everyone is silent.
	Participant string `json:"participant"`
	// Active are the ids of those speaking now (sorted; never null).
	Active []string `json:"active"`
}
