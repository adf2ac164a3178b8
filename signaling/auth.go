package signaling

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Grants say what a token's holder may do in its room.
type Grants struct {
	Publish   bool `json:"publish"`
	Subscribe bool `json:"subscribe"`
	Admin     bool `json:"admin,omitempty"`
}

// AllGrants is what everyone gets when the server runs without a secret.
var AllGrants = Grants{Publish: true, Subscribe: true, Admin: true}

// Claims is the JWT body: the room ("*" for any room), the identity in
// "sub", an optional display name, the grants, and "exp".
type Claims struct {
	Room   string `json:"room"`
	Name   string `json:"name,omitempty"`
	Grants Grants `json:"grants"`
	jwt.RegisteredClaims
}

var errRoomMismatch = errors.New("token is for another room")

// MintToken signs claims with HMAC-SHA256. Identity and TTL fill "sub"
// and "exp".
func MintToken(secret []byte, room, identity, name string, g Grants, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{Room: room, Name: name, Grants: g, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   identity,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// VerifyToken checks signature, algorithm, expiry and room.
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
	if room != "" && c.Room != "*" && c.Room != room {
		return nil, errRoomMismatch
	}
	return &c, nil
}
