package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
)

// Limits on client input.
const (
	MaxMessageSize = 64 << 10
	MaxNameRunes   = 64
	MaxRoomLen     = 64
	MaxSDPLen      = 60 << 10
	MaxCapacity    = 50
	MaxTokenLen    = 4096
)

// Decode errors; wrapped with details.
var (
	ErrMalformed = errors.New("malformed message")
	ErrUnknown   = errors.New("unknown message type")
	ErrInvalid   = errors.New("invalid message")
)

type header struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Encode marshals body (a struct from this package, or nil) with its type
// as one flat JSON object.
func Encode(typ string, body any) ([]byte, error) {
	t, _ := json.Marshal(typ)
	if body == nil {
		return []byte(`{"type":` + string(t) + `}`), nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("protocol: %T does not encode to an object", body)
	}
	out := make([]byte, 0, len(b)+len(t)+10)
	out = append(out, `{"type":`...)
	out = append(out, t...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}

// Incoming is a decoded client message: its type, optional id, and body
// (one of the client message structs, or nil for those without fields).
type Incoming struct {
	Type string
	ID   string
	Body any
}

var clientBodies = map[string]func() any{
	TypeJoin:       func() any { return &Join{} },
	TypeLeave:      nil,
	TypeOffer:      func() any { return &SessionDescription{} },
	TypeAnswer:     func() any { return &SessionDescription{} },
	TypeCandidate:  func() any { return &Candidate{} },
	TypeMute:       func() any { return &Mute{} },
	TypeInvite:     func() any { return &Invite{} },
	TypeAccept:     nil,
	TypeReject:     nil,
	TypeCancel:     func() any { return &Invite{} },
	TypeHangup:     nil,
	TypeP2PState:   func() any { return &P2PState{} },
	TypePathSwitch: func() any { return &PathSwitch{} },
	TypePathReady:  func() any { return &PathReady{} },

	TypeAdmit:           func() any { return &Moderate{} },
	TypeReturnToWaiting: func() any { return &Moderate{} },
	TypeRemove:          func() any { return &Moderate{} },
	TypeEnd:             nil,
	TypeRefresh:         func() any { return &Refresh{} },
	TypeResume:          func() any { return &Resume{} },
	TypeICERestart:      func() any { return &ICERestart{} },
	TypeChat:            func() any { return &Chat{} },
	TypeLinkStats:       func() any { return &LinkStats{} },
	TypeRecord:          func() any { return &Record{} },
	TypeConsent:         func() any { return &ConsentReply{} },
	TypeTrackView:       func() any { return &TrackView{} },
}

// DecodeClient parses and validates one client message. The error wraps
// ErrMalformed, ErrUnknown or ErrInvalid; Incoming.Type and ID are filled
// whenever the envelope could be read, so errors can refer to them.
func DecodeClient(data []byte) (Incoming, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return Incoming{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	in := Incoming{Type: h.Type, ID: h.ID}
	if len(in.ID) > 64 {
		in.ID = in.ID[:64]
	}
	mk, ok := clientBodies[h.Type]
	if !ok {
		return in, fmt.Errorf("%w: %q", ErrUnknown, truncate(h.Type, 32))
	}
	if mk == nil {
		return in, nil
	}
	in.Body = mk()
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(in.Body); err != nil {
		return in, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := validate(in.Body); err != nil {
		return in, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return in, nil
}

func validate(body any) error {
	switch m := body.(type) {
	case *ConsentReply:
		return validConsent(m)
	case *Join:
		if err := ValidRoom(m.Room); err != nil {
			return err
		}
		name, err := CleanName(m.Name)
		if err != nil {
			return err
		}
		m.Name = name
		if m.Capacity < 0 || m.Capacity > MaxCapacity {
			return fmt.Errorf("capacity must be 1..%d", MaxCapacity)
		}
		if len(m.Token) > MaxTokenLen {
			return errors.New("token too long")
		}
		if m.Role != "" && m.Role != RoleHost && m.Role != RoleGuest {
			return errors.New(`role must be "host" or "guest"`)
		}
		if m.Video != nil {
			return m.Video.validate()
		}
	case *SessionDescription:
		if m.SDP == "" || len(m.SDP) > MaxSDPLen {
			return errors.New("sdp missing or too long")
		}
		if len(m.Screen) > 32 {
			return errors.New("screen mid too long")
		}
	case *Candidate:
		if len(m.Candidate.Candidate) > 1024 {
			return errors.New("candidate too long")
		}
	case *Mute:
		if m.Kind != "audio" && m.Kind != "video" && m.Kind != SourceScreen {
			return errors.New(`kind must be "audio", "video" or "screen"`)
		}
		if len(m.Participant) > 64 {
			return errors.New("participant too long")
		}
		if m.Participant != "" && m.Kind == SourceScreen {
			return errors.New("a screen share is stopped by its presenter")
		}
		if m.Participant != "" && !m.Muted {
			return errors.New("nobody can unmute another member")
		}
	case *Moderate:
		if m.Participant == "" || len(m.Participant) > 64 {
			return errors.New("participant missing")
		}
	case *Refresh:
		if m.Token == "" || len(m.Token) > MaxTokenLen {
			return errors.New("token missing or too long")
		}
	case *Resume:
		if m.Token == "" || len(m.Token) > 128 {
			return errors.New("token missing or too long")
		}
	case *ICERestart:
		if m.PC != PCSubscribe && m.PC != PCPublish && m.PC != PCP2P {
			return errors.New(`pc must be "publish", "subscribe" or "p2p"`)
		}
	case *P2PState:
		if m.State != "connected" && m.State != "failed" || len(m.Local) > 16 || len(m.Remote) > 16 {
			return errors.New(`state must be "connected" or "failed"`)
		}
	case *PathSwitch:
		if m.GapMS < 0 || m.GapMS > 600000 || len(m.From) > 8 || len(m.To) > 8 {
			return errors.New("gapMs out of range")
		}
	case *PathReady:
		if m.Path != ModeSFU && m.Path != ModeP2P {
			return errors.New(`path must be "sfu" or "p2p"`)
		}
	case *Invite:
		if m.Participant == "" || len(m.Participant) > 64 {
			return errors.New("participant missing")
		}
	case *Chat:
		if len(m.To) > 64 {
			return errors.New("to too long")
		}
		text, err := CleanChat(m.Text)
		if err != nil {
			return err
		}
		m.Text = text
	case *LinkStats:
		return m.validate()
	case *TrackView:
		return m.validate()
	}
	return nil
}

// ValidRoom accepts 1 to 64 letters, digits, '-', '_' and '.', so a room
// name is safe in a URL, a file name and a log line.
func ValidRoom(room string) error {
	if room == "" || len(room) > MaxRoomLen {
		return fmt.Errorf("room name must be 1..%d characters", MaxRoomLen)
	}
	for _, r := range room {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return errors.New("room name may hold letters, digits, '-', '_' and '.' only")
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
