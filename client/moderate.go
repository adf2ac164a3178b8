package client

import "consult/protocol"

// What a host does to other members (docs/protocol.md, "Roles"). The
// server answers a guest's attempt with a not-host error; outcomes arrive
// as events (participant-updated, participant-left, ended).

// Admit lets a waiting member into the call at once.
func (c *Client) Admit(id string) error {
	return c.Send(protocol.TypeAdmit, protocol.Moderate{Participant: id})
}

// ReturnToWaiting takes a live member out of the call, back to the
// waiting room.
func (c *Client) ReturnToWaiting(id string) error {
	return c.Send(protocol.TypeReturnToWaiting, protocol.Moderate{Participant: id})
}

// Remove removes a member from the room.
func (c *Client) Remove(id string) error {
	return c.Send(protocol.TypeRemove, protocol.Moderate{Participant: id})
}

// MuteOther turns another member's microphone ("audio") or camera
// ("video") off.
func (c *Client) MuteOther(id, kind string) error {
	return c.Send(protocol.TypeMute, protocol.Mute{Kind: kind, Muted: true, Participant: id})
}

// End ends the consultation for everyone.
func (c *Client) End() error { return c.Send(protocol.TypeEnd, nil) }

// Refresh hands the server a new token for this session.
func (c *Client) Refresh(token string) error {
	return c.Send(protocol.TypeRefresh, protocol.Refresh{Token: token})
}

// Chat sends a message: to "" is everyone in the call, or a member's id
// (a host writing to one person). Messages arrive as "chat" events
// (protocol.ChatEvent), the client's own included; Joined.Chat holds the
// history it may read.
func (c *Client) Chat(text, to string) error {
	return c.Send(protocol.TypeChat, protocol.Chat{Text: text, To: to})
}

// Record asks to start (or stop) recording the room; a host's only.
func (c *Client) Record(start bool) error {
	return c.Send(protocol.TypeRecord, protocol.Record{Start: start})
}

// Consent answers a request to record.
func (c *Client) Consent(request string, accept bool) error {
	return c.Send(protocol.TypeConsent, protocol.ConsentReply{Request: request, Accept: accept})
}
