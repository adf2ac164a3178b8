package turn

import "errors"

// Sentinel errors returned by this package. Callers match them with errors.Is.
var (
	// ErrNoListeners means the configuration opens no socket at all.
	ErrNoListeners = errors.New("turn: no UDP, TCP or TLS listener configured")
	// ErrNoSecret means TURN is enabled without a shared secret; REST
	// credentials cannot be checked without one.
	ErrNoSecret = errors.New("turn: shared secret is required")
	// ErrNoRelayAddress means neither PublicIP nor a concrete
	// RelayBindAddress was given, so there is no address to advertise to
	// clients as their relayed address.
	ErrNoRelayAddress = errors.New("turn: PublicIP or a specific RelayBindAddress is required")
	// ErrBadConfig wraps any other invalid configuration value.
	ErrBadConfig = errors.New("turn: invalid configuration")

	// ErrMalformedUsername means a TURN username is not in the REST form
	// "expiry-unix-time[:user-id]".
	ErrMalformedUsername = errors.New("turn: malformed REST username")
	// ErrExpired means the REST username's expiry time has passed.
	ErrExpired = errors.New("turn: credentials expired")
	// ErrBadPassword means the password is not the HMAC of the username.
	ErrBadPassword = errors.New("turn: wrong password")

	// ErrQuota means a per-user or total allocation quota is reached.
	ErrQuota = errors.New("turn: allocation quota reached")
	// ErrTCPRelay means a client asked for an RFC 6062 TCP relay, which we
	// do not offer.
	ErrTCPRelay = errors.New("turn: TCP relay allocations are not supported")
	// ErrAddressFamily means the client asked for a relay in an address
	// family the relay address is not in.
	ErrAddressFamily = errors.New("turn: requested address family not available")
	// ErrClosed means the server is shutting down.
	ErrClosed = errors.New("turn: server closed")
)
