package turn

import (
	"fmt"
	"strings"
	"time"
)

// DefaultCredentialTTL is how long handed-out TURN credentials stay valid
// when ICEConfig.TTL is zero. The server checks the expiry on every Refresh,
// so a browser that keeps the credentials of its join for the whole call
// loses its relay up to one allocation lifetime after they expire: the TTL
// must outlast the longest call, not just the join.
const DefaultCredentialTTL = 12 * time.Hour

// ICEServer is one entry of the ICE server list handed to a client. Its shape
// and JSON names are those of the WebRTC RTCIceServer dictionary, so the
// signaling layer can send it as is, and it converts field by field to
// pion/webrtc's ICEServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEConfig describes the STUN/TURN servers clients should use and how to
// mint their credentials. It is the same for the embedded server (URLs from
// Server.URLs, Secret from Config.Secret) and for an external coturn (URLs
// and the static-auth-secret from the operator).
type ICEConfig struct {
	// URLs are stun:, stuns:, turn: or turns: URLs as in RFC 7064/7065,
	// e.g. "turn:turn.example.com:3478?transport=udp".
	URLs []string
	// Secret is the shared secret of the TURN REST scheme.
	Secret string
	// TTL is how long credentials stay valid; zero means DefaultCredentialTTL.
	TTL time.Duration
}

// Validate reports URLs that browsers would reject (which makes
// RTCPeerConnection construction throw, failing the whole join) and TURN
// URLs without a secret to sign credentials with.
func (c ICEConfig) Validate() error {
	hasTURN := false
	for _, u := range c.URLs {
		scheme, rest, ok := strings.Cut(u, ":")
		if !ok || rest == "" || strings.HasPrefix(rest, "//") {
			return fmt.Errorf("%w: ICE URL %q: want scheme:host[:port]", ErrBadConfig, u)
		}
		switch scheme {
		case "stun", "stuns":
		case "turn", "turns":
			hasTURN = true
		default:
			return fmt.Errorf("%w: ICE URL %q: unknown scheme %q", ErrBadConfig, u, scheme)
		}
	}
	if hasTURN && c.Secret == "" {
		return ErrNoSecret
	}
	return nil
}

// ICEServers returns the entries for one client: STUN URLs in an entry
// without credentials, and TURN URLs in one entry with fresh REST
// credentials for userID valid from now for the TTL. It returns nil when
// there are no URLs. TURN URLs are left out when there is no secret, since
// they could not authenticate (Validate reports that case).
func (c ICEConfig) ICEServers(userID string, now time.Time) []ICEServer {
	var stunURLs, turnURLs []string
	for _, u := range c.URLs {
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			turnURLs = append(turnURLs, u)
		} else {
			stunURLs = append(stunURLs, u)
		}
	}
	var out []ICEServer
	if len(stunURLs) > 0 {
		out = append(out, ICEServer{URLs: stunURLs})
	}
	if len(turnURLs) > 0 && c.Secret != "" {
		ttl := c.TTL
		if ttl <= 0 {
			ttl = DefaultCredentialTTL
		}
		user, pass := Credentials(c.Secret, userID, ttl, now)
		out = append(out, ICEServer{URLs: turnURLs, Username: user, Credential: pass})
	}
	return out
}
