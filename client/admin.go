package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"consult/protocol"
)

// Admin calls the server API (docs/api.md) over HTTP, with an admin or
// host token: what a clinic's scheduling system or an operator's tool
// does without joining a room.
type Admin struct {
	Base  string // the server's base URL, such as https://consult.example
	Token string // bearer token (empty when the server runs without auth)
	HTTP  *http.Client
}

// APIError is an answer other than 2xx.
type APIError struct {
	Status int
	Text   string
}

func (e *APIError) Error() string { return fmt.Sprintf("server API: %d %s", e.Status, e.Text) }

// RoomSettings are a room's settings; nil fields are left as they are.
type RoomSettings struct {
	Capacity    *int  `json:"capacity,omitempty"`
	SFUOnly     *bool `json:"sfuOnly,omitempty"`
	DirectEntry *bool `json:"directEntry,omitempty"`
	Recording   *bool `json:"recording,omitempty"` // false: the room may not be recorded
}

// AdminRoom is a room as the API lists it.
type AdminRoom struct {
	Room     string                 `json:"room"`
	Mode     string                 `json:"mode"`
	Capacity int                    `json:"capacity"`
	Members  []protocol.Participant `json:"members"`
}

// Invite is an invite link and its token.
type Invite struct {
	URL       string `json:"url"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expiresAt"`
}

func (a *Admin) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &APIError{Status: resp.StatusCode, Text: strings.TrimSpace(string(b))}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func roomPath(room string) string { return "/api/rooms/" + url.PathEscape(room) }

func memberPath(room, id string) string {
	return roomPath(room) + "/participants/" + url.PathEscape(id)
}

// Rooms lists the rooms the token may see.
func (a *Admin) Rooms(ctx context.Context) ([]AdminRoom, error) {
	var out []AdminRoom
	return out, a.do(ctx, http.MethodGet, "/api/rooms", nil, &out)
}

// SetRoom sets a room up, ahead of its consult or during it.
func (a *Admin) SetRoom(ctx context.Context, room string, s RoomSettings) error {
	return a.do(ctx, http.MethodPut, roomPath(room), s, nil)
}

// EndRoom ends a room's consult for everyone in it.
func (a *Admin) EndRoom(ctx context.Context, room string) error {
	return a.do(ctx, http.MethodDelete, roomPath(room), nil, nil)
}

// Admit lets a waiting member into the call.
func (a *Admin) Admit(ctx context.Context, room, id string) error {
	return a.do(ctx, http.MethodPost, memberPath(room, id)+"/admit", nil, nil)
}

// ToWaiting sends a live member back to the waiting room.
func (a *Admin) ToWaiting(ctx context.Context, room, id string) error {
	return a.do(ctx, http.MethodPost, memberPath(room, id)+"/wait", nil, nil)
}

// Mute turns off a member's "audio" or "video".
func (a *Admin) Mute(ctx context.Context, room, id, kind string) error {
	return a.do(ctx, http.MethodPost, memberPath(room, id)+"/mute", map[string]string{"kind": kind}, nil)
}

// Remove takes a member out of the room.
func (a *Admin) Remove(ctx context.Context, room, id string) error {
	return a.do(ctx, http.MethodDelete, memberPath(room, id), nil, nil)
}

// Invite mints an invite link (and its token) for role ("guest" or
// "host") in room; ttlSeconds 0 is the server's default.
func (a *Admin) Invite(ctx context.Context, room, role, name string, ttlSeconds int) (Invite, error) {
	var out Invite
	err := a.do(ctx, http.MethodPost, "/api/invites",
		map[string]any{"room": room, "role": role, "name": name, "ttlSeconds": ttlSeconds}, &out)
	return out, err
}

// Drain starts a drain (a server-wide admin token).
func (a *Admin) Drain(ctx context.Context) error {
	return a.do(ctx, http.MethodPost, "/api/drain", nil, nil)
}
