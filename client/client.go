// Package client is a Go client of the server's public protocol: it
// connects, joins a room, publishes pion tracks, receives the others'
// tracks and takes part in the ring flow. The tests, the bench harness
// and other tools use it; it imports nothing of the server.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// Config sets up a client.
type Config struct {
	// URL of the signaling endpoint, e.g. ws://localhost:8080/ws.
	URL    string
	Header http.Header
	// API builds the PeerConnections; nil means pion's default codecs and
	// interceptors, with loopback candidates allowed.
	API *webrtc.API
	// RelayOnly restricts ICE to TURN relays (transport policy "relay").
	RelayOnly bool
	// ICEServers, when set, are used in place of those the server offers
	// at join: a relay of the caller's own (a test's or the load
	// harness's shaper) that the media must go through.
	ICEServers []webrtc.ICEServer
	// OnTrack is called for every received track, on pion's goroutine.
	// The client reads the receiver's RTCP itself (pion's interceptors
	// see the sender's reports only when it is read, and the receiver
	// reports need them for the round trip): do not read it as well.
	OnTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)
	// OnConnectionState reports state changes of the "publish",
	// "subscribe" and "p2p" PeerConnections.
	OnConnectionState func(pc string, s webrtc.PeerConnectionState)
	// P2P announces that this client takes a direct connection in a 1:1
	// call (see protocol.Mode); its tracks then arrive through OnTrack
	// from the peer directly, or from the server.
	P2P bool
	// P2PAPI builds the direct PeerConnection (nil: API).
	P2PAPI *webrtc.API
	// OnKeyframeRequest is called with a published track's id when a
	// receiver (the server or the direct peer) asks for a keyframe (PLI
	// or FIR). The client reads every sender's RTCP itself.
	OnKeyframeRequest func(trackID string)
	// OnLayerKeyframeRequest, when set, takes the keyframe requests for
	// a simulcast track's layers (PublishSimulcast), with the layer's rid.
	OnLayerKeyframeRequest func(trackID, rid string)
	// OnLayers, when set, sees each layers message (which layers of a
	// simulcast track somebody needs: view.go), on the reader goroutine;
	// it must not block. The message also goes to the inbox.
	OnLayers func(protocol.Layers)
	// OnMessage sees every message from the server as it arrives, before
	// the client acts on it (tests that check what a client was told).
	OnMessage func(raw []byte)
	// OnSpeaker sees every speaker message, on the reader goroutine
	// (speaker.go); it must not block.
	OnSpeaker func(protocol.Speaker)
	// Resume takes the session back on a new socket when the socket drops
	// (resume.go): retries at once, after 250 ms, 1 s, then every 2 s while
	// the server keeps the session. An event "resumed" or "resume-expired"
	// says how it went; Done closes only when the client gives up.
	Resume bool
}

// Event is one message from the server other than negotiation.
type Event struct {
	Type string
	Raw  []byte
}

// Decode unmarshals the event's body into v (a protocol type).
func (e Event) Decode(v any) error { return json.Unmarshal(e.Raw, v) }

// ServerError is returned for an error message from the server.
type ServerError struct {
	Code, Message, Ref string
	RetryAfter         time.Duration // with server-busy: when to try again
}

func (e *ServerError) Error() string { return "server: " + e.Code + ": " + e.Message }

// Client is one connection to the server.
type Client struct {
	cfg     Config
	api     *webrtc.API
	ws      *websocket.Conn // guarded by wmu; replaced on resume
	at      string          // ws's URL; guarded by wmu
	wmu     sync.Mutex
	inbox   *inbox
	quality qualityBox // the latest quality message (quality.go)
	done    chan struct{}
	closing atomic.Bool   // Close was called: no resuming
	stop    chan struct{} // closed by Close: ends a resume in progress

	speakers *speakerBox // the latest speaker message (speaker.go), not in the inbox

	negMu sync.Mutex  // serialises Publish negotiations
	work  chan func() // mode changes and direct negotiation, in order

	mu         sync.Mutex
	joinMsg    []byte // the last join, sent again after a redirect
	redirect   string // where the server sent the client, not yet followed
	redirected bool   // a redirect came (its URL may be empty: an error)
	hops       int    // redirects followed since the last joined
	you        string
	resume     resumeState
	ice        []webrtc.ICEServer
	pub, sub   *webrtc.PeerConnection
	early      map[string][]webrtc.ICECandidateInit
	answered   chan error
	useSFU     bool                // publish to the server (mode sfu)
	tracks     []webrtc.TrackLocal // everything published, for either path
	screen     webrtc.TrackLocal   // the one of them that is a screen share (PublishScreen)
	direct     *direct             // the direct connection, if any
	// serverVideo holds whose video has arrived on sub (participant ids).
	serverVideo map[string]bool
}

// Dial connects to the server.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, cfg.URL, cfg.Header)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, api: cfg.API, ws: ws, at: cfg.URL, inbox: newInbox(), speakers: newSpeakerBox(), done: make(chan struct{}), stop: make(chan struct{}),
		early: map[string][]webrtc.ICECandidateInit{}, work: make(chan func(), 64), useSFU: true,
		serverVideo: map[string]bool{}}
	// Set before any offer can come: the server's offer may be read
	// before Join has taken the joined message in.
	c.ice = append(c.ice, cfg.ICEServers...)
	c.quality.changed = make(chan struct{})
	if c.api == nil {
		if c.api, err = DefaultAPI(nil); err != nil {
			_ = ws.Close()
			return nil, err
		}
	}
	go c.run(ws)
	go c.worker()
	return c, nil
}

// worker runs mode changes and direct negotiation one at a time, off the
// reader goroutine (a mode change may wait for the server's answer, which
// the reader delivers).
func (c *Client) worker() {
	for {
		select {
		case f := <-c.work:
			f()
		case <-c.done:
			return
		}
	}
}

func (c *Client) later(f func()) {
	select {
	case c.work <- f:
	case <-c.done:
	}
}

// DefaultAPI is the server's codecs (RegisterCodecs) and pion's default
// interceptors on se (nil: a setting engine that allows loopback
// candidates).
func DefaultAPI(se *webrtc.SettingEngine) (*webrtc.API, error) {
	return newAPI(se, RegisterCodecs)
}

// newAPI is DefaultAPI with the codecs that register sets up.
func newAPI(se *webrtc.SettingEngine, register func(*webrtc.MediaEngine) error) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := register(m); err != nil {
		return nil, err
	}
	// As browsers do: the level of what it sends in each audio packet,
	// when the sender sets it (Talker), for the server's speakers.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	if se == nil {
		se = &webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
	}
	// A path that goes silent is noticed within 2 s and restarted (see
	// resume.go); keepalives every 500 ms keep a quiet path from looking
	// dead, and pion gives up only after the server's grace period.
	se.SetICETimeouts(2*time.Second, 25*time.Second, 500*time.Millisecond)
	// A restarted connection keeps checking (every 200 ms) until pion gives
	// it up, so a network back after a long blackout is found at once.
	se.SetICEMaxBindingRequests(125)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(*se)), nil
}

// ID is the participant id the server gave this client at join.
func (c *Client) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.you
}

// Done is closed when the connection ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// Send writes one message.
func (c *Client) Send(typ string, body any) error {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		return err
	}
	return c.SendRaw(b)
}

// SendRaw writes bytes as one text message, valid or not (for tests of
// the server's input handling).
func (c *Client) SendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		// A socket being replaced (resume): the message is lost, as it
		// would be on a network that dropped it.
		return err
	}
	return nil
}

// Await returns the next unread event of one of the given types.
func (c *Client) Await(ctx context.Context, types ...string) (Event, error) {
	return c.inbox.await(ctx, func(e Event) bool {
		for _, t := range types {
			if e.Type == t {
				return true
			}
		}
		return false
	})
}

// AwaitMatch returns the next unread event that match accepts.
func (c *Client) AwaitMatch(ctx context.Context, match func(Event) bool) (Event, error) {
	return c.inbox.await(ctx, match)
}

// Join enters a room and returns the server's reply.
func (c *Client) Join(ctx context.Context, j protocol.Join) (*protocol.Joined, error) {
	j.P2P = j.P2P || c.cfg.P2P
	b, err := protocol.Encode(protocol.TypeJoin, j)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.joinMsg, c.hops = b, 0
	c.mu.Unlock()
	if err := c.SendRaw(b); err != nil {
		return nil, err
	}
	// The answer may never come: the socket ends (a redirect's target
	// closed) and the client with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	e, err := c.Await(ctx, protocol.TypeJoined, protocol.TypeError)
	if err != nil {
		select {
		case <-c.done:
			return nil, errClosed
		default:
		}
		return nil, err
	}
	if e.Type == protocol.TypeError {
		var pe protocol.Error
		_ = e.Decode(&pe)
		return nil, &ServerError{Code: pe.Code, Message: pe.Message, Ref: pe.Ref,
			RetryAfter: time.Duration(pe.RetryAfterMS) * time.Millisecond}
	}
	var joined protocol.Joined
	if err := e.Decode(&joined); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.you = joined.You
	c.resume = resumeState{token: joined.ResumeToken, grace: time.Duration(joined.ResumeGraceMS) * time.Millisecond}
	c.useSFU = joined.Mode != protocol.ModeP2P
	if len(c.cfg.ICEServers) == 0 {
		c.ice = c.ice[:0]
		for _, s := range joined.ICEServers {
			c.ice = append(c.ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	c.mu.Unlock()
	return &joined, nil
}

// Invite, Cancel, Accept, Reject, Hangup, Mute and Leave send the
// corresponding messages; their outcome arrives as events.
func (c *Client) Invite(id string) error {
	return c.Send(protocol.TypeInvite, protocol.Invite{Participant: id})
}
func (c *Client) Cancel(id string) error {
	return c.Send(protocol.TypeCancel, protocol.Invite{Participant: id})
}
func (c *Client) Accept() error { return c.Send(protocol.TypeAccept, nil) }
func (c *Client) Reject() error { return c.Send(protocol.TypeReject, nil) }
func (c *Client) Hangup() error { c.dropMedia(); return c.Send(protocol.TypeHangup, nil) }
func (c *Client) Leave() error  { c.dropMedia(); return c.Send(protocol.TypeLeave, nil) }
func (c *Client) Mute(kind string, muted bool) error {
	return c.Send(protocol.TypeMute, protocol.Mute{Kind: kind, Muted: muted})
}

// Close ends the connection and both PeerConnections.
func (c *Client) Close() error {
	if !c.closing.Swap(true) {
		close(c.stop)
	}
	c.wmu.Lock()
	err := c.ws.Close()
	c.wmu.Unlock()
	<-c.done
	c.closeDirect()
	c.mu.Lock()
	pcs := []*webrtc.PeerConnection{c.pub, c.sub}
	c.pub, c.sub = nil, nil
	clear(c.serverVideo)
	c.mu.Unlock()
	for _, pc := range pcs {
		if pc != nil {
			_ = pc.Close()
		}
	}
	return err
}

// readLoop reads one socket until it fails.
func (c *Client) readLoop(ws *websocket.Conn) {
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if c.cfg.OnMessage != nil {
			c.cfg.OnMessage(b)
		}
		var h struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(b, &h) != nil {
			continue
		}
		var peer struct {
			From string `json:"from"`
		}
		_ = json.Unmarshal(b, &peer)
		direct := peer.From != "" && peer.From != protocol.TargetServer
		switch {
		case h.Type == protocol.TypeRedirect:
			c.mu.Lock()
			c.redirect, c.redirected = redirectTarget(b), true
			c.mu.Unlock()
			return
		case h.Type == protocol.TypeICERestart:
			var r protocol.ICERestart
			if json.Unmarshal(b, &r) == nil && r.PC == protocol.PCPublish {
				c.later(func() { c.restartPublish(false) })
			}
			c.inbox.push(Event{Type: h.Type, Raw: b})
		case h.Type == protocol.TypeSpeaker:
			c.onSpeaker(b)
		case h.Type == protocol.TypeQuality:
			c.quality.set(b)
		case h.Type == protocol.TypeLayers:
			c.onLayers(b)
		case h.Type == protocol.TypeMode:
			var m protocol.Mode
			if json.Unmarshal(b, &m) == nil {
				c.later(func() { c.onMode(m) })
			}
			c.inbox.push(Event{Type: h.Type, Raw: b})
		case direct && (h.Type == protocol.TypeOffer || h.Type == protocol.TypeAnswer || h.Type == protocol.TypeCandidate):
			c.later(func() { c.onDirect(h.Type, b) })
		case h.Type == protocol.TypeOffer:
			var d protocol.SessionDescription
			if json.Unmarshal(b, &d) == nil {
				c.onOffer(d.SDP)
			}
		case h.Type == protocol.TypeAnswer:
			var d protocol.SessionDescription
			if json.Unmarshal(b, &d) == nil {
				c.onAnswer(d.SDP)
			}
		case h.Type == protocol.TypeCandidate:
			var cand protocol.Candidate
			if json.Unmarshal(b, &cand) == nil {
				c.onCandidate(cand)
			}
		default:
			c.inbox.push(Event{Type: h.Type, Raw: b})
		}
	}
}

var errClosed = errors.New("client: connection closed")

// newPC makes a PeerConnection whose candidates go to the server as pc.
func (c *Client) newPC(pc string) (*webrtc.PeerConnection, error) {
	conf := webrtc.Configuration{ICEServers: c.ice}
	if c.cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	p, err := c.api.NewPeerConnection(conf)
	if err != nil {
		return nil, err
	}
	p.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if f := c.cfg.OnConnectionState; f != nil {
			f(pc, s)
		}
		c.watchPath(pc, s, p)
	})
	p.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil {
			return
		}
		j := ic.ToJSON()
		_ = c.Send(protocol.TypeCandidate, protocol.Candidate{Target: protocol.TargetServer, PC: pc,
			Candidate: protocol.ICECandidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
	})
	return p, nil
}

func (c *Client) onOffer(sdp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub == nil {
		pc, err := c.newPC(protocol.PCSubscribe)
		if err != nil {
			return
		}
		pc.OnTrack(c.onServerTrack)
		c.sub = pc
	}
	if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		c.inbox.push(Event{Type: "client-error", Raw: []byte(fmt.Sprintf("%q", err.Error()))})
		return
	}
	ans, err := c.sub.CreateAnswer(nil)
	if err == nil {
		err = c.sub.SetLocalDescription(ans)
	}
	if err != nil {
		return
	}
	c.flushEarly(protocol.PCSubscribe, c.sub)
	_ = c.Send(protocol.TypeAnswer, protocol.SessionDescription{Target: protocol.TargetServer, SDP: ans.SDP})
}

func (c *Client) onAnswer(sdp string) {
	c.mu.Lock()
	var err error = errClosed
	if c.pub != nil {
		err = c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
		if err == nil {
			c.flushEarly(protocol.PCPublish, c.pub)
		}
	}
	ch := c.answered
	c.answered = nil
	c.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

func (c *Client) onCandidate(cand protocol.Candidate) {
	init := webrtc.ICECandidateInit{Candidate: cand.Candidate.Candidate, SDPMid: cand.Candidate.SDPMid,
		SDPMLineIndex: cand.Candidate.SDPMLineIndex, UsernameFragment: cand.Candidate.UsernameFragment}
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := c.sub
	if cand.PC == protocol.PCPublish {
		pc = c.pub
	}
	if pc == nil || pc.RemoteDescription() == nil {
		c.early[cand.PC] = append(c.early[cand.PC], init)
		return
	}
	_ = pc.AddICECandidate(init)
}

// flushEarly adds candidates that arrived before the description. Called
// with c.mu held.
func (c *Client) flushEarly(pc string, p *webrtc.PeerConnection) {
	for _, init := range c.early[pc] {
		_ = p.AddICECandidate(init)
	}
	delete(c.early, pc)
}

// dropMedia closes every PeerConnection: after a hang-up or a leave the
// server has closed its side. Published tracks are kept for the next call.
func (c *Client) dropMedia() {
	c.mu.Lock()
	pcs := []*webrtc.PeerConnection{c.pub, c.sub}
	c.pub, c.sub = nil, nil
	clear(c.serverVideo)
	c.mu.Unlock()
	c.closeDirect()
	for _, pc := range pcs {
		if pc != nil {
			_ = pc.Close()
		}
	}
}
