package turn

import (
	"crypto/hmac"
	"crypto/sha1" // the TURN REST scheme is defined with HMAC-SHA1; coturn checks exactly this
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	pturn "github.com/pion/turn/v5"
)

// maxUsernameLen bounds what ParseUsername looks at. RFC 8489 limits
// USERNAME to fewer than 509 bytes; anything longer is hostile or broken.
const maxUsernameLen = 508

// Credentials returns a TURN username and password in the TURN REST scheme
// (draft-uberti-behave-turn-rest), which coturn implements as
// use-auth-secret/static-auth-secret: the username is
// "<expiry unix time>:<userID>" and the password is
// base64(HMAC-SHA1(secret, username)).
//
// The server never stores these credentials; it recomputes the password from
// the username, which is why the expiry is part of the username and why the
// signaling server and any coturn only need to share the secret. The userID
// only labels the allocation in logs and quotas; it may contain ':' (only the
// first colon separates) and may be empty, in which case the username is the
// bare expiry, which coturn also accepts.
func Credentials(secret, userID string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10)
	if userID != "" {
		username += ":" + userID
	}
	return username, restPassword(secret, username)
}

// ParseUsername splits a REST username into its expiry time and user ID.
// It only checks the syntax; whether the expiry has passed is the caller's
// question (see VerifyCredentials). The input comes straight off the network,
// so it is strict: the expiry must be plain decimal digits (no sign, no
// spaces) that fit an int64, and the whole username must be shorter than the
// STUN limit.
func ParseUsername(username string) (expiry time.Time, userID string, err error) {
	if len(username) == 0 || len(username) > maxUsernameLen {
		return time.Time{}, "", fmt.Errorf("%w: length %d", ErrMalformedUsername, len(username))
	}
	ts, userID, _ := strings.Cut(username, ":")
	if len(ts) == 0 || len(ts) > 18 { // 18 digits always fit int64
		return time.Time{}, "", fmt.Errorf("%w: expiry %q", ErrMalformedUsername, ts)
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return time.Time{}, "", fmt.Errorf("%w: expiry %q", ErrMalformedUsername, ts)
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %v", ErrMalformedUsername, err)
	}
	return time.Unix(secs, 0), userID, nil
}

// VerifyCredentials checks a REST username and password against the shared
// secret at time now, and returns the user ID on success. The TURN server
// itself never sees the password (STUN proves it with a MAC keyed by
// MD5(username:realm:password)), so it uses checkUsername and authKey; this
// function is for anything else that receives REST credentials in clear and
// for tests.
func VerifyCredentials(secret, username, password string, now time.Time) (userID string, err error) {
	userID, err = checkUsername(username, now)
	if err != nil {
		return "", err
	}
	want := restPassword(secret, username)
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return "", ErrBadPassword
	}
	return userID, nil
}

// checkUsername parses username and refuses it once expired. The expiry is
// inclusive of the second it names, as in coturn.
func checkUsername(username string, now time.Time) (userID string, err error) {
	expiry, userID, err := ParseUsername(username)
	if err != nil {
		return "", err
	}
	if now.After(expiry) {
		return "", fmt.Errorf("%w at %s", ErrExpired, expiry.UTC().Format(time.RFC3339))
	}
	if userID == "" {
		// Quotas and logs need some identity; a bare-expiry username is its
		// own identity.
		userID = username
	}
	return userID, nil
}

// authKey is the TURN long-term credential key for a REST username:
// MD5(username ":" realm ":" password) with the password derived from the
// secret. pion checks the request's MESSAGE-INTEGRITY with it, which is
// where a wrong password is caught.
func authKey(secret, realm, username string) []byte {
	return pturn.GenerateAuthKey(username, realm, restPassword(secret, username))
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // hash.Hash writes never fail
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
