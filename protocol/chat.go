package protocol

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chat in a consult, over the signaling socket (docs/protocol.md, "Chat").
// A live member writes to everyone in the call; a host may write to one
// member, a waiting guest among them (the waiting screen shows it); a
// waiting guest's messages go to the room's hosts only. The server keeps a
// room's messages for the life of the room and gives each member those it
// may read when it joins: a host, all of them; a guest, those that were
// for it when they were sent.
// Messages are text: clients show them as text, with links made clickable
// and nothing else interpreted.

const (
	TypeChat = "chat" // client: Chat; server: ChatEvent

	// ChatToHosts addresses a waiting guest's message: the room's hosts.
	ChatToHosts = "hosts"

	MaxChatLen = 2000 // characters in one message
)

// Chat is a message a client sends: To is empty for everyone in the call,
// or a member's id (hosts only).
type Chat struct {
	Text string `json:"text"`
	To   string `json:"to,omitempty"`
}

// ChatMessage is one message as the server keeps and sends it.
type ChatMessage struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	FromName string `json:"fromName"`
	FromRole string `json:"fromRole"`
	// To is "" (everyone in the call), ChatToHosts, or a member's id.
	To   string `json:"to,omitempty"`
	Text string `json:"text"`
	At   int64  `json:"at"` // Unix ms
}

// ChatEvent carries one new message.
type ChatEvent struct {
	Message ChatMessage `json:"message"`
}

// CleanChat checks a message's text: valid UTF-8, something visible, at
// most MaxChatLen characters. Format characters (bidi overrides and the
// like, which make text read as other text) go; control characters other
// than line breaks and tabs become spaces; lines keep their breaks.
func CleanChat(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", errors.New("message is not valid UTF-8")
	}
	var b strings.Builder
	n := 0
	for _, r := range text {
		switch {
		case r == '\r':
			continue
		case r == '\n' || r == '\t':
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsControl(r):
			r = ' '
		}
		if n++; n > MaxChatLen {
			return "", fmt.Errorf("message too long (at most %d characters)", MaxChatLen)
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", errors.New("message is empty")
	}
	return out, nil
}
