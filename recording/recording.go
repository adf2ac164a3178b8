package recording

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"consult/sfu"
)

// recording is one recording of a room or a participant: a file per
// publishing participant, renewed (part 2, 3, ...) when its set of tracks
// changes, since a WebM file's tracks are fixed when it is created.
type recording struct {
	m                     *Manager
	id, room, participant string
	started               time.Time

	mu      sync.Mutex
	state   string
	err     error
	stopped time.Time
	parts   map[string]*part // by participant id
	files   []*file          // every file, for listing
	// One open at a time per participant: a track that comes while its
	// file is being opened asks for another open once that one is done,
	// so a slower first open never replaces a newer file.
	opening map[string]bool
	again   map[string]bool
	early   map[string]*early // by track id: taps of new tracks until a file takes them
	missing []MissingTrack
	consent Consent
	people  []Person
	only    map[string]bool // when not nil, who may be recorded (they agreed)
	hashes  map[*file]string
	// finished closes once a stopped recording's files are hashed (and
	// its composite made): its manifest is final.
	finished  chan struct{}
	manifest  string
	saveMu    sync.Mutex
	composite *CompositeInfo
}

type part struct {
	file   *file
	stops  []func()
	tracks map[string]bool
	n      int
	timer  *time.Timer
}

func newRecording(m *Manager, id, room, participant string) *recording {
	return &recording{m: m, id: id, room: room, participant: participant, started: time.Now(),
		state: StateRecording, parts: map[string]*part{}, opening: map[string]bool{}, again: map[string]bool{},
		early: map[string]*early{}, hashes: map[*file]string{}, finished: make(chan struct{}),
		manifest: manifestPath(m.cfg.Dir, room, id)}
}

// records reports whether the participant may be recorded.
func (r *recording) records(participant string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.only == nil || r.only[participant]
}

// answered records a later answer; it reports whether the participant
// may now be recorded and was not before.
func (r *recording) answered(a Answer, p Person) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != StateRecording {
		return false
	}
	r.consent.Answers = append(r.consent.Answers, a)
	r.knowLocked(p)
	if r.only == nil || !a.Accepted || r.only[a.Participant] {
		return false
	}
	r.only[a.Participant] = true
	return true
}

// knowLocked adds a member to the manifest's people, or fills in what it
// lacked.
func (r *recording) knowLocked(p Person) {
	if p.ID == "" {
		return
	}
	for i := range r.people {
		if q := &r.people[i]; q.ID == p.ID {
			if p.Role != "" {
				q.Role = p.Role
			}
			if p.Identity != "" {
				q.Identity = p.Identity
			}
			return
		}
	}
	r.people = append(r.people, p)
}

// stoppedAt is when the recording stopped (zero while it runs).
func (r *recording) stoppedAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// finishedWork reports whether the work after the stop is done.
func (r *recording) finishedWork() bool {
	select {
	case <-r.finished:
		return true
	default:
		return false
	}
}

// finish hashes the files of a stopped recording into its manifest, then
// has a room recording composed.
func (r *recording) finish() {
	r.mu.Lock()
	files := append([]*file(nil), r.files...)
	r.mu.Unlock()
	sums := map[*file]string{}
	byName := map[string]string{}
	for _, f := range files {
		if f.gone() {
			continue
		}
		sum, err := fileSHA256(f.path)
		if err != nil {
			r.m.log.Error("recording file hash", zap.String("room", r.room), zap.String("recording", r.id), zap.Error(err))
			continue
		}
		sums[f], byName[filepath.Base(f.path)] = sum, sum
	}
	r.saveWith(func(in *Info) {
		for i := range in.Files {
			in.Files[i].SHA256 = byName[in.Files[i].Name]
		}
	})
	r.mu.Lock()
	for f, sum := range sums {
		r.hashes[f] = sum
	}
	r.mu.Unlock()
	if r.m.composer == nil || r.participant != "" {
		close(r.finished)
		return
	}
	r.composeStopped()
}

// active is read with the manager's lock held too; state only changes
// under r.mu.
func (r *recording) active() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == StateRecording
}

// trackAdded taps a new track at once (see early) and reopens its
// participant's file once the tracks settle.
func (r *recording) trackAdded(participant string, t sfu.TrackInfo) {
	e := &early{}
	_, stop, err := r.m.cfg.Tapper.Tap(r.room, t.ID, e, e.trackEnded)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != StateRecording {
		if err == nil {
			go stop()
		}
		return
	}
	if err == nil {
		e.stop = stop
		r.early[t.ID] = e
	}
	if r.opening[participant] {
		r.again[participant] = true
		return
	}
	r.scheduleLocked(participant)
}

func (r *recording) scheduleLocked(participant string) {
	p := r.parts[participant]
	if p == nil {
		p = &part{}
		r.parts[participant] = p
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(r.m.cfg.Settle, func() { r.open(participant) })
	}
}

// open starts (or renews) a participant's file with its current tracks.
func (r *recording) open(participant string) {
	r.mu.Lock()
	if old := r.parts[participant]; old != nil {
		old.timer = nil
	}
	if r.opening[participant] {
		r.again[participant] = true
		r.mu.Unlock()
		return
	}
	r.opening[participant] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.opening, participant)
		if r.again[participant] {
			delete(r.again, participant)
			if r.state == StateRecording {
				r.scheduleLocked(participant)
			}
		}
		r.mu.Unlock()
	}()
	if !r.records(participant) {
		return
	}
	// The snapshot comes after the mark: a track published from here on
	// asks for another open.
	identity, tracks := r.m.snapshot(r.room, participant)
	r.mu.Lock()
	old := r.parts[participant]
	if r.state != StateRecording || len(tracks) == 0 || old != nil && old.file != nil && sameTracks(old.tracks, tracks) {
		r.mu.Unlock()
		return
	}
	n := 1
	if old != nil {
		n = old.n + 1
	}
	r.mu.Unlock()

	log := r.m.log.With(zap.String("room", r.room), zap.String("participant", participant), zap.String("recording", r.id))
	path, err := fileName(r.m.cfg.Dir, r.room, identity, time.Now(), n, fileExt(tracks))
	if err != nil {
		r.stop(err)
		return
	}
	// Packets early taps hold start the file's clock earlier.
	r.mu.Lock()
	earlies := map[string]*early{}
	for _, t := range tracks {
		if e := r.early[t.ID]; e != nil {
			earlies[t.ID] = e
			delete(r.early, t.ID)
		}
	}
	r.mu.Unlock()
	start := time.Now()
	for _, e := range earlies {
		if at := e.firstArrival(); !at.IsZero() && at.Before(start) {
			start = at
		}
	}
	defer func() {
		for _, e := range earlies { // not taken by a track writer
			e.stop()
		}
	}()
	f, err := openFile(path, tracks, start, func(err error) { r.stop(err) },
		func(t sfu.TrackInfo, why error) { r.trackSkipped(participant, t, why) })
	if f != nil {
		f.participant = participant
	}
	if errors.Is(err, errCodec) {
		return
	}
	if err != nil {
		log.Error("recording file", zap.Error(err))
		r.stop(err)
		return
	}
	var stops []func()
	ids := map[string]bool{}
	for _, tw := range f.tracks {
		if e := earlies[tw.info.ID]; e != nil {
			delete(earlies, tw.info.ID)
			e.attach(tw)
			stops = append(stops, e.stop)
			ids[tw.info.ID] = true
			continue
		}
		_, stop, err := r.m.cfg.Tapper.Tap(r.room, tw.info.ID, tw, tw.close)
		if err != nil {
			tw.close() // the track ended meanwhile
			continue
		}
		stops = append(stops, stop)
		ids[tw.info.ID] = true
	}
	r.mu.Lock()
	if r.state != StateRecording {
		r.mu.Unlock()
		closePart(&part{file: f, stops: stops})
		return
	}
	prev := r.parts[participant]
	r.parts[participant] = &part{file: f, stops: stops, tracks: ids, n: n}
	r.files = append(r.files, f)
	r.knowLocked(Person{ID: participant, Identity: identity})
	r.mu.Unlock()
	if prev != nil {
		closePart(prev)
	}
	r.save() // a crash from here on leaves the file listed for repair
	log.Info("recording file opened", zap.String("path", path), zap.Int("tracks", len(ids)))
}

// trackSkipped reports a track that no file can hold: the recording goes
// on without it, and says so (API, log, the room's hosts, webhooks).
func (r *recording) trackSkipped(participant string, t sfu.TrackInfo, why error) {
	r.mu.Lock()
	r.missing = append(r.missing, MissingTrack{Participant: participant, Track: t.ID, Kind: t.Kind,
		Codec: t.Codec, Reason: why.Error(), At: time.Now()})
	r.mu.Unlock()
	r.m.log.Warn("track not recorded", zap.String("room", r.room), zap.String("recording", r.id),
		zap.String("participant", participant), zap.String("track", t.ID), zap.String("codec", t.Codec), zap.Error(why))
	if r.m.cfg.Incomplete != nil {
		r.m.cfg.Incomplete(r.info(), fmt.Errorf("%s of a participant not recorded: %w", t.Kind, why))
	}
}

func sameTracks(have map[string]bool, tracks []sfu.TrackInfo) bool {
	if len(have) != len(tracks) {
		return false
	}
	for _, t := range tracks {
		if !have[t.ID] {
			return false
		}
	}
	return true
}

func closePart(p *part) {
	if p.timer != nil {
		p.timer.Stop()
	}
	for _, stop := range p.stops {
		stop()
	}
	if p.file != nil {
		p.file.close()
	}
}

// stop ends the recording; err is why, for a failure.
func (r *recording) stop(err error) {
	r.mu.Lock()
	if r.state != StateRecording {
		r.mu.Unlock()
		return
	}
	r.state, r.err, r.stopped = StateStopped, err, time.Now()
	if err != nil {
		r.state = StateFailed
	}
	parts, earlies := r.parts, r.early
	r.parts, r.early = map[string]*part{}, map[string]*early{}
	r.mu.Unlock()
	for _, p := range parts {
		closePart(p)
	}
	for _, e := range earlies {
		e.stop()
	}
	if err != nil {
		r.m.log.Error("recording failed", zap.String("room", r.room), zap.String("recording", r.id), zap.Error(err))
	} else {
		r.m.log.Info("recording stopped", zap.String("room", r.room), zap.String("recording", r.id))
	}
	r.save()
	r.m.notify(r.room, err)
	if r.m.cfg.OnChange != nil {
		r.m.cfg.OnChange(r.info())
	}
	r.m.mu.Lock()
	if r.m.closed { // Close waits for no more work: finish it here
		r.m.mu.Unlock()
		r.finish()
		return
	}
	r.m.wg.Add(1)
	r.m.mu.Unlock()
	go func() {
		defer r.m.wg.Done()
		r.finish()
	}()
}

func (r *recording) info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := Info{ID: r.id, Room: r.room, Participant: r.participant, State: r.state, Started: r.started,
		Files: []FileInfo{}, Missing: append([]MissingTrack(nil), r.missing...), Consent: r.consent,
		People: append([]Person{}, r.people...), Manifest: filepath.Base(r.manifest)}
	in.Consent.Answers = append([]Answer(nil), r.consent.Answers...)
	if r.composite != nil {
		c := *r.composite
		in.Composite = &c
	}
	if r.err != nil {
		in.Error = r.err.Error()
	}
	if !r.stopped.IsZero() {
		t := r.stopped
		in.Stopped = &t
	}
	for _, f := range r.files {
		if f.gone() {
			continue
		}
		b, d, tracks, first := f.stats()
		in.Files = append(in.Files, FileInfo{Path: f.path, Name: filepath.Base(f.path), Participant: f.participant,
			Started: first, Bytes: b, Duration: d, Tracks: tracks, SHA256: r.hashes[f]})
		in.Bytes += b
		in.Duration = max(in.Duration, d)
	}
	return in
}
