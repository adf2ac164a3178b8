// Package sfu terminates participants' PeerConnections and forwards RTP
// between the members of a room without decoding it. It knows nothing of
// signaling: a caller hands it SDP and ICE candidates and receives offers,
// candidates and track events through callbacks.
//
// Each participant has two PeerConnections: one it publishes on (the
// client offers, the server answers) and one it receives on (the server
// offers, the client answers). With a single offerer per connection there
// is no glare however quickly tracks come and go.
package sfu

import (
	"fmt"
	"net"
	"sync"
	"time"

	"consult/sfu/internal/nackgen"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Config sets up an SFU. Zero values take the documented defaults.
type Config struct {
	Logger *zap.Logger
	// KeyframeInterval is the least time between two keyframe requests
	// sent to a publisher for one track (default 500 ms). Requests within
	// it are merged into one sent when it ends.
	KeyframeInterval time.Duration
	// KeepVideo turns audio first off (allocate.go): video is never
	// paused for a weak downlink.
	KeepVideo bool
	ICE       ICEConfig
	// OnLinkReport, when set, is called with each receiver report a
	// subscriber sends about a track (the track's kind, and its link as
	// updated by the report), on the goroutine reading that subscriber's
	// RTCP: it must not block. For monitoring.
	OnLinkReport func(kind string, l Link)
	// OnFirstMedia, when set, is called once per participant with the
	// time from its Join to the first packet sent to it, on a forwarding
	// goroutine: it must not block.
	OnFirstMedia func(wait time.Duration)
	// OnSpeakers, when set, is called with a room's speakers (speaker.go)
	// each time they change, from one goroutine for the whole SFU, with
	// no lock of the SFU's held: it must not block. Without it, no
	// speaker detection runs.
	OnSpeakers func(room string, s Speakers)
}

// ICEConfig chooses how the server's PeerConnections gather candidates.
type ICEConfig struct {
	// UDPMux, when set, carries every PeerConnection over this one socket,
	// so a firewall or container needs one UDP port. The caller owns it.
	UDPMux net.PacketConn
	// TCPListener, when set, offers ICE over TCP on it as well, for
	// networks that block UDP. The caller owns it.
	TCPListener net.Listener
	// PortMin/PortMax bound ephemeral UDP ports when UDPMux is nil.
	PortMin, PortMax uint16
	// PublicIPs replace the host candidates' addresses (1:1 NAT, as on
	// cloud hosts).
	PublicIPs []string
	// Interfaces, when not empty, limits gathering to these interfaces.
	Interfaces []string
	// IncludeLoopback gathers loopback candidates (tests, one-machine use).
	IncludeLoopback bool
	// DisconnectedTimeout is how long a transport may be silent before it
	// counts as down (2 s; Events.MediaState reports it, and the caller
	// restarts ICE). Keepalive is how often the server sends ICE checks on
	// an idle transport (500 ms), so a live but quiet client is never
	// taken for a dead one. FailedTimeout is how long after that pion
	// gives the transport up (25 s): longer than a resume grace period, so
	// a restart, not pion, decides.
	DisconnectedTimeout, FailedTimeout, Keepalive time.Duration
	// SettingEngine, when set, is used as the base (tests pass one wired
	// to a virtual network).
	SettingEngine *webrtc.SettingEngine
}

// SFU is the registry of rooms.
type SFU struct {
	cfg   Config
	log   *zap.Logger
	api   *webrtc.API
	nacks *nackgen.Factory
	est   *estimators
	alloc *allocator
	talk  *speakerWatch // nil without Config.OnSpeakers
	// retired holds the counts of tracks that have ended (totals.go).
	retired totals

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool
}

// New builds the WebRTC stack shared by all PeerConnections.
func New(cfg Config) (*SFU, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.KeyframeInterval <= 0 {
		cfg.KeyframeInterval = 500 * time.Millisecond
	}
	nacks := nackgen.New()
	est, estFactory, err := newEstimators()
	if err != nil {
		return nil, err
	}
	// One setting engine for both: it holds the ICE muxes, and two muxes
	// reading one socket would split its packets between them.
	se, err := newSettingEngine(cfg.ICE)
	if err != nil {
		return nil, err
	}
	api, err := newAPI(se, nacks, estFactory)
	if err != nil {
		return nil, err
	}
	s := &SFU{cfg: cfg, log: cfg.Logger, api: api, nacks: nacks, est: est, rooms: map[string]*Room{}}
	s.alloc = newAllocator(s)
	if !cfg.KeepVideo {
		go s.alloc.run()
	}
	if cfg.OnSpeakers != nil {
		s.talk = newSpeakerWatch(s, cfg.OnSpeakers)
		go s.talk.run()
	}
	return s, nil
}

func newAPI(se webrtc.SettingEngine, nacks *nackgen.Factory, est interceptor.Factory) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, err
	}
	if err := registerRTX(m); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	// Towards publishers: NACKs for lost packets, receiver reports and
	// transport-wide congestion feedback. Towards subscribers: sender
	// reports. Subscribers' NACKs are answered by the down-tracks from the
	// shared packet cache, so pion's per-stream responder is not used. The
	// NACKs towards publishers are bounded (nackgen), unlike pion's.
	ir.Add(nacks)
	if err := addReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, err
	}
	// Towards subscribers: transport-wide sequence numbers on every packet
	// and an estimator fed by their feedback (estimate.go). The stamping
	// interceptor is added last so that it runs first on a write, before
	// the estimator records the packet.
	ir.Add(est)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)), nil
}

// newSettingEngine is pion's network set-up from c: timeouts, ports or
// muxes, addresses and interfaces.
func newSettingEngine(c ICEConfig) (webrtc.SettingEngine, error) {
	se := webrtc.SettingEngine{}
	if c.SettingEngine != nil {
		se = *c.SettingEngine
	}
	disc, failed, keep := c.DisconnectedTimeout, c.FailedTimeout, c.Keepalive
	if disc <= 0 {
		disc = 2 * time.Second
	}
	if failed <= 0 {
		failed = 25 * time.Second
	}
	if keep <= 0 {
		keep = min(500*time.Millisecond, disc/2)
	}
	se.SetICETimeouts(disc, failed, keep)
	// A restarted transport keeps checking its candidate pairs (every
	// 200 ms) for as long as pion keeps it, instead of giving a pair up
	// after seven unanswered checks (1.4 s): a network that comes back
	// after a 15 s blackout is found within a check or two.
	se.SetICEMaxBindingRequests(maxBindingRequests(failed))
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(c.IncludeLoopback)
	if c.UDPMux != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, c.UDPMux))
	} else if c.PortMin > 0 && c.PortMax >= c.PortMin {
		if err := se.SetEphemeralUDPPortRange(c.PortMin, c.PortMax); err != nil {
			return se, fmt.Errorf("sfu: ICE port range: %w", err)
		}
	}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if c.TCPListener != nil {
		se.SetICETCPMux(webrtc.NewICETCPMux(nil, c.TCPListener, 64))
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if len(c.PublicIPs) > 0 {
		// Host candidates carry the public address instead of the private one.
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: c.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			return se, fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	if len(c.Interfaces) > 0 {
		keep := map[string]bool{}
		for _, name := range c.Interfaces {
			keep[name] = true
		}
		se.SetInterfaceFilter(func(name string) bool { return keep[name] })
	}
	return se, nil
}

// maxBindingRequests is how many checks of 200 ms fill d.
func maxBindingRequests(d time.Duration) uint16 {
	return uint16(min(d/(200*time.Millisecond), 1000))
}

// Join adds a participant to a room, creating the room on first use. The
// participant receives every track already published there.
func (s *SFU) Join(room string, p ParticipantParams) (*Participant, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	r := s.rooms[room]
	if r == nil {
		r = newRoom(s, room)
		s.rooms[room] = r
	}
	s.mu.Unlock()
	return r.join(p)
}

// dropRoomIfEmpty forgets a room once its last participant has left.
func (s *SFU) dropRoomIfEmpty(r *Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] == r && r.empty() {
		delete(s.rooms, r.name)
	}
}

// Stats counts forwarding work, for metrics and tests.
type Stats struct {
	Rooms, Participants, Tracks int
	DownTracks                  int // tracks forwarded to subscribers and taps
	PacketsIn, PacketsOut       uint64
	BytesIn, BytesOut           uint64
	Dropped                     uint64
	// KeyframeRequests are PLIs sent to publishers; PLIsIn, the PLIs and
	// FIRs subscribers sent (several merge into one request).
	KeyframeRequests, PLIsIn uint64
	Retransmits              uint64
	// Towards publishers: NACK packets sent, packets asked for in them
	// (retries included), and lost packets given up on.
	NACKsSent, NACKedPackets, LostUnrepaired uint64
}

// roomList is the rooms now, to visit without s.mu held.
func (s *SFU) roomList() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// Stats adds up the counters of every room.
func (s *SFU) Stats() Stats {
	rooms := s.roomList()
	n := s.nacks.Counters()
	st := Stats{Rooms: len(rooms), NACKsSent: n.NACKs, NACKedPackets: n.Asked, LostUnrepaired: n.GaveUp}
	st.addCounts(s.retired.load())
	for _, r := range rooms {
		r.addStats(&st)
	}
	return st
}

// Close ends every participant of every room.
func (s *SFU) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.alloc.done)
		if s.talk != nil {
			close(s.talk.done)
		}
	}
	s.closed = true
	rooms := s.rooms
	s.rooms = map[string]*Room{}
	s.mu.Unlock()
	if s.talk != nil {
		<-s.talk.exited // no speakers reported after Close
	}
	for _, r := range rooms {
		for _, p := range r.snapshot() {
			p.Close()
		}
	}
	return nil
}
