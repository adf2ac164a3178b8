package sfu

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Role names one of a participant's two PeerConnections.
type Role string

// The two PeerConnections of a participant.
const (
	RolePublish   Role = "publish"   // client offers, server receives
	RoleSubscribe Role = "subscribe" // server offers, server sends
)

// Events are the participant's outputs. They are called from pion's and
// the SFU's goroutines and must not block: queue, do not write inline.
//
// Each PeerConnection's local candidates are emitted only after its SDP
// (Offer or Answer), because a browser refuses a candidate that arrives
// before the description it belongs to.
type Events struct {
	Offer            func(sdp string) // the subscribing PeerConnection's offer
	Answer           func(sdp string) // the answer to the client's publish offer
	Candidate        func(role Role, c webrtc.ICECandidateInit)
	TrackPublished   func(TrackInfo)
	TrackUnpublished func(TrackInfo)
	// MediaState reports that a transport that had connected went down
	// (up false: silent for ICEConfig.DisconnectedTimeout, or failed) or
	// came back (up true). A down transport is not the end: the caller
	// restarts ICE (RestartICE for the subscribing PeerConnection, the
	// client for the publishing one) and decides when to give up.
	MediaState func(role Role, up bool)
	// Failed reports that the client closed a transport; the caller
	// should remove the participant.
	Failed func(err error)
	// TrackPaused reports that a track this participant receives was
	// paused for it (its downlink cannot carry it: allocate.go) or
	// resumed. Called with no lock of the SFU's held.
	TrackPaused func(t TrackInfo, paused bool)
	// LayersWanted tells a publisher which layers of its simulcast track
	// somebody needs (active) and which nobody does (inactive: it may stop
	// encoding them), by rid (dynacast.go). Called with no lock of the
	// SFU's held, one call per track at a time, the latest last.
	LayersWanted func(t TrackInfo, active, inactive []string)
}

// ParticipantParams describe a joining participant.
type ParticipantParams struct {
	ID           string
	CanPublish   bool
	CanSubscribe bool
	Events       Events
}

const maxEarlyCandidates = 64

// Participant is a member of a room with its two PeerConnections.
type Participant struct {
	id     string
	room   *Room
	params ParticipantParams
	log    *zap.Logger

	mu          sync.Mutex
	pub         *webrtc.PeerConnection // created on the first offer
	sub         *webrtc.PeerConnection
	early       map[Role][]webrtc.ICECandidateInit // remote, before the remote description
	local       map[Role][]webrtc.ICECandidateInit // ours, before our description was emitted
	described   map[Role]bool
	downs       map[*UpTrack]*DownTrack
	ups         []*UpTrack
	held        [2]atomic.Bool           // audio, video: not forwarded (see Hold)
	estimate    atomic.Pointer[twccOnly] // the subscribe connection's (estimate.go)
	subUpAt     atomic.Int64             // when the subscribe transport last came up (unix ns; 0: down)
	joined      time.Time
	gotMedia    atomic.Bool // a first packet was sent to it (Config.OnFirstMedia)
	offering    bool        // an offer on sub awaits its answer
	renegotiate bool
	restartICE  bool          // the next offer on sub restarts ICE
	restartOut  bool          // the offer out is a restart
	screenMid   string        // the publish transceiver carrying a screen share (SetScreen)
	videoCodec  string        // the video codec put first in answers (PreferCodec)
	up          map[Role]bool // transports connected now (after once)
	closed      bool
	failOnce    sync.Once
}

func newParticipant(r *Room, params ParticipantParams) (*Participant, error) {
	p := &Participant{
		id: params.ID, room: r, params: params, joined: time.Now(),
		log:       r.log.With(zap.String("participant", params.ID)),
		early:     map[Role][]webrtc.ICECandidateInit{},
		local:     map[Role][]webrtc.ICECandidateInit{},
		described: map[Role]bool{},
		downs:     map[*UpTrack]*DownTrack{},
	}
	sub, err := p.newPC(RoleSubscribe)
	if err != nil {
		return nil, err
	}
	p.sub = sub
	return p, nil
}

// ID is the participant's id in its room.
func (p *Participant) ID() string { return p.id }

func (p *Participant) newPC(role Role) (*webrtc.PeerConnection, error) {
	// The server sends only on the subscribe connection: only that one
	// gets an estimator (estimate.go).
	pc, est, err := p.room.sfu.est.build(role == RoleSubscribe, func() (*webrtc.PeerConnection, error) {
		return p.room.sfu.api.NewPeerConnection(webrtc.Configuration{})
	})
	if err != nil {
		return nil, fmt.Errorf("sfu: new %s PeerConnection: %w", role, err)
	}
	if est != nil {
		p.estimate.Store(est)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil || p.params.Events.Candidate == nil {
			return
		}
		p.mu.Lock()
		if !p.described[role] {
			p.local[role] = append(p.local[role], c.ToJSON())
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.params.Events.Candidate(role, c.ToJSON())
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("connection state", zap.String("pc", string(role)), zap.Stringer("state", s))
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
			_ = p.mediaState(role, false)
		case webrtc.PeerConnectionStateClosed:
			if !p.isClosed() {
				p.fail(fmt.Errorf("sfu: %s transport closed by the client", role))
			}
		case webrtc.PeerConnectionStateConnected:
			back := p.mediaState(role, true)
			switch {
			case role == RoleSubscribe:
				// Keyframes sent before the subscriber's SRTP was up (or
				// while its path was down) were lost; ask again.
				p.requestKeyframes()
			case back:
				// A publisher back after a silence: its subscribers' decoders
				// lost the thread and need a keyframe to pick it up.
				p.requestOwnKeyframes()
			}
		}
	})
	if role == RolePublish {
		pc.OnTrack(p.onTrack)
	}
	return pc, nil
}

// mediaState reports a transport going down or coming back, once per
// change. The first connection is no news, and a transport that never
// connected has nothing to lose.
// It reports whether this was a change.
func (p *Participant) mediaState(role Role, up bool) bool {
	p.mu.Lock()
	if p.up == nil {
		p.up = map[Role]bool{}
	}
	was, seen := p.up[role]
	if role == RoleSubscribe {
		if up {
			p.subUpAt.Store(time.Now().UnixNano())
		} else {
			p.subUpAt.Store(0)
		}
	}
	if !up && !seen {
		p.mu.Unlock()
		return false
	}
	p.up[role] = up
	changed := !p.closed && seen && was != up
	p.mu.Unlock()
	if !changed {
		return false
	}
	p.log.Info("transport", zap.String("pc", string(role)), zap.Bool("up", up))
	if f := p.params.Events.MediaState; f != nil {
		f(role, up)
	}
	return true
}

func (p *Participant) fail(err error) {
	p.failOnce.Do(func() {
		p.log.Warn("transport failed", zap.Error(err))
		if p.params.Events.Failed != nil {
			p.params.Events.Failed(err)
		}
	})
}

// Offer applies the client's offer on the publishing PeerConnection; the
// answer is emitted through Events.Answer.
func (p *Participant) Offer(sdp string) error {
	if !p.params.CanPublish {
		return ErrForbidden
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.pub == nil {
		pc, err := p.newPC(RolePublish)
		if err != nil {
			return err
		}
		p.pub = pc
	}
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	preferLocked(p.pub, webrtc.RTPCodecTypeVideo, p.videoCodec)
	// A browser sends RED only when the answer lists it first (red.go).
	preferLocked(p.pub, webrtc.RTPCodecTypeAudio, redCodec.MimeType)
	answer, err := p.pub.CreateAnswer(nil)
	if err == nil {
		err = p.pub.SetLocalDescription(answer)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	p.flushEarly(RolePublish, p.pub)
	if p.params.Events.Answer != nil {
		p.params.Events.Answer(answer.SDP)
	}
	p.describedLocked(RolePublish)
	return nil
}

// describedLocked records that role's SDP went out and releases the local
// candidates held back until then. Called with p.mu held; the events only
// queue, so holding the lock keeps the order SDP-then-candidates.
func (p *Participant) describedLocked(role Role) {
	p.described[role] = true
	if p.params.Events.Candidate != nil {
		for _, c := range p.local[role] {
			p.params.Events.Candidate(role, c)
		}
	}
	delete(p.local, role)
}

// Answer applies the client's answer to the server's last offer.
func (p *Participant) Answer(sdp string) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if !p.offering {
		p.mu.Unlock()
		return ErrNoOffer
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.mu.Unlock() // still offering: the client may send a good answer
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	p.offering, p.restartOut = false, false
	again := p.renegotiate
	p.renegotiate = false
	p.flushEarly(RoleSubscribe, p.sub)
	p.mu.Unlock()
	if again {
		p.negotiate()
	}
	return nil
}

// AddCandidate adds a remote ICE candidate, holding it until the
// PeerConnection has a remote description.
func (p *Participant) AddCandidate(role Role, c webrtc.ICECandidateInit) error {
	if strings.TrimSpace(c.Candidate) == "" {
		return nil // end-of-candidates
	}
	// Check the syntax now: a candidate held for later would otherwise
	// fail where nobody can tell the client.
	if _, err := ice.UnmarshalCandidate(strings.TrimPrefix(c.Candidate, "candidate:")); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidICE, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	pc := p.sub
	if role == RolePublish {
		pc = p.pub
	} else if role != RoleSubscribe {
		return fmt.Errorf("%w: unknown role %q", ErrInvalidICE, role)
	}
	if pc == nil || pc.RemoteDescription() == nil {
		if len(p.early[role]) >= maxEarlyCandidates {
			return ErrTooManyQueued
		}
		p.early[role] = append(p.early[role], c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidICE, err)
	}
	return nil
}

// flushEarly adds candidates that came before the remote description.
// Called with p.mu held.
func (p *Participant) flushEarly(role Role, pc *webrtc.PeerConnection) {
	for _, c := range p.early[role] {
		if err := pc.AddICECandidate(c); err != nil {
			p.log.Debug("early candidate rejected", zap.Error(err))
		}
	}
	delete(p.early, role)
}

// RestartICE makes the next offer on the subscribing PeerConnection an
// ICE restart (new credentials, fresh candidates), now or once the
// outstanding offer is answered: the way back for a subscriber whose
// address changed or whose path went silent.
func (p *Participant) RestartICE() {
	p.mu.Lock()
	if p.restartOut {
		p.mu.Unlock()
		return // one is on its way already
	}
	p.restartICE = true
	p.mu.Unlock()
	p.negotiate()
}

// negotiate offers the subscribing PeerConnection's current tracks, or
// marks that another offer is due once the outstanding one is answered.
func (p *Participant) negotiate() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.offering {
		p.renegotiate = true
		p.mu.Unlock()
		return
	}
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: p.restartICE})
	p.restartOut, p.restartICE = p.restartICE, false
	if err == nil {
		err = p.sub.SetLocalDescription(offer)
	}
	if err != nil {
		p.mu.Unlock()
		p.log.Error("subscriber offer failed", zap.Error(err))
		return
	}
	p.offering = true
	if p.params.Events.Offer != nil {
		p.params.Events.Offer(offer.SDP)
	}
	p.describedLocked(RoleSubscribe)
	p.mu.Unlock()
}

// SetScreen names the publish transceiver (by mid) that carries a screen
// share; the track arriving on it is published as SourceScreen. The
// client says so with each offer, before the track's first packet.
func (p *Participant) SetScreen(mid string) {
	p.mu.Lock()
	p.screenMid = mid
	p.mu.Unlock()
}

// onTrack starts forwarding a newly published track, or a new layer of
// a simulcast one (pion reports each encoding as a track of its own).
func (p *Participant) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	rid := remote.RID()
	id := remote.ID()
	switch {
	case id != "":
	case rid != "":
		id = "mid" + midOf(p.pubPC(), recv) // one id for every layer
	default:
		id = fmt.Sprint(remote.SSRC())
	}
	stream := remote.StreamID()
	if stream == "" {
		stream = "stream"
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	pub, screenMid := p.pub, p.screenMid
	p.mu.Unlock()
	info := TrackInfo{
		Participant: p.id,
		Kind:        remote.Kind().String(),
		Codec:       remote.Codec().MimeType,
	}
	if codecOfMime(info.Codec) == codecRED {
		info.Codec = webrtc.MimeTypeOpus // what it carries (red.go)
	}
	if remote.Kind() == webrtc.RTPCodecTypeVideo && screenMid != "" && midOf(pub, recv) == screenMid {
		// Its own stream: a screen is not lip-synced with the camera,
		// and the stream id tells subscribers what it is.
		info.Source, stream = SourceScreen, SourceScreen
	}
	info.ID, info.StreamID = p.id+":"+id, p.id+":"+stream
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if rid != "" {
		// Another layer of a track already published.
		for _, t := range p.ups {
			if t.simulcast && t.info.ID == info.ID {
				i, l := t.addLayer(rid, uint32(remote.SSRC()), remote)
				p.mu.Unlock()
				if l != nil {
					go drainRTCP(recv, rid)
					go t.run(i, l)
					p.log.Info("layer published", zap.String("track", info.ID), zap.String("rid", rid))
				}
				return
			}
		}
	}
	t := newUpTrack(info, p.room.sfu.cfg.KeyframeInterval, pub.WriteRTCP, p.log)
	t.simulcast = rid != ""
	t.retired, t.onReport = &p.room.sfu.retired, p.room.sfu.cfg.OnLinkReport
	t.onEnd = func() { p.endTrack(t) }
	t.onRepaired = p.room.sfu.nacks.Repaired
	t.dyn.onWanted = p.params.Events.LayersWanted
	if info.Source != SourceScreen {
		// A host turns a camera or microphone off; a screen is the
		// presenter's to stop (Hold covers camera and microphone).
		t.held = p.heldFlag(info.Kind)
	}
	t.level.ext = audioLevelID(info.Kind, recv)
	i, l := t.addLayer(rid, uint32(remote.SSRC()), remote)
	p.ups = append(p.ups, t)
	p.mu.Unlock()

	go drainRTCP(recv, rid) // sender reports feed the receiver-report interceptor
	go t.run(i, l)
	p.log.Info("track published", zap.String("track", info.ID), zap.String("kind", info.Kind),
		zap.String("codec", info.Codec), zap.String("rid", rid))
	// In the room first, so that whoever hears of the track can tap it.
	p.room.publish(t)
	if p.params.Events.TrackPublished != nil {
		p.params.Events.TrackPublished(info)
	}
}

// pubPC is the publishing PeerConnection.
func (p *Participant) pubPC() *webrtc.PeerConnection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pub
}

// midOf is the mid of the transceiver that holds recv ("" if none).
func midOf(pc *webrtc.PeerConnection, recv *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == recv {
			return tr.Mid()
		}
	}
	return ""
}

// drainRTCP reads a receiver's RTCP (of the encoding rid, for
// simulcast) so that pion's interceptors see the publisher's sender
// reports; nothing else in it concerns the SFU.
func drainRTCP(r *webrtc.RTPReceiver, rid string) {
	buf := make([]byte, 1500)
	for {
		var err error
		if rid == "" {
			_, _, err = r.Read(buf)
		} else {
			_, _, err = r.ReadSimulcast(buf, rid)
		}
		if err != nil {
			return
		}
	}
}

// firstMedia runs on each down-track's first packet sent; the first of
// them reports how long the participant waited for media.
func (p *Participant) firstMedia() {
	if f := p.room.sfu.cfg.OnFirstMedia; f != nil && p.gotMedia.CompareAndSwap(false, true) {
		f(time.Since(p.joined))
	}
}

// endTrack runs when a published track's reader stops (the track was
// removed by renegotiation or the PeerConnection closed).
func (p *Participant) endTrack(t *UpTrack) {
	removed := p.room.unpublish(t)
	t.close()
	p.mu.Lock()
	for i, x := range p.ups {
		if x == t {
			p.ups = append(p.ups[:i], p.ups[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	if removed && p.params.Events.TrackUnpublished != nil {
		p.log.Info("track unpublished", zap.String("track", t.info.ID))
		p.params.Events.TrackUnpublished(t.info)
	}
}

// requestKeyframes asks the publishers of every video track p receives
// for a keyframe (throttled per track).
func (p *Participant) requestKeyframes() {
	p.mu.Lock()
	ups := make([]*UpTrack, 0, len(p.downs))
	for up := range p.downs {
		ups = append(ups, up)
	}
	p.mu.Unlock()
	for _, up := range ups {
		up.requestKeyframe()
	}
}

func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
