package signaling

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// Invite links. A host asks the server for a link to send a patient; with
// auth on, the link carries a short-lived guest token for the host's room
// (optionally bound to a name), so the patient needs no account and the
// host never handles the server's secret. The token travels in the link's
// fragment (#token=…), which browsers do not send to the server, and the
// page removes it from the address bar as soon as it has read it.

// Invite limits.
const (
	DefaultInviteTTL = 2 * time.Hour
	MaxInviteTTL     = 7 * 24 * time.Hour
)

// InviteRequest is the body of POST /api/invites.
type InviteRequest struct {
	Room string `json:"room"`
	// Name fixes the guest's display name (optional).
	Name string `json:"name,omitempty"`
	// Role is "guest" (default); a host invite needs an admin token.
	Role string `json:"role,omitempty"`
	// DirectEntry lets the guest skip the waiting room.
	DirectEntry bool `json:"directEntry,omitempty"`
	// TTLSeconds is how long the link works (default 2 h, at most 7 days).
	TTLSeconds int `json:"ttlSeconds,omitempty"`
}

// Invite answers it. Without auth, URL is an open-mode link with the role
// and Token is empty.
type Invite struct {
	URL       string `json:"url"`
	Path      string `json:"path"` // URL without scheme and host
	Token     string `json:"token,omitempty"`
	ExpiresAt int64  `json:"expiresAt,omitempty"` // Unix ms
}

func (s *Server) serveInvite(w http.ResponseWriter, r *http.Request) {
	var req InviteRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	if err := protocol.ValidRoom(req.Room); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.Role == "" {
		req.Role = protocol.RoleGuest
	}
	if req.Role != protocol.RoleGuest && req.Role != protocol.RoleHost {
		http.Error(w, `role must be "guest" or "host"`, http.StatusBadRequest)
		return
	}
	name := ""
	if req.Name != "" {
		n, err := protocol.CleanName(req.Name)
		if err != nil {
			http.Error(w, "name: "+err.Error(), http.StatusBadRequest)
			return
		}
		name = n
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	if ttl <= 0 {
		ttl = DefaultInviteTTL
	}
	if ttl > MaxInviteTTL {
		http.Error(w, "ttlSeconds too long", http.StatusBadRequest)
		return
	}
	scope, ok := s.AdminScope(r)
	if !ok || !scope.Allows(req.Room) {
		http.Error(w, "a host or admin token for this room is required", http.StatusUnauthorized)
		return
	}
	q := url.Values{"room": {req.Room}}
	inv := Invite{}
	if len(s.cfg.Secret) == 0 {
		// No token to carry the name: the link does (a trial server).
		if name != "" {
			q.Set("name", name)
		}
		q.Set("role", req.Role)
		inv.Path = "/?" + q.Encode()
	} else {
		if req.Role == protocol.RoleHost && !scope.claim.Grants.Admin {
			http.Error(w, "only an admin token can invite a host", http.StatusForbidden)
			return
		}
		spec := TokenSpec{Room: req.Room, Identity: req.Role + "-" + newID(), Name: name, Role: req.Role,
			DirectEntry: req.DirectEntry, Grants: Grants{Publish: true, Subscribe: true}, TTL: ttl}
		now := time.Now()
		tok, err := MintToken(s.cfg.Secret, spec, now)
		if err != nil {
			http.Error(w, "could not mint a token", http.StatusInternalServerError)
			return
		}
		inv.Token, inv.ExpiresAt = tok, now.Add(ttl).UnixMilli()
		inv.Path = "/?" + q.Encode() + "#" + url.Values{"token": {tok}}.Encode()
		s.log.Info("invite minted", zap.String("room", req.Room), zap.String("role", req.Role), zap.Duration("ttl", ttl))
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	inv.URL = scheme + "://" + r.Host + inv.Path
	writeJSON(w, inv)
}
