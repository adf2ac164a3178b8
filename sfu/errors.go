package sfu

import "errors"

// Sentinel errors; callers match them with errors.Is and map them to
// protocol error codes.
var (
	ErrClosed        = errors.New("sfu: closed")
	ErrDuplicateID   = errors.New("sfu: participant id already in room")
	ErrForbidden     = errors.New("sfu: not allowed by the participant's grants")
	ErrInvalidSDP    = errors.New("sfu: invalid session description")
	ErrInvalidICE    = errors.New("sfu: invalid ICE candidate")
	ErrNoOffer       = errors.New("sfu: answer without an outstanding offer")
	ErrTooManyQueued = errors.New("sfu: too many early ICE candidates")

	errUnknownStream = errors.New("sfu: write to a stream the pacer does not know")
)
