package signaling_test

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

// world is an in-process internet (pion vnet): a WAN with the SFU and a
// STUN server on public addresses, and LANs behind NATs for clients.
// Signaling stays on real loopback; only media uses the virtual network.
type world struct {
	t   *testing.T
	wan *vnet.Router
	e   *env
	// handover bounds a path hand-over (handover.go) and deadline a
	// direct attempt. Both are long by default: the tests that expect a
	// hand-over or a direct call to succeed check that the product gets
	// there, which a busy machine may take seconds to do; a test of the
	// bounds themselves sets them short.
	handover, deadline time.Duration
	grace              time.Duration // the resume grace period; 0: the default
	keepVideo          bool          // audio first off (sfu.Config.KeepVideo)
}

const (
	sfuIP  = "1.2.3.4"
	stunIP = "1.2.3.5"
)

var (
	fullCone  = &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointIndependent}
	symmetric = &vnet.NATType{MappingBehavior: vnet.EndpointAddrPortDependent, FilteringBehavior: vnet.EndpointAddrPortDependent}
)

// newWorld builds the WAN, runs setup (which adds LANs and may change the
// world's settings), then starts the server on it.
func newWorld(t *testing.T, setup ...func(w *world)) *world {
	t.Helper()
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "1.2.3.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, wan: wan, handover: 30 * time.Second, deadline: 15 * time.Second}
	sfuNet := w.host(wan, sfuIP)
	stunNet := w.host(wan, stunIP)
	for _, f := range setup {
		f(w)
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })
	go serveSTUN(t, stunNet)
	se := &webrtc.SettingEngine{}
	se.SetNet(sfuNet)
	w.e = startServer(t, func(c *signaling.Config, s *sfu.Config) {
		s.ICE = sfu.ICEConfig{SettingEngine: se}
		c.ICEServers = func(string, string) []protocol.ICEServer {
			return []protocol.ICEServer{{URLs: []string{"stun:" + stunIP + ":3478"}}}
		}
		c.P2P.Deadline = w.deadline
		c.P2P.HandoverTimeout = w.handover
		c.ResumeGrace = w.grace
		s.KeepVideo = w.keepVideo
	})
	return w
}

func (w *world) host(r *vnet.Router, ip string) *vnet.Net {
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := r.AddNet(n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// lan adds a LAN behind a NAT to the WAN.
func (w *world) lan(cidr string, nat *vnet.NATType) *vnet.Router {
	r, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: cidr, NATType: nat, LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.wan.AddRouter(r); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// serveSTUN answers binding requests: all the direct attempt needs.
func serveSTUN(t *testing.T, n *vnet.Net) {
	conn, err := n.ListenPacket("udp4", stunIP+":3478")
	if err != nil {
		t.Error(err)
		return
	}
	t.Cleanup(func() { _ = conn.Close() })
	buf := make([]byte, 1500)
	for {
		k, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:k]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		ua := from.(*net.UDPAddr)
		resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: ua.IP, Port: ua.Port}, stun.Fingerprint)
		if err == nil {
			_, _ = conn.WriteTo(resp.Raw, from)
		}
	}
}

// p2pPeer is a p2p-capable client on a vnet host that records when the
// peer's video arrives, on either path.
type p2pPeer struct {
	*peer
	mu       sync.Mutex
	arrivals []time.Time
}

func (w *world) join(t *testing.T, n *vnet.Net, name string) *p2pPeer {
	t.Helper()
	pp := w.joinQuiet(t, n, name)
	startPublisher(t, pp.peer)
	return pp
}

// joinQuiet joins live and publishes nothing.
func (w *world) joinQuiet(t *testing.T, n *vnet.Net, name string) *p2pPeer {
	t.Helper()
	se := &webrtc.SettingEngine{}
	se.SetNet(n)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api, err := client.DefaultAPI(se)
	if err != nil {
		t.Fatal(err)
	}
	pp := &p2pPeer{}
	p := &peer{t: t, received: map[string]*webrtc.TrackRemote{}, trackCh: make(chan *webrtc.TrackRemote, 16),
		keyReq: make(chan struct{}, 1)}
	c, err := client.Dial(ctxT(t, 5*time.Second), client.Config{URL: w.e.url, API: api, P2P: true,
		OnKeyframeRequest: p.onKeyframeRequest,
		OnTrack: func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if r.Kind() != webrtc.RTPCodecTypeVideo {
				return
			}
			go func() {
				for {
					if _, _, err := r.ReadRTP(); err != nil {
						return
					}
					pp.mu.Lock()
					pp.arrivals = append(pp.arrivals, time.Now())
					pp.mu.Unlock()
				}
			}()
		}})
	if err != nil {
		t.Fatal(err)
	}
	p.Client = c
	pp.peer = p
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "visit", Name: name, Live: true}); err != nil {
		t.Fatal(err)
	}
	return pp
}

// videoSince counts the peer's video packets received after t0.
func (pp *p2pPeer) videoSince(t0 time.Time) int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	n := 0
	for _, a := range pp.arrivals {
		if a.After(t0) {
			n++
		}
	}
	return n
}

// maxGap is the longest pause in the peer's video between from and to.
func (pp *p2pPeer) maxGap(from, to time.Time) time.Duration {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	var gap time.Duration
	last := from
	for _, a := range pp.arrivals {
		if a.Before(from) || a.After(to) {
			continue
		}
		gap = max(gap, a.Sub(last))
		last = a
	}
	return max(gap, to.Sub(last))
}

func (w *world) mode() string {
	for _, r := range w.e.sig.AllRooms() {
		if r.Room == "visit" {
			return r.Mode
		}
	}
	return ""
}

// awaitDirect waits until both peers' direct connections are up and the
// room is in p2p mode, and returns the selected pair's candidate types.
func (w *world) awaitDirect(t *testing.T, a, b *p2pPeer) (string, string) {
	t.Helper()
	waitUntil(t, "direct connection up", 20*time.Second, func() bool {
		for _, p := range []*p2pPeer{a, b} {
			pc := p.DirectPC()
			if pc == nil || pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
				return false
			}
		}
		return w.mode() == protocol.ModeP2P && w.e.sig.Stats().Successes != nil && len(w.e.sig.Stats().Successes) > 0
	})
	return client.SelectedPair(a.DirectPC())
}

func TestP2POnOneLANUsesHostCandidatesAndNoServerMedia(t *testing.T) {
	var lanHosts [2]*vnet.Net
	w := newWorld(t, func(w *world) {
		// vnet routes a LAN host's packets to its own NAT's public address
		// back in (hairpinning), which most home routers do not; a strict
		// NAT keeps the test to what a real LAN offers.
		lan := w.lan("10.0.1.0/24", symmetric)
		lanHosts[0], lanHosts[1] = w.host(lan, "10.0.1.2"), w.host(lan, "10.0.1.3")
	})
	a := w.join(t, lanHosts[0], "Doctor")
	b := w.join(t, lanHosts[1], "Patient")
	local, remote := w.awaitDirect(t, a, b)
	// The remote end may be learnt from a connectivity check (prflx)
	// before its candidate arrives; either way both ends must be the
	// hosts' own LAN addresses.
	la, ra := selectedAddrs(a.DirectPC())
	if local != "host" || remote != "host" && remote != "prflx" || la != "10.0.1.2" || ra != "10.0.1.3" {
		t.Fatalf("direct path %s %s / %s %s, want the two LAN host addresses", local, la, remote, ra)
	}
	now := time.Now()
	waitUntil(t, "video over the direct path", 10*time.Second, func() bool {
		return a.videoSince(now) > 20 && b.videoSince(now) > 20
	})
	if st := w.e.sfu.Stats(); st.PacketsIn != 0 || st.PacketsOut != 0 || st.Participants != 0 {
		t.Fatalf("the server carried media for a direct call: %+v", st)
	}
}

func TestP2PBehindConeNATsUsesServerReflexive(t *testing.T) {
	var hosts [2]*vnet.Net
	w := newWorld(t, func(w *world) {
		hosts[0] = w.host(w.lan("10.0.1.0/24", fullCone), "10.0.1.2")
		hosts[1] = w.host(w.lan("10.0.2.0/24", fullCone), "10.0.2.2")
	})
	a := w.join(t, hosts[0], "Doctor")
	b := w.join(t, hosts[1], "Patient")
	local, remote := w.awaitDirect(t, a, b)
	if local == "host" && remote == "host" || local == "relay" || remote == "relay" {
		t.Fatalf("direct path %s/%s, want a server-reflexive one", local, remote)
	}
	now := time.Now()
	waitUntil(t, "video over the direct path", 10*time.Second, func() bool {
		return a.videoSince(now) > 20 && b.videoSince(now) > 20
	})
	if st := w.e.sfu.Stats(); st.PacketsOut != 0 {
		t.Fatalf("the server forwarded media for a direct call: %+v", st)
	}
}

func TestP2PBehindSymmetricNATsFallsBackToTheSFU(t *testing.T) {
	var hosts [2]*vnet.Net
	w := newWorld(t, func(w *world) {
		hosts[0] = w.host(w.lan("10.0.1.0/24", symmetric), "10.0.1.2")
		hosts[1] = w.host(w.lan("10.0.2.0/24", symmetric), "10.0.2.2")
		w.deadline = 3 * time.Second
	})
	a := w.join(t, hosts[0], "Doctor")
	b := w.join(t, hosts[1], "Patient")
	waitUntil(t, "fallback to the SFU", 10*time.Second, func() bool { return w.mode() == protocol.ModeSFU })
	// The server times the attempt from its start to its verdict: the 3 s
	// deadline, or sooner if ICE gives up first; the rest is the machine.
	if st := w.e.sig.Stats(); st.FallbackMS > (3*time.Second + testenv.Scale(time.Second)).Milliseconds() {
		t.Fatalf("the attempt was given up only after %d ms, deadline 3 s", st.FallbackMS)
	}
	now := time.Now()
	waitUntil(t, "video through the SFU", 15*time.Second, func() bool {
		return a.videoSince(now) > 20 && b.videoSince(now) > 20 && w.e.sfu.Stats().PacketsOut > 0
	})
	if st := w.e.sig.Stats(); st.Fallbacks != 1 || st.Attempts != 1 {
		t.Fatalf("counters %+v", st)
	}
}

func TestThirdMemberMovesTheRoomToTheSFUAndBack(t *testing.T) {
	var hosts [3]*vnet.Net
	w := newWorld(t, func(w *world) {
		hosts[0] = w.host(w.lan("10.0.1.0/24", fullCone), "10.0.1.2")
		hosts[1] = w.host(w.lan("10.0.2.0/24", fullCone), "10.0.2.2")
		hosts[2] = w.host(w.lan("10.0.3.0/24", fullCone), "10.0.3.2")
	})
	a := w.join(t, hosts[0], "Doctor")
	b := w.join(t, hosts[1], "Patient")
	w.awaitDirect(t, a, b)
	settled := time.Now()
	waitUntil(t, "video over the direct path", 10*time.Second, func() bool {
		return a.videoSince(settled) > 20 && b.videoSince(settled) > 20
	})

	// (d) An interpreter joins: the room moves to the SFU before its media
	// starts, and the first two barely notice.
	switchAt := time.Now()
	c := w.join(t, hosts[2], "Interpreter")
	waitUntil(t, "room on the SFU with the direct connections closed", 20*time.Second, func() bool {
		return w.mode() == protocol.ModeSFU && a.DirectPC() == nil && b.DirectPC() == nil
	})
	waitUntil(t, "the interpreter sees both", 15*time.Second, func() bool { return c.videoSince(switchAt) > 40 })
	done := time.Now().Add(time.Second)
	waitUntil(t, "a second of SFU video", 5*time.Second, func() bool { return time.Now().After(done) })
	// The gaps are logged, not bounded: what the product controls is that
	// the old path stays until both sides receive on the new one, which the
	// hand-over counters below check; what is left of a gap is how fast
	// this machine runs the test's goroutines.
	for _, p := range []*p2pPeer{a, b} {
		t.Logf("%s: longest video gap across the switch to the SFU: %v", p.ID(), p.maxGap(switchAt, time.Now()))
	}
	if st := w.e.sig.Stats(); st.HandoverTimeouts != 0 {
		t.Fatalf("the hand-over to the SFU timed out: %+v", st)
	}

	// (e) Back to two: the room returns to the direct path.
	_ = c.Hangup()
	backAt := time.Now()
	w.awaitDirect(t, a, b)
	waitUntil(t, "SFU sessions closed", 10*time.Second, func() bool { return w.e.sfu.Stats().Participants == 0 })
	waitUntil(t, "video over the direct path again", 10*time.Second, func() bool {
		return a.videoSince(time.Now().Add(-500*time.Millisecond)) > 10
	})
	for _, p := range []*p2pPeer{a, b} {
		t.Logf("%s: longest video gap across the return to p2p: %v", p.ID(), p.maxGap(backAt, time.Now()))
	}
	// Both hand-overs ended because both sides received on the new path,
	// not by the server's timeout: the clients kept the old path up until
	// then (make-before-break on both sides).
	if st := w.e.sig.Stats(); st.HandoverTimeouts != 0 {
		t.Fatalf("%d hand-overs timed out", st.HandoverTimeouts)
	}
}

// A peer whose video never comes (camera off) cannot hold the old path
// open: the server retires it after its bound.
func TestHandoverGivesUpWhenThePeersVideoNeverComes(t *testing.T) {
	var hosts [3]*vnet.Net
	w := newWorld(t, func(w *world) {
		lan := w.lan("10.0.1.0/24", fullCone)
		hosts[0], hosts[1], hosts[2] = w.host(lan, "10.0.1.2"), w.host(lan, "10.0.1.3"), w.host(lan, "10.0.1.4")
		w.handover = 500 * time.Millisecond
	})
	a := w.join(t, hosts[0], "Doctor")
	b := w.joinQuiet(t, hosts[1], "Patient, camera off")
	w.awaitDirect(t, a, b)
	w.join(t, hosts[2], "Interpreter")
	waitUntil(t, "the direct links retired by the timeout", 20*time.Second, func() bool {
		return w.mode() == protocol.ModeSFU && a.DirectPC() == nil && b.DirectPC() == nil
	})
	if st := w.e.sig.Stats(); st.HandoverTimeouts != 1 {
		t.Fatalf("%d hand-overs timed out, want 1", st.HandoverTimeouts)
	}
}

func TestPolicyAndRecordingKeepTheRoomOnTheSFU(t *testing.T) {
	var hosts [2]*vnet.Net
	w := newWorld(t, func(w *world) {
		lan := w.lan("10.0.1.0/24", fullCone)
		hosts[0], hosts[1] = w.host(lan, "10.0.1.2"), w.host(lan, "10.0.1.3")
	})
	a := w.join(t, hosts[0], "Doctor")
	b := w.join(t, hosts[1], "Patient")
	w.awaitDirect(t, a, b)

	// A recording needs the media at the server.
	w.e.sig.SetRecording("visit", true, nil)
	waitUntil(t, "room on the SFU for the recording", 15*time.Second, func() bool {
		return w.mode() == protocol.ModeSFU && w.e.sfu.Stats().PacketsOut > 0 && a.DirectPC() == nil && b.DirectPC() == nil
	})
	// An operator's policy keeps it there once the recording ends.
	resp, err := http.Post(w.e.httpURL("/api/rooms/visit/policy"), "application/json", strings.NewReader(`{"sfuOnly":true}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("policy: %v %v", err, resp)
	}
	resp.Body.Close()
	w.e.sig.SetRecording("visit", false, nil)
	if w.e.sig.Stats().Attempts != 1 || w.mode() != protocol.ModeSFU {
		t.Fatalf("room left the SFU: %s, %+v", w.mode(), w.e.sig.Stats())
	}
	// Lifting the policy lets it return to the direct path.
	resp, err = http.Post(w.e.httpURL("/api/rooms/visit/policy"), "application/json", strings.NewReader(`{"sfuOnly":false}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	w.awaitDirect(t, a, b)
}

func TestP2PCanBeDisabledServerWide(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.P2P.Disabled = true })
	p := e.dial(t)
	j, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "r", Name: "A", Live: true, P2P: true})
	if err != nil || j.Mode != protocol.ModeSFU {
		t.Fatalf("joined %+v, %v", j, err)
	}
}

func selectedAddrs(pc *webrtc.PeerConnection) (local, remote string) {
	if p := client.SelectedCandidatePair(pc); p != nil {
		return p.Local.Address, p.Remote.Address
	}
	return "", ""
}
