package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
	"consult/turn"
)

// turnFlags are the TURN settings: the embedded server (on by default) or
// an external coturn sharing the secret. docs/turn.md explains both.
type turnFlags struct {
	enabled                  bool
	secret, realm            string
	udp, tcp, tls            string
	tlsCert, tlsKey          string
	publicIP, relayIP, host  string
	allowPeers, externalURLs string
	userQuota, totalQuota    int
	maxLifetime, ttl         time.Duration
}

func (t *turnFlags) register(st *settings) {
	str, boolean := st.str, st.boolean
	boolean(&t.enabled, "turn", true, "run the embedded TURN/STUN server")
	st.secret(&t.secret, "turn-secret", "TURN REST shared secret (coturn static-auth-secret); random when empty")
	str(&t.realm, "turn-realm", turn.DefaultRealm, "TURN realm")
	str(&t.udp, "turn-udp", ":3478", "TURN/STUN over UDP; empty is off")
	str(&t.tcp, "turn-tcp", ":3478", "TURN over TCP; empty is off")
	str(&t.tls, "turn-tls", "", "TURN over TLS (turns:) address, e.g. :5349; needs -turn-tls-cert/-key")
	str(&t.tlsCert, "turn-tls-cert", "", "PEM certificate for -turn-tls")
	str(&t.tlsKey, "turn-tls-key", "", "PEM key for -turn-tls")
	str(&t.publicIP, "turn-public-ip", "", "relay address told to clients (default: first IPv4 of -public-ip)")
	str(&t.relayIP, "turn-relay-ip", "", "address relay sockets bind to (default: the machine's first IPv4)")
	str(&t.host, "turn-host", "", "host name in TURN URLs (default: the host the client used)")
	str(&t.allowPeers, "turn-allow-peers", "", "CIDRs the relay may reach despite the private-address policy (LANs)")
	str(&t.externalURLs, "turn-external-urls", "", "use an external coturn: its turn:/stun: URLs, comma-separated")
	st.integer(&t.userQuota, "turn-user-quota", 10, "simultaneous allocations per user (0: no limit)")
	st.integer(&t.totalQuota, "turn-total-quota", 400, "simultaneous allocations in all (0: no limit); with -max-live 200, two each")
	st.duration(&t.maxLifetime, "turn-max-lifetime", 0, "cap on an allocation's age (0: none)")
	st.duration(&t.ttl, "turn-ttl", 12*time.Hour, "TURN credential lifetime; must outlast the longest call")
}

// iceSource hands out ICE servers for a join.
type iceSource func(identity, host string) []protocol.ICEServer

// startTURN starts the embedded server or configures the external one. It
// returns the ICE servers function, the embedded server's counters (nil
// without one) and a closer.
func startTURN(t turnFlags, publicIPs []string, log *zap.Logger) (iceSource, func() turn.Stats, func(), error) {
	none := func(string, string) []protocol.ICEServer { return []protocol.ICEServer{} }
	on, ttl := t.enabled, t.ttl
	if ttl <= 0 || t.userQuota < 0 || t.totalQuota < 0 || t.maxLifetime < 0 {
		return nil, nil, nil, fmt.Errorf("-turn-ttl must be positive, and the TURN quotas and -turn-max-lifetime not negative")
	}
	if ext := splitList(t.externalURLs); len(ext) > 0 {
		cfg := turn.ICEConfig{URLs: ext, Secret: t.secret, TTL: ttl}
		if err := cfg.Validate(); err != nil {
			return nil, nil, nil, err
		}
		log.Info("using an external TURN server", zap.Strings("urls", ext))
		return convert(func(id, _ string) []turn.ICEServer { return cfg.ICEServers(id, time.Now()) }), nil, func() {}, nil
	}
	if !on {
		return none, nil, func() {}, nil
	}
	cfg := turn.Config{Realm: t.realm, Secret: t.secret, ListenUDP: t.udp, ListenTCP: t.tcp, ListenTLS: t.tls,
		TLSCertFile: t.tlsCert, TLSKeyFile: t.tlsKey, Logger: log}
	if cfg.Secret == "" {
		var b [24]byte
		_, _ = rand.Read(b[:])
		cfg.Secret = base64.RawURLEncoding.EncodeToString(b[:])
		log.Info("TURN secret generated for this run; set -turn-secret to share it with other servers")
	}
	cfg.PerUserQuota, cfg.TotalQuota, cfg.MaxLifetime = t.userQuota, t.totalQuota, t.maxLifetime
	var err error
	pub := t.publicIP
	if pub == "" {
		for _, ip := range publicIPs {
			if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
				pub = ip
				break
			}
		}
	}
	if pub != "" {
		if cfg.PublicIP, err = netip.ParseAddr(pub); err != nil {
			return nil, nil, nil, fmt.Errorf("-turn-public-ip: %v", err)
		}
	}
	relay := t.relayIP
	if relay == "" && pub == "" {
		relay = firstIPv4()
	}
	if relay != "" {
		if cfg.RelayBindAddress, err = netip.ParseAddr(relay); err != nil {
			return nil, nil, nil, fmt.Errorf("-turn-relay-ip: %v", err)
		}
	}
	for _, c := range splitList(t.allowPeers) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("-turn-allow-peers: %v", err)
		}
		cfg.AllowedPeers = append(cfg.AllowedPeers, p)
	}
	srv, err := turn.New(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TURN server: %w", err)
	}
	log.Info("TURN/STUN server listening", zap.String("udp", t.udp), zap.String("tcp", t.tcp),
		zap.String("tls", t.tls), zap.Stringer("relay", cfg.RelayBindAddress))
	return convert(func(id, host string) []turn.ICEServer {
		if t.host != "" {
			host = t.host
		}
		return srv.ICEConfig(host, ttl).ICEServers(id, time.Now())
	}), srv.Stats, func() { _ = srv.Close() }, nil
}

func convert(f func(id, host string) []turn.ICEServer) iceSource {
	return func(id, host string) []protocol.ICEServer {
		out := []protocol.ICEServer{}
		for _, s := range f(id, host) {
			out = append(out, protocol.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
		return out
	}
}

// firstIPv4 is the machine's first non-loopback IPv4 address, or loopback
// when it has none, for relay sockets when no public IP is configured.
func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
