package protocol

// TypeTrackPaused tells a member that the server stopped (or started
// again) sending it one of the others' tracks because its downlink cannot
// carry it: audio goes first, so a member on a weak link loses the picture
// before the sound. The client shows the tile as paused for a poor
// connection; nothing is asked of it, the server resumes the track by
// itself when the link allows.
const TypeTrackPaused = "track-paused"

// PauseBandwidth is the one reason for now: the downlink's estimate.
const PauseBandwidth = "bandwidth"

// TrackPaused is the body of track-paused.
type TrackPaused struct {
	Participant string `json:"participant"` // whose track
	Track       string `json:"track"`
	Kind        string `json:"kind"`
	Paused      bool   `json:"paused"`
	Reason      string `json:"reason"`
}
