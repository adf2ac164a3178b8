package signaling

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"consult/protocol"
)

// Grants say what a token's holder may do in its room.
type Grants struct {
	Publish   bool `json:"publish"`
	Subscribe bool `json:"subscribe"`
	// Admin may use the HTTP APIs for the token's room (all rooms for
	// room "*"): list members, record, set policy.
	Admin bool `json:"admin,omitempty"`
}

// AllGrants is what everyone gets when the server runs without a secret.
var AllGrants = Grants{Publish: true, Subscribe: true, Admin: true}

// Claims is the JWT body: the room ("*" for any room), the identity in
// "sub", an optional display name, the role ("host" or "guest"; a token
// without one is a guest's), whether a guest may skip the waiting room, the
// grants, and "exp".
type Claims struct {
	Room        string `json:"room"`
	Name        string `json:"name,omitempty"`
	Role        string `json:"role,omitempty"`
	DirectEntry bool   `json:"directEntry,omitempty"`
	Grants      Grants `json:"grants"`
	jwt.RegisteredClaims
}

// TokenSpec describes a token to mint.
type TokenSpec struct {
	Room, Identity, Name string
	Role                 string // protocol.RoleHost or RoleGuest
	DirectEntry          bool
	Grants               Grants
	TTL                  time.Duration
}

var errRoomMismatch = errors.New("token is for another room")

// MintToken signs a token for spec with HMAC-SHA256.
func MintToken(secret []byte, spec TokenSpec, now time.Time) (string, error) {
	c := Claims{Room: spec.Room, Name: spec.Name, Role: spec.Role, DirectEntry: spec.DirectEntry, Grants: spec.Grants,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   spec.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(spec.TTL)),
		}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// VerifyToken checks signature, algorithm, expiry, role and room.
func VerifyToken(secret []byte, token, room string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired())
	if err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errors.New("token has no subject")
	}
	switch c.Role {
	case "":
		c.Role = protocol.RoleGuest
	case protocol.RoleHost, protocol.RoleGuest:
	default:
		return nil, errors.New("token has an unknown role")
	}
	if room != "" && c.Room != "*" && c.Room != room {
		return nil, errRoomMismatch
	}
	return &c, nil
}

// Scope is the set of rooms an HTTP request may administer.
type Scope struct {
	all   bool
	room  string
	claim *Claims // nil without auth
}

// Allows reports whether the scope covers room.
func (s Scope) Allows(room string) bool { return s.all || s.room != "" && s.room == room }

// All reports whether the scope covers every room.
func (s Scope) All() bool { return s.all }

// AdminScope says which rooms an HTTP request may administer: every room
// without a secret; with one, the room of the bearer token (every room for
// room "*") when it grants admin, or its own room when it is a host's. A
// token for room A never reaches room B. ok is false without such a token.
func (s *Server) AdminScope(r *http.Request) (scope Scope, ok bool) {
	if len(s.cfg.Secret) == 0 {
		return Scope{all: true}, true
	}
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found {
		return Scope{}, false
	}
	c, err := VerifyToken(s.cfg.Secret, tok, "")
	if err != nil || !c.Grants.Admin && !roleMay(c.Role, actRecord) {
		return Scope{}, false
	}
	if c.Room == "*" {
		// A server-wide token: only an admin one is server-wide.
		return Scope{all: c.Grants.Admin, claim: c}, c.Grants.Admin
	}
	return Scope{room: c.Room, claim: c}, true
}

// AdminAuthorized reports whether r may administer room (see AdminScope).
func (s *Server) AdminAuthorized(r *http.Request, room string) bool {
	sc, ok := s.AdminScope(r)
	return ok && sc.Allows(room)
}

// RoomAccess says which rooms r may administer, or nil for none: the form
// the recording API takes.
func (s *Server) RoomAccess(r *http.Request) func(room string) bool {
	sc, ok := s.AdminScope(r)
	if !ok {
		return nil
	}
	return sc.Allows
}
