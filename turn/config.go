package turn

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// DefaultRealm is used when Config.Realm is empty.
const DefaultRealm = "consult"

// defaultAllocationLifetime is pion's and RFC 8656's default.
const defaultAllocationLifetime = 10 * time.Minute

// Config configures the embedded TURN/STUN server. The zero value of every
// optional field means "off" or "no limit", as in coturn.
type Config struct {
	// Realm is the TURN realm (coturn: realm). Clients learn it from the
	// server; it is part of the long-term key. Empty means DefaultRealm.
	Realm string
	// Secret is the shared secret of the TURN REST scheme (coturn:
	// static-auth-secret). Required.
	Secret string

	// ListenUDP, ListenTCP and ListenTLS are addresses to listen on, e.g.
	// ":3478", ":3478" and ":5349". Empty means that transport is off.
	ListenUDP string
	ListenTCP string
	ListenTLS string
	// TLSCertFile and TLSKeyFile are PEM files for ListenTLS. They are
	// re-read when they change on disk, so certificate renewal needs no
	// restart.
	TLSCertFile string
	TLSKeyFile  string

	// PacketConns, Listeners and TLSListeners are sockets the caller opened
	// itself (for socket activation, tests, or listening on several
	// addresses), served in addition to the Listen* addresses. TLSListeners
	// must already speak TLS. The server closes them all on Close, as pion
	// does; if New fails they are left open.
	PacketConns  []net.PacketConn
	Listeners    []net.Listener
	TLSListeners []net.Listener

	// PublicIP is the relay address advertised to clients (coturn:
	// external-ip), for servers behind a 1:1 NAT such as a cloud instance
	// with an elastic IP. Relay sockets are still bound to RelayBindAddress.
	PublicIP netip.Addr
	// RelayBindAddress is the local address relay sockets are bound to
	// (coturn: relay-ip). Unset means all addresses of PublicIP's family.
	// When PublicIP is unset this must be a concrete address, which is then
	// also the one advertised.
	RelayBindAddress netip.Addr
	// RelayPortMin and RelayPortMax restrict relay ports to a range, for
	// firewalls (coturn: min-port, max-port). Both zero means any port.
	RelayPortMin int
	RelayPortMax int

	// AllowedPeers are peer networks the relay may reach even though the
	// default policy refuses them (coturn: allowed-peer-ip), e.g. the LAN of
	// an on-premises deployment. See peerAllowed for what is refused.
	AllowedPeers []netip.Prefix

	// PerUserQuota caps simultaneous allocations per user ID (coturn:
	// user-quota); TotalQuota caps them for the whole server (coturn:
	// total-quota). Zero means no limit. A browser makes one allocation per
	// TURN URL per peer connection, and more after ICE restarts.
	PerUserQuota int
	TotalQuota   int

	// AllocationLifetime is the lifetime granted when a client does not ask
	// for one; clients refresh before it runs out. Zero means 10 minutes.
	// (pion grants any lifetime below one hour that a client asks for.)
	AllocationLifetime time.Duration
	// MaxLifetime caps the total age of an allocation however often it is
	// refreshed; the relay is closed when it is reached. Zero means no cap:
	// the REST credential's expiry already bounds an allocation, because
	// Refresh requests with expired credentials are refused.
	MaxLifetime time.Duration

	// Logger receives structured logs; nil means no logging.
	Logger *zap.Logger
}

// settings is the validated form of Config that the server runs with.
type settings struct {
	Config
	bindIP, advertiseIP netip.Addr
	allowed             []netip.Prefix
	lifetime            time.Duration
}

func (c Config) settings() (settings, error) {
	s := settings{Config: c, lifetime: c.AllocationLifetime}
	if s.Realm == "" {
		s.Realm = DefaultRealm
	}
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	if s.lifetime == 0 {
		s.lifetime = defaultAllocationLifetime
	}
	if s.Secret == "" {
		return s, ErrNoSecret
	}
	if s.ListenUDP == "" && s.ListenTCP == "" && s.ListenTLS == "" &&
		len(s.PacketConns)+len(s.Listeners)+len(s.TLSListeners) == 0 {
		return s, ErrNoListeners
	}
	if (s.ListenTLS != "") != (s.TLSCertFile != "" && s.TLSKeyFile != "") {
		return s, fmt.Errorf("%w: ListenTLS needs TLSCertFile and TLSKeyFile, and they need ListenTLS", ErrBadConfig)
	}
	if err := s.relayAddresses(); err != nil {
		return s, err
	}
	if s.RelayPortMin != 0 || s.RelayPortMax != 0 {
		if s.RelayPortMin < 1 || s.RelayPortMax > 65535 || s.RelayPortMin > s.RelayPortMax {
			return s, fmt.Errorf("%w: relay port range %d-%d", ErrBadConfig, s.RelayPortMin, s.RelayPortMax)
		}
	}
	if s.PerUserQuota < 0 || s.TotalQuota < 0 || s.lifetime < 0 || s.MaxLifetime < 0 {
		return s, fmt.Errorf("%w: quotas and lifetimes must not be negative", ErrBadConfig)
	}
	s.allowed = normalizePrefixes(s.AllowedPeers)
	return s, nil
}

// relayAddresses works out where relay sockets bind and what address clients
// are told, refusing combinations that would advertise an address nobody
// can send to (0.0.0.0) or mix address families.
func (s *settings) relayAddresses() error {
	pub, bind := s.PublicIP.Unmap(), s.RelayBindAddress.Unmap()
	switch {
	case pub.IsValid() && pub.IsUnspecified():
		return fmt.Errorf("%w: PublicIP %s is unspecified", ErrBadConfig, pub)
	case pub.IsValid() && !bind.IsValid():
		bind = netip.IPv4Unspecified()
		if pub.Is6() {
			bind = netip.IPv6Unspecified()
		}
	case !pub.IsValid() && (!bind.IsValid() || bind.IsUnspecified()):
		return ErrNoRelayAddress
	case !pub.IsValid():
		pub = bind
	}
	if pub.Is4() != bind.Is4() {
		return fmt.Errorf("%w: PublicIP %s and RelayBindAddress %s differ in address family", ErrBadConfig, pub, bind)
	}
	s.advertiseIP, s.bindIP = pub, bind
	return nil
}
