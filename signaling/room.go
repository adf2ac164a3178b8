package signaling

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"consult/protocol"
	"consult/sfu"
)

// room is a room's presence and call state; guarded by Server.mu.
type room struct {
	srv      *Server // for its events (events.go)
	name     string
	capacity int
	members  []*member        // in join order
	calls    map[string]*call // ringing calls by callee id
	// recording is whether a recording of the room runs (clients show it).
	recording bool
	// mode is "p2p" (a pending or active 1:1 direct call) or "sfu".
	mode string
	// videoCodec is the video codec its publishers send (codecs.go).
	videoCodec string
	attempt    *attempt   // a direct connection being tried
	pair       [2]*member // the two members of an active p2p call
	handover   *handover  // the pair moving from one path to the other
	// failedPair is the live set whose direct attempt failed: no new
	// attempt until the live set changes.
	failedPair  string
	forceSFU    bool                     // recording, or an operator's policy
	directEntry bool                     // guests skip the waiting room (an operator's policy)
	callStarted time.Time                // when two members were first live together
	callPath    string                   // the call's path as last reported (events.go)
	chat        []chatEntry              // chat.go
	chatLimits  map[string]*rate.Limiter // by identity (chat.go)
	speakers    speakerState             // speaker.go
	consent     *consent                 // a request to record (consent.go)
}

// member is one present participant.
type member struct {
	id, name, identity string
	role               string // protocol.RoleHost or RoleGuest
	directEntry        bool   // a guest whose token lets it skip the waiting room
	room               *room
	// sock is the member's current WebSocket, nil while it is away (see
	// resume.go). Writes happen with Server.mu held; handlers read it to
	// answer the message they are handling.
	sock         atomic.Pointer[conn]
	host         string // the host name the client reached us by
	addr         string // the client's IP, as the socket shows it
	grants       Grants
	live         bool
	waitingSince time.Time        // when it last started waiting (zero while live)
	knows        map[*member]bool // whom it has been told about (presence.go)
	held         map[string]bool  // kinds a host muted, not forwarded until it unmutes
	// For its quality summary (events.go): when it joined, how often it
	// resumed, how often its incoming video was paused for a weak link.
	joinedAt    time.Time
	resumes     int
	videoPauses atomic.Int32
	session     *session // its token's expiry (session.go); nil without auth
	// Away (resume.go): the token that takes the session back, what was
	// kept for it meanwhile, which transports are down, and the grace timer.
	resumeToken string
	backlog     [][]byte
	backlogLost bool
	mediaDown   map[sfu.Role]bool
	grace       *time.Timer
	graceGen    int // which grace timer is the current one
	awaySince   time.Time
	leaving     bool // being removed: no more state changes to announce
	audioMuted  bool
	sharing     bool // presenting its screen (Mute kind "screen")
	videoMuted  bool
	peer        Peer // set while live and the media session exists
	gen         int  // counts media sessions, to ignore a stale one's events
	tracks      []protocol.Track
	log         *zap.Logger
	p2p         bool          // the client can take a direct 1:1 connection
	codecs      codecCaps     // the video codecs it decodes and encodes (codecs.go)
	codecSent   string        // the room's video codec as it was last told
	starting    bool          // an SFU session is being opened
	ready       chan struct{} // closed when that opening is done
	queued      *[][]byte     // while set, messages to m queue here (see join)
	pathReady   string        // the path m last said it receives its peer's video over
	quality     memberQuality // its link, as last measured (quality.go)
}

// send queues a message to m (or holds it, see held).
func (m *member) send(typ string, body any) {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		return
	}
	m.sendRaw(b)
}

// sendRaw queues b for m's socket, or keeps it for m's return while m is
// away (resume.go). Called with Server.mu held.
func (m *member) sendRaw(b []byte) {
	if m.queued != nil {
		*m.queued = append(*m.queued, b)
		return
	}
	if c := m.sock.Load(); c != nil {
		c.send(b)
		return
	}
	m.keep(b)
}

// replyError answers one of m's messages with an error, on the socket it
// came by; an answer for a socket that is gone is not kept.
func (m *member) replyError(ref, code, msg string) {
	if c := m.sock.Load(); c != nil {
		c.sendError(ref, code, msg)
	}
}

// bye sends m a final goodbye and closes its socket after it.
func (m *member) bye(code, reason string) {
	if c := m.sock.Load(); c != nil {
		c.sendMsg(protocol.TypeGoodbye, protocol.Goodbye{Code: code, Reason: reason})
		c.closeAfterFlush()
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *room) find(id string) *member {
	for _, m := range r.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (r *room) liveCount() int {
	n := 0
	for _, m := range r.members {
		if m.live {
			n++
		}
	}
	return n
}

func (r *room) remove(m *member) {
	for i, x := range r.members {
		if x == m {
			r.members = append(r.members[:i], r.members[i+1:]...)
			return
		}
	}
}

// broadcast sends to every member but skip (which may be nil).
func (r *room) broadcast(skip *member, typ string, body any) {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		return
	}
	for _, m := range r.members {
		if m != skip {
			m.sendRaw(b)
		}
	}
}

func (m *member) view() protocol.Participant {
	tracks := append([]protocol.Track{}, m.tracks...)
	var since int64
	if !m.live {
		since = m.waitingSince.UnixMilli()
	}
	return protocol.Participant{ID: m.id, Name: m.name, Role: m.role, Live: m.live, WaitingSince: since,
		Reconnecting: m.away(), AudioMuted: m.audioMuted, VideoMuted: m.videoMuted, Sharing: m.sharing, Tracks: tracks}
}

// setLive puts m in the call or back in the waiting room and tells
// everyone, as each may see it. Called with Server.mu held.
func (r *room) setLive(m *member, live bool) {
	m.live = live
	if r.srv != nil {
		r.srv.clusterAdmittedLocked(m, live)
	}
	if live {
		m.waitingSince = time.Time{}
		r.callMayStart()
	} else {
		m.waitingSince = time.Now()
		m.sharing = false // out of the call, nothing is presented
	}
	r.announce(m, true)
	if r.srv != nil {
		if live {
			defer r.srv.consentArrivedLocked(r, m) // after it hears it is live
		} else if start := r.srv.consentLeftLocked(m); start != nil {
			go start() // it takes the server's lock
		}
	}
	r.resync(m)
	r.speakersTo(m)
}

// callMayStart notes when the call began: two members live together.
func (r *room) callMayStart() {
	if r.callStarted.IsZero() && r.liveCount() >= 2 {
		r.callStarted = time.Now()
		if r.srv != nil {
			r.srv.callStartedLocked(r)
		}
	}
}

// byIdentity finds the member holding identity.
func (r *room) byIdentity(identity string) *member {
	for _, m := range r.members {
		if m.identity == identity {
			return m
		}
	}
	return nil
}

func (r *room) live() []*member {
	var out []*member
	for _, m := range r.members {
		if m.live {
			out = append(out, m)
		}
	}
	return out
}
