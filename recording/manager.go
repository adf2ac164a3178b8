// Package recording records consults to Matroska files (one per
// participant: WebM for VP8/VP9, .mkv once H.264 is in it), keeps a
// manifest of each recording (who took part, consent, files and their
// hashes), composes a stopped room recording into one MP4 with ffmpeg,
// repairs files a crash cut short, and forwards live tracks as plain RTP
// to local tools. It takes packets from the SFU through taps and learns
// about tracks from the signaling layer; it decodes nothing itself (the
// composite is ffmpeg's work, in a subprocess).
package recording

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"consult/sfu"
)

// Tapper is the part of the SFU a recorder needs.
type Tapper interface {
	Tap(room, trackID string, w sfu.RTPWriter, ended func()) (sfu.TapInfo, func(), error)
}

// Config sets up a Manager.
type Config struct {
	Dir    string
	Tapper Tapper
	Logger *zap.Logger
	// Notify tells the room that recording started or stopped (active is
	// whether any recording of the room runs), with the error that
	// stopped it, if any.
	Notify func(room string, active bool, err error)
	// OnChange, when set, hears of each recording as it starts and once
	// it has stopped (its files complete), for webhooks.
	OnChange func(Info)
	// Incomplete, when set, hears that a participant's track cannot be
	// recorded (a codec no file here holds, or an H.264 stream that
	// never sent its parameter sets). The recording goes on without it;
	// the room's hosts must know.
	Incomplete func(in Info, err error)
	// MayRecord, when set, is asked before a recording of a room starts:
	// false refuses it (ErrNotAllowed), an operator's policy for rooms
	// that must never be recorded.
	MayRecord func(room string) bool
	// Settle is how long a newly publishing participant's file waits for
	// its other tracks (default 1 s): Chromium's first video packet
	// follows its first audio packet by about 300 ms. Nothing is lost
	// meanwhile (see early); a track that comes later still renews the
	// file as a part 2, since a WebM file's tracks are fixed.
	Settle time.Duration
	// ForwardAllow lists where RTP forwards may go (default loopback).
	ForwardAllow []netip.Prefix
	// Keep, when set, is how long recordings are kept after they stop:
	// older ones (files, composite, manifest) are deleted, checked at
	// start and every ExpireEvery (default an hour).
	Keep        time.Duration
	ExpireEvery time.Duration
	// Composite, when set, composes each stopped room recording into
	// one MP4 with ffmpeg (compose.go), of CompositeWidth x
	// CompositeHeight (default 1280x720), at most CompositeQueue
	// (default 8) waiting besides the one being made.
	Composite                       bool
	CompositeWidth, CompositeHeight int
	CompositeQueue                  int
}

// Recording states.
const (
	StateRecording = "recording"
	StateStopped   = "stopped"
	StateFailed    = "failed"
	// StateRecovered: the server stopped during the recording (a crash);
	// the next start repaired its files.
	StateRecovered = "recovered"
)

// Info describes a recording for the admin API.
type Info struct {
	ID          string        `json:"id"`
	Room        string        `json:"room"`
	Participant string        `json:"participant,omitempty"`
	State       string        `json:"state"`
	Error       string        `json:"error,omitempty"`
	Started     time.Time     `json:"started"`
	Stopped     *time.Time    `json:"stopped,omitempty"`
	Files       []FileInfo    `json:"files"`
	Bytes       int64         `json:"bytes"`
	Duration    time.Duration `json:"durationNs"`
	// Missing lists tracks that could not be recorded, and why.
	Missing []MissingTrack `json:"missing,omitempty"`
	// Consent says how consent was taken and holds the answers; People
	// who took part (role and identity where known).
	Consent Consent  `json:"consent"`
	People  []Person `json:"participants"`
	// Manifest is the name of the manifest file beside the files.
	Manifest  string         `json:"manifest"`
	Composite *CompositeInfo `json:"composite,omitempty"`
}

// MissingTrack is a participant's track that is not in the recording.
type MissingTrack struct {
	Participant string    `json:"participant"`
	Track       string    `json:"track"`
	Kind        string    `json:"kind"`
	Codec       string    `json:"codec"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// FileInfo is one file of a recording. Duration is what a player will
// show, from the file's first block to its last.
type FileInfo struct {
	Path        string          `json:"path,omitempty"`
	Name        string          `json:"name"`
	Participant string          `json:"participant"`
	Started     time.Time       `json:"started"` // wall clock of its first block
	SHA256      string          `json:"sha256,omitempty"`
	Error       string          `json:"error,omitempty"`
	Bytes       int64           `json:"bytes"`
	Duration    time.Duration   `json:"durationNs"`
	Tracks      []TrackFileInfo `json:"tracks"`
}

// TrackFileInfo is one track of a file: where in the file it starts and
// how long it runs, so an operator sees whether sound and picture are
// both being written.
type TrackFileInfo struct {
	Kind     string        `json:"kind"`
	Codec    string        `json:"codec"`
	Source   string        `json:"source,omitempty"` // "screen" for a screen share
	Start    time.Duration `json:"startNs"`
	Duration time.Duration `json:"durationNs"`
}

// Errors of the admin API.
var (
	ErrNotFound = errors.New("recording: no such recording")
	ErrNoRoom   = errors.New("recording: no such room")
	// ErrNotAllowed: the room's policy forbids recording it.
	ErrNotAllowed = errors.New("recording: not allowed in this room")
)

// member is what the manager knows of a publishing participant.
type member struct {
	identity string
	tracks   []sfu.TrackInfo
}

// Manager runs recordings. Its methods are safe for concurrent use.
type Manager struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	seq      int
	recs     map[string]*recording
	past     map[string]pastRecording // by id: recordings of earlier runs
	forwards map[string]*Forward
	members  map[string]map[string]*member // room → participant id → member

	composer  *composer // nil without Config.Composite
	closed    bool      // Close is waiting for the work in wg
	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the retention loop and each stopped recording's finishing work
}

// New checks the directory and returns a manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Settle <= 0 {
		cfg.Settle = time.Second
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string, bool, error) {}
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = time.Hour
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("recording directory: %w", err)
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, recs: map[string]*recording{}, forwards: map[string]*Forward{},
		members: map[string]map[string]*member{}, past: map[string]pastRecording{}, quit: make(chan struct{})}
	if cfg.Composite {
		if cfg.CompositeQueue <= 0 {
			cfg.CompositeQueue = 8
		}
		m.cfg = cfg
		m.composer = newComposer(cfg.Logger.Named("composite"), cfg.CompositeQueue)
	}
	m.loadPast()
	m.expire(time.Now())
	if m.composer != nil {
		for id, p := range m.past {
			if needsComposite(p.info) {
				m.composePast(id)
			}
		}
	}
	if cfg.Keep > 0 {
		m.wg.Add(1)
		go m.expireLoop()
	}
	return m, nil
}

func (m *Manager) expireLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case now := <-t.C:
			m.expire(now)
		}
	}
}

// TrackPublished records that a participant publishes a track; a running
// recording of its room (or of it) picks the track up.
func (m *Manager) TrackPublished(room, participant, identity string, t sfu.TrackInfo) {
	m.mu.Lock()
	ms := m.members[room]
	if ms == nil {
		ms = map[string]*member{}
		m.members[room] = ms
	}
	mb := ms[participant]
	if mb == nil {
		mb = &member{identity: identity}
		ms[participant] = mb
	}
	mb.tracks = append(mb.tracks, t)
	recs := m.activeLocked(room, participant)
	m.mu.Unlock()
	for _, r := range recs {
		r.trackAdded(participant, t)
	}
}

// TrackUnpublished forgets a track (its tap ends by itself).
func (m *Manager) TrackUnpublished(room, participant, trackID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb := m.members[room][participant]
	if mb == nil {
		return
	}
	for i, t := range mb.tracks {
		if t.ID == trackID {
			mb.tracks = append(mb.tracks[:i], mb.tracks[i+1:]...)
			break
		}
	}
	if len(mb.tracks) == 0 {
		delete(m.members[room], participant)
		if len(m.members[room]) == 0 {
			delete(m.members, room)
		}
	}
}

func (m *Manager) activeLocked(room, participant string) []*recording {
	var out []*recording
	for _, r := range m.recs {
		if r.room == room && (r.participant == "" || r.participant == participant) && r.active() && r.records(participant) {
			out = append(out, r)
		}
	}
	return out
}

// snapshot returns a participant's identity and tracks.
func (m *Manager) snapshot(room, participant string) (string, []sfu.TrackInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb := m.members[room][participant]
	if mb == nil {
		return "", nil
	}
	return mb.identity, append([]sfu.TrackInfo(nil), mb.tracks...)
}

// Start records a room (participant empty) or one participant of it, at
// once: an API client that starts a recording takes consent itself.
func (m *Manager) Start(room, participant string) (Info, error) {
	return m.StartWith(room, StartOptions{Participant: participant, Consent: Consent{Policy: ConsentElsewhere, By: "api"}})
}

// StartOptions describe a recording started from the call.
type StartOptions struct {
	Participant string // record only this one
	Consent     Consent
	People      []Person
	// Only, when not nil, limits the recording to these participants
	// (those who agreed); others come in through Answered.
	Only []string
}

// StartWith starts a recording as o says.
func (m *Manager) StartWith(room string, o StartOptions) (Info, error) {
	if m.cfg.MayRecord != nil && !m.cfg.MayRecord(room) {
		return Info{}, fmt.Errorf("%w: %q", ErrNotAllowed, room)
	}
	m.mu.Lock()
	ms := m.members[room]
	if o.Participant != "" && ms[o.Participant] == nil {
		m.mu.Unlock()
		return Info{}, fmt.Errorf("%w: participant %q publishes nothing in %q", ErrNoRoom, o.Participant, room)
	}
	m.seq++
	r := newRecording(m, fmt.Sprintf("rec-%d-%d-%s", time.Now().Unix(), m.seq, randomHex(3)), room, o.Participant)
	r.consent, r.people = o.Consent, append([]Person(nil), o.People...)
	if o.Only != nil {
		r.only = map[string]bool{}
		for _, id := range o.Only {
			r.only[id] = true
		}
	}
	m.recs[r.id] = r
	if m.cfg.OnChange != nil {
		// Now, before any file opens: a file that fails stops the
		// recording, and its end must come after its start.
		m.cfg.OnChange(r.info())
	}
	var who []string
	for id := range ms {
		if (o.Participant == "" || id == o.Participant) && r.records(id) {
			who = append(who, id)
		}
	}
	m.mu.Unlock()
	r.save()
	sort.Strings(who)
	for _, id := range who {
		r.open(id)
	}
	m.log.Info("recording started", zap.String("room", room), zap.String("recording", r.id),
		zap.String("participant", o.Participant), zap.String("consent", o.Consent.Policy))
	m.notify(room, nil)
	return r.info(), nil
}

// Answered adds a member's answer, given after the start (a member who
// came later), to the room's running recordings: one who agreed is
// recorded from now on, one who declined never is.
func (m *Manager) Answered(room string, a Answer, p Person) {
	m.mu.Lock()
	publishing := m.members[room][a.Participant] != nil
	m.mu.Unlock()
	for _, r := range m.running(room) {
		if r.answered(a, p) && publishing {
			r.open(a.Participant)
		}
	}
}

// StartConsented starts a recording that a host asked for in the call
// (signaling's Recorder): only the members in only (nil: everyone), with
// the consent as it was taken.
func (m *Manager) StartConsented(room string, c Consent, people []Person, only []string) error {
	if only == nil && c.Policy == ConsentAsked {
		only = []string{} // nobody agreed: nobody is recorded
	}
	_, err := m.StartWith(room, StartOptions{Consent: c, People: people, Only: only})
	return err
}

// StopRecording stops the room's running recordings (signaling's
// Recorder).
func (m *Manager) StopRecording(room string) error {
	m.StopRoom(room)
	return nil
}

// running returns the room's running recordings.
func (m *Manager) running(room string) []*recording {
	m.mu.Lock()
	defer m.mu.Unlock()
	var recs []*recording
	for _, r := range m.recs {
		if r.room == room && r.active() {
			recs = append(recs, r)
		}
	}
	return recs
}

// StopRoom stops the room's running recordings.
func (m *Manager) StopRoom(room string) []Info {
	out := []Info{}
	for _, r := range m.running(room) {
		r.stop(nil)
		out = append(out, r.info())
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Stop ends a recording; its files are complete when Stop returns.
func (m *Manager) Stop(id string) (Info, error) {
	m.mu.Lock()
	r := m.recs[id]
	m.mu.Unlock()
	if r == nil {
		return Info{}, ErrNotFound
	}
	r.stop(nil)
	return r.info(), nil
}

// info describes one recording.
func (m *Manager) info(id string) (Info, bool) {
	m.mu.Lock()
	r, p := m.recs[id], m.past[id]
	m.mu.Unlock()
	if r == nil {
		return p.info, p.info.ID != ""
	}
	return r.info(), true
}

// List describes every recording, of this run and (from their
// manifests) of earlier ones, newest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	recs := make([]*recording, 0, len(m.recs))
	for _, r := range m.recs {
		recs = append(recs, r)
	}
	out := make([]Info, 0, len(recs)+len(m.past))
	for _, p := range m.past {
		out = append(out, p.info)
	}
	m.mu.Unlock()
	for _, r := range recs {
		out = append(out, r.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out
}

// Recording reports whether any recording of room runs.
func (m *Manager) Recording(room string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.room == room && r.active() {
			return true
		}
	}
	return false
}

// RoomEnded stops the room's recordings: a recording is of one consult,
// and must not pick up whoever uses the room's name next.
func (m *Manager) RoomEnded(room string) {
	m.StopRoom(room)
}

// Close stops every recording (server shutdown).
func (m *Manager) Close() {
	m.mu.Lock()
	recs := make([]*recording, 0, len(m.recs))
	for _, r := range m.recs {
		recs = append(recs, r)
	}
	m.mu.Unlock()
	for _, r := range recs {
		r.stop(nil)
	}
	for _, f := range m.Forwards() {
		_ = m.StopForward(f.ID)
	}
	m.closeOnce.Do(func() { close(m.quit) })
	m.mu.Lock()
	m.closed = true // from here on a stop finishes its work itself
	m.mu.Unlock()
	if m.composer != nil {
		// A composite cut short here is made again on the next start.
		m.composer.close()
	}
	m.wg.Wait()
}

func (m *Manager) notify(room string, err error) {
	m.cfg.Notify(room, m.Recording(room), err)
}
