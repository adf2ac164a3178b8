package turn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pturn "github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// Server is a running TURN/STUN server.
type Server struct {
	s     settings
	log   *zap.Logger
	pion  *pturn.Server
	gen   *relayGenerator
	stats *counters
	addrs Addrs

	tlsPorts map[int]bool // to tell TLS from plain TCP clients in logs

	closeOnce sync.Once
	closeErr  error
}

// Addrs are the addresses the server listens on, by transport.
type Addrs struct {
	UDP, TCP, TLS []net.Addr
}

// Stats are counters since the server started.
type Stats struct {
	Allocations      int    // relay sockets open now
	AllocationsTotal uint64 // relay sockets opened
	BytesToPeers     uint64 // relayed client → peer, by allocations that have ended
	BytesToClients   uint64 // relayed peer → client, by allocations that have ended
	QuotaRejected    uint64 // allocations refused by a quota
	PeersRefused     uint64 // permissions and channel binds refused by the relay policy
	AuthRejected     uint64 // malformed or expired usernames, wrong passwords, wrong realm
	BadRequests      uint64 // requests pion could not process (malformed, no allocation, ...)
}

type counters struct {
	allocations, bytesToPeers, bytesToClients              atomic.Uint64
	quotaRejected, peersRefused, authRejected, badRequests atomic.Uint64
}

// New validates cfg, opens the configured sockets and starts serving.
func New(cfg Config) (*Server, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	srv := &Server{
		s:        s,
		log:      s.Logger.Named("turn"),
		stats:    &counters{},
		tlsPorts: make(map[int]bool),
	}
	srv.gen = &relayGenerator{
		bindIP:      s.bindIP,
		advertiseIP: s.advertiseIP,
		portMin:     s.RelayPortMin,
		portMax:     s.RelayPortMax,
		maxLifetime: s.MaxLifetime,
		quota:       newQuota(s.PerUserQuota, s.TotalQuota),
		stats:       srv.stats,
		log:         srv.log,
		live:        make(map[string]*relayConn),
	}

	own, err := openSockets(s, srv.log)
	if err != nil {
		return nil, err
	}
	all := own.plus(s.PacketConns, s.Listeners, s.TLSListeners, s.lifetime, srv.log)

	pc := pturn.ServerConfig{
		Realm:              s.Realm,
		AuthHandler:        srv.authenticate,
		QuotaHandler:       srv.checkQuota,
		EventHandler:       srv.events(),
		AllocationLifetime: s.lifetime,
		LoggerFactory:      pionLoggerFactory{log: srv.log},
		// Relays exist in one family only, that of the relay address.
		// Without this, pion answers a client that reached a dual-stack
		// listener over IPv6 and did not name a family with an IPv6 relay,
		// which we cannot open; RFC 6156's default (IPv4), as in coturn,
		// gives such clients a working IPv4 relay.
		StrictAddressFamily: s.advertiseIP.Is4(),
	}
	for _, c := range all.udp {
		srv.addrs.UDP = append(srv.addrs.UDP, c.LocalAddr())
		pc.PacketConnConfigs = append(pc.PacketConnConfigs, pturn.PacketConnConfig{
			PacketConn: c, RelayAddressGenerator: srv.gen, PermissionHandler: srv.permit,
		})
	}
	for _, l := range append(all.tcp, all.tls...) {
		pc.ListenerConfigs = append(pc.ListenerConfigs, pturn.ListenerConfig{
			Listener: l, RelayAddressGenerator: srv.gen, PermissionHandler: srv.permit,
		})
	}
	for _, l := range all.tcp {
		srv.addrs.TCP = append(srv.addrs.TCP, l.Addr())
	}
	for _, l := range all.tls {
		srv.addrs.TLS = append(srv.addrs.TLS, l.Addr())
		srv.tlsPorts[portOf(l.Addr())] = true
	}

	srv.pion, err = pturn.NewServer(pc)
	if err != nil {
		own.close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	srv.log.Info("turn server started",
		zap.String("realm", s.Realm),
		zap.Stringers("udp", srv.addrs.UDP), zap.Stringers("tcp", srv.addrs.TCP), zap.Stringers("tls", srv.addrs.TLS),
		zap.Stringer("relay_ip", s.advertiseIP), zap.Stringer("relay_bind", s.bindIP),
		zap.Int("user_quota", s.PerUserQuota), zap.Int("total_quota", s.TotalQuota),
		zap.Int("allowed_peer_prefixes", len(s.allowed)))
	return srv, nil
}

// Close stops the server: new allocations are refused, every relay is closed
// (and its totals logged), then the listening sockets, including those passed
// in Config, and the TCP/TLS connections accepted on them are closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.gen.shutdown()
		s.closeErr = s.pion.Close()
		st := s.Stats()
		s.log.Info("turn server closed",
			zap.Uint64("allocations_total", st.AllocationsTotal),
			zap.Uint64("bytes_to_peers", st.BytesToPeers), zap.Uint64("bytes_to_clients", st.BytesToClients),
			zap.Uint64("quota_rejected", st.QuotaRejected), zap.Uint64("peers_refused", st.PeersRefused),
			zap.Uint64("auth_rejected", st.AuthRejected), zap.Uint64("bad_requests", st.BadRequests))
	})
	return s.closeErr
}

// Addrs returns the addresses the server listens on; with port 0 in the
// configuration, this is how to learn the ports.
func (s *Server) Addrs() Addrs { return s.addrs }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := s.stats
	return Stats{
		Allocations:      s.gen.quota.count(),
		AllocationsTotal: c.allocations.Load(),
		BytesToPeers:     c.bytesToPeers.Load(),
		BytesToClients:   c.bytesToClients.Load(),
		QuotaRejected:    c.quotaRejected.Load(),
		PeersRefused:     c.peersRefused.Load(),
		AuthRejected:     c.authRejected.Load(),
		BadRequests:      c.badRequests.Load(),
	}
}

// URLs returns the ICE URLs that reach this server at host (a DNS name, which
// turns: needs to match the certificate, or an IP address); empty host means
// the advertised relay IP. Ports are the ones actually bound, the first of
// each transport. Use them as ICEConfig.URLs with Config.Secret.
func (s *Server) URLs(host string) []string {
	if host == "" {
		host = s.s.advertiseIP.String()
	}
	hp := func(a net.Addr) string { return net.JoinHostPort(host, strconv.Itoa(portOf(a))) }
	var urls []string
	if len(s.addrs.UDP) > 0 {
		urls = append(urls, "stun:"+hp(s.addrs.UDP[0]), "turn:"+hp(s.addrs.UDP[0])+"?transport=udp")
	}
	if len(s.addrs.TCP) > 0 {
		urls = append(urls, "turn:"+hp(s.addrs.TCP[0])+"?transport=tcp")
	}
	if len(s.addrs.TLS) > 0 {
		urls = append(urls, "turns:"+hp(s.addrs.TLS[0])+"?transport=tcp")
	}
	return urls
}

// ICEConfig returns the ICEConfig for clients of this server at host (see
// URLs), with credentials valid for ttl (zero means DefaultCredentialTTL).
func (s *Server) ICEConfig(host string, ttl time.Duration) ICEConfig {
	return ICEConfig{URLs: s.URLs(host), Secret: s.s.Secret, TTL: ttl}
}

// authenticate is pion's AuthHandler: it accepts REST usernames that parse
// and have not expired, and returns the long-term key pion checks the
// request's MESSAGE-INTEGRITY with. The user ID (not the whole username)
// goes back to pion, so quotas count per user across credential renewals.
func (s *Server) authenticate(ra *pturn.RequestAttributes) (userID string, key []byte, ok bool) {
	reject := func(reason string, err error) (string, []byte, bool) {
		s.stats.authRejected.Add(1)
		s.log.Info("turn credentials refused", zap.String("reason", reason), zap.Error(err),
			zap.String("username", ra.Username), zap.Stringer("client", ra.SrcAddr), zap.Stringer("method", ra.Method))
		return "", nil, false
	}
	if ra.Realm != s.s.Realm {
		return reject("realm", fmt.Errorf("client realm %q, server realm %q", ra.Realm, s.s.Realm))
	}
	userID, err := checkUsername(ra.Username, time.Now())
	switch {
	case errors.Is(err, ErrExpired):
		return reject("expired", err)
	case err != nil:
		return reject("malformed", err)
	}
	return userID, authKey(s.s.Secret, s.s.Realm, ra.Username), true
}

// checkQuota is pion's QuotaHandler. It only peeks; the relay generator
// takes the slot (see quota).
func (s *Server) checkQuota(userID, _ string, client net.Addr) bool {
	if s.gen.quota.allowed(userID) {
		return true
	}
	s.stats.quotaRejected.Add(1)
	s.log.Info("turn allocation quota reached", zap.String("user", userID), zap.Stringer("client", client))
	return false
}

// permit is pion's PermissionHandler, called for CreatePermission and
// ChannelBind: the relay policy.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	addr, ok := netip.AddrFromSlice(peer)
	if ok && peerAllowed(addr, s.s.allowed) {
		return true
	}
	s.stats.peersRefused.Add(1)
	s.log.Info("turn peer refused by relay policy", zap.Stringer("client", client), zap.Stringer("peer", peer))
	return false
}

func (s *Server) events() pturn.EventHandler {
	return pturn.EventHandler{
		// Called after pion checked MESSAGE-INTEGRITY with our key: a false
		// verdict is a wrong password (or a client bug).
		OnAuth: func(src, _ net.Addr, _, username, _, method string, verdict bool) {
			if !verdict {
				s.stats.authRejected.Add(1)
				s.log.Info("turn credentials refused", zap.String("reason", "password"),
					zap.String("username", username), zap.Stringer("client", src), zap.String("method", method))
			}
		},
		OnAllocationCreated: func(src, dst net.Addr, _, userID, _ string, relay net.Addr, _ int) {
			transport := s.transport(dst)
			s.gen.noteClient(relay, src, transport)
			s.log.Info("turn allocation created", zap.String("user", userID), zap.Stringer("client", src),
				zap.String("transport", transport), zap.Stringer("relay", relay))
		},
		// Malformed packets, requests without an allocation and the like:
		// whoever sends them controls the rate, so count and keep it at Debug.
		OnAllocationError: func(src, _ net.Addr, _, message string) {
			s.stats.badRequests.Add(1)
			s.log.Debug("turn request failed", zap.Stringer("client", src), zap.String("error", message))
		},
	}
}

// transport names the client's transport from the server side of its
// 5-tuple. pion reports "UDP" for every allocation.
func (s *Server) transport(local net.Addr) string {
	if local == nil || local.Network() != "tcp" {
		return "udp"
	}
	if s.tlsPorts[portOf(local)] {
		return "tls"
	}
	return "tcp"
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.Port
	case *net.TCPAddr:
		return a.Port
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return int(ap.Port())
	}
	return 0
}
