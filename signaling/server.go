// Package signaling speaks the JSON-over-WebSocket protocol of package
// protocol: presence in rooms, the ring flow of a consult (invite, accept,
// reject, cancel, hang up), and the SDP/ICE exchange with the SFU, which
// it drives through the small Media interface.
package signaling

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
	"consult/sfu"
)

// Config sets up a signaling server. Zero values take the defaults.
type Config struct {
	Logger *zap.Logger
	Media  Media
	// Secret, when set, makes join require a JWT signed with it.
	Secret []byte
	// ICEServers returns the ICE servers handed to a joining identity
	// (for instance fresh TURN credentials). host is the host name the
	// client reached this server by, a good guess for reaching TURN too.
	ICEServers func(identity, host string) []protocol.ICEServer
	// Simulcast has clients send their camera to the server as layers
	// (protocol.Joined.Simulcast), which the SFU chooses among per
	// subscriber.
	Simulcast bool
	// Capacity is a room's default live capacity (8).
	Capacity int
	// RingTimeout ends an unanswered invite (30 s).
	RingTimeout time.Duration
	// PingInterval and PongWait bound how long a dead socket lives (3 s and
	// 8 s: a vanished client is away within 10 s, see resume.go).
	PingInterval, PongWait time.Duration
	// MessageRate and MessageBurst limit each connection (50/s, burst 100).
	MessageRate  float64
	MessageBurst int
	// CheckOrigin overrides the WebSocket origin check (default: same host).
	CheckOrigin func(*http.Request) bool
	// Observer, when set, hears of every published and unpublished track
	// (the recorder uses it).
	Observer Observer
	// P2P configures the 1:1 direct path (see p2p.go).
	P2P P2PConfig
	// ResumeGrace is how long a member whose socket or media is down keeps
	// its place (resume.go): 20 s; negative turns resuming off.
	ResumeGrace time.Duration
	// Admission limits new joins server-wide (admission.go); its zero
	// value limits nothing.
	Admission AdmissionConfig
	// OnEvent, when set, hears what happens in the rooms (events.go). It
	// is called with the server's lock held: it must queue and return.
	OnEvent func(Event)
	// EventNames puts members' display names in their events.
	EventNames bool
	// Cluster, when set, makes this server a node of a cluster
	// (cluster.go); LocalWhenDown opens new rooms here while the cluster
	// cannot be reached, instead of refusing them.
	Cluster       Cluster
	LocalWhenDown bool
	// Origins are page origins (scheme://host[:port]) besides this host
	// and the cluster's nodes whose pages may open a socket here: a load
	// balancer's, in a cluster.
	Origins []string
	// QualityInterval is how often calls hear how their members' links
	// fare (quality.go): 2 s; negative turns it off.
	QualityInterval time.Duration
	// Recorder, when set, lets hosts record from the call, with consent
	// (consent.go); ConsentTimeout is how long members have to answer
	// (default 60 s).
	Recorder       Recorder
	ConsentTimeout time.Duration
}

// Observer hears of tracks as they come and go, and of rooms that end
// (the recorder: a recording is of one consult, and stops with it).
type Observer interface {
	TrackPublished(room, participant, identity string, t sfu.TrackInfo)
	TrackUnpublished(room, participant, trackID string)
	RoomEnded(room string)
	// Recording reports whether room is being recorded, for a room that
	// starts anew while a recording of it waits.
	Recording(room string) bool
}

// Server holds every room's presence and call state. One mutex guards it
// all: operations on it are short and never touch the network or the SFU
// (messages are queued to connections, media calls happen outside it).
type Server struct {
	cfg Config
	log *zap.Logger

	mu           sync.Mutex
	rooms        map[string]*room
	conns        map[*conn]struct{}
	closing      bool
	draining     bool // drain.go
	drainStarted chan struct{}
	wg           sync.WaitGroup
	stats        P2PStats
	counts       counters              // monitor.go
	admission    *admission            // admission.go
	policies     map[string]RoomPolicy // operators' settings by room name
	resumable    map[string]*member    // away-or-not members by resume token
	qualityStop  chan struct{}         // ends the quality ticker (quality.go)
	qualityOnce  sync.Once
}

// RoomPolicy is an operator's setting for a room (POST
// /api/rooms/{room}/policy), kept while the room comes and goes.
type RoomPolicy struct {
	SFUOnly     bool `json:"sfuOnly"`               // never the direct path
	DirectEntry bool `json:"directEntry"`           // guests skip the waiting room
	Capacity    int  `json:"capacity,omitempty"`    // live members (0: the server's default)
	NoRecording bool `json:"noRecording,omitempty"` // recordings of the room are refused
	// ConsentElsewhere: consent to record is taken outside the call, so
	// a host's recording starts without asking (consent.go).
	ConsentElsewhere bool `json:"consentElsewhere,omitempty"`
}

// MayRecord reports whether the room's policy lets it be recorded (the
// recorder asks before each recording).
func (s *Server) MayRecord(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.policies[room].NoRecording
}

// New returns a server; mount Handler on an http.Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ConsentTimeout <= 0 {
		cfg.ConsentTimeout = time.Minute
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 8
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 30 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 3 * time.Second
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = 8 * time.Second
	}
	if cfg.MessageRate <= 0 {
		cfg.MessageRate = 50
	}
	if cfg.MessageBurst <= 0 {
		cfg.MessageBurst = 100
	}
	if cfg.ICEServers == nil {
		cfg.ICEServers = func(string, string) []protocol.ICEServer { return []protocol.ICEServer{} }
	}
	if len(cfg.Secret) == 0 {
		cfg.Logger.Warn("no auth secret configured: rooms are open to anyone who can reach this server, and anyone may say they are a host")
	}
	if cfg.P2P.Deadline <= 0 {
		cfg.P2P.Deadline = 5 * time.Second
	}
	switch {
	case cfg.ResumeGrace == 0:
		cfg.ResumeGrace = 20 * time.Second
	case cfg.ResumeGrace < 0:
		cfg.ResumeGrace = 0
	}
	if cfg.P2P.HandoverTimeout <= 0 {
		cfg.P2P.HandoverTimeout = 4 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, rooms: map[string]*room{}, conns: map[*conn]struct{}{}, admission: newAdmission(cfg.Admission), drainStarted: make(chan struct{}),
		policies: map[string]RoomPolicy{}, resumable: map[string]*member{}, stats: P2PStats{Successes: map[string]int{}, FallbackReasons: map[string]int{}}}
	if s.cfg.CheckOrigin == nil {
		s.cfg.CheckOrigin = s.checkOrigin
	}
	s.qualityStop = make(chan struct{})
	switch {
	case cfg.QualityInterval == 0:
		go s.qualityLoop(2*time.Second, s.qualityStop)
	case cfg.QualityInterval > 0:
		go s.qualityLoop(cfg.QualityInterval, s.qualityStop)
	}
	return s
}

// Handler serves /ws, /api/rooms, /api/rooms/{room}, /api/invites,
// /api/stats, /api/nodes, /api/drain and /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /api/rooms", s.serveRooms)
	mux.HandleFunc("GET /api/rooms/{room}", s.byOwner(false, s.serveRoomCheck))
	mux.HandleFunc("POST /api/rooms/{room}/policy", s.byOwner(true, s.servePolicy))
	mux.HandleFunc("GET /api/nodes", s.serveNodes)
	mux.HandleFunc("GET /api/rooms/{room}/chat", s.byOwner(false, s.serveChat))
	mux.HandleFunc("GET /api/stats", s.serveStats)
	mux.HandleFunc("POST /api/invites", s.serveInvite)
	mux.HandleFunc("POST /api/drain", s.serveDrain)
	s.registerAdminAPI(mux)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	return mux
}

// Shutdown tells every client goodbye, closes their connections (which
// ends their media sessions) and waits for that, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopQuality()
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.sendMsg(protocol.TypeGoodbye, protocol.Goodbye{Code: protocol.GoodbyeShutdown, Reason: "server shutting down"})
		c.closeAfterFlush()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.close()
		}
		return ctx.Err()
	}
}

// SetRecording tells a room's members whether it is being recorded; admins
// also get the error that stopped a recording.
// RecordingIncomplete tells a room's hosts that its recording runs
// without one of a participant's tracks, and why.
func (s *Server) RecordingIncomplete(room string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[room]; r != nil {
		for _, m := range r.members {
			if may(m, actRecord) {
				m.replyError("", protocol.ErrRecordingIncomplete, "recording incomplete: "+err.Error())
			}
		}
	}
}

func (s *Server) SetRecording(room string, active bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil {
		return
	}
	r.recording = active
	if !active {
		s.recordingEndedLocked(r)
	}
	r.forceSFU = active || s.policies[room].SFUOnly
	defer func() { go func() { run(s.reconcile(room)) }() }() // a recorded room needs its media at the server
	msg := protocol.Recording{Active: active}
	if err != nil {
		// Why it failed is for the hosts (server paths and such); the
		// room hears only that it stopped.
		for _, m := range r.members {
			if may(m, actRecord) {
				m.replyError("", protocol.ErrRecording, "recording stopped: "+err.Error())
			}
		}
	}
	r.broadcast(nil, protocol.TypeRecording, msg)
}
