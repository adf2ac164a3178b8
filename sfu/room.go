package sfu

import (
	"sync"

	"go.uber.org/zap"
)

// Room is a set of participants that receive each other's tracks.
type Room struct {
	name string
	sfu  *SFU
	log  *zap.Logger

	mu           sync.Mutex
	participants map[string]*Participant
	tracks       []*UpTrack
}

func newRoom(s *SFU, name string) *Room {
	return &Room{name: name, sfu: s, log: s.log.With(zap.String("room", name)),
		participants: map[string]*Participant{}}
}

// join registers p and subscribes it to the tracks already in the room.
// Registration and the track snapshot happen under one lock, as do track
// publication and the participant snapshot, so a participant joining while
// a track is published ends up subscribed exactly once.
func (r *Room) join(params ParticipantParams) (*Participant, error) {
	p, err := newParticipant(r, params)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if _, dup := r.participants[p.id]; dup {
		r.mu.Unlock()
		p.closePCs()
		return nil, ErrDuplicateID
	}
	r.participants[p.id] = p
	tracks := append([]*UpTrack(nil), r.tracks...)
	r.mu.Unlock()
	p.log.Info("participant joined", zap.Int("tracks", len(tracks)))
	if p.params.CanSubscribe {
		for _, t := range tracks {
			p.subscribe(t)
		}
		if len(tracks) > 0 {
			p.negotiate()
		}
	}
	return p, nil
}

// publish adds a track and subscribes every other participant to it.
func (r *Room) publish(t *UpTrack) {
	r.mu.Lock()
	if _, ok := r.participants[t.info.Participant]; !ok {
		r.mu.Unlock()
		t.close()
		return
	}
	r.tracks = append(r.tracks, t)
	subs := make([]*Participant, 0, len(r.participants))
	for id, p := range r.participants {
		if id != t.info.Participant && p.params.CanSubscribe {
			subs = append(subs, p)
		}
	}
	r.mu.Unlock()
	for _, p := range subs {
		if p.subscribe(t) {
			p.negotiate()
		}
	}
}

// unpublish removes a track; its down-tracks are torn down by the track.
func (r *Room) unpublish(t *UpTrack) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.tracks {
		if x == t {
			r.tracks = append(r.tracks[:i], r.tracks[i+1:]...)
			return true
		}
	}
	return false
}

// leave removes p and returns the tracks it had published.
func (r *Room) leave(p *Participant) []*UpTrack {
	r.mu.Lock()
	if r.participants[p.id] == p {
		delete(r.participants, p.id)
	}
	var mine []*UpTrack
	kept := r.tracks[:0]
	for _, t := range r.tracks {
		if t.info.Participant == p.id {
			mine = append(mine, t)
		} else {
			kept = append(kept, t)
		}
	}
	clear(r.tracks[len(kept):])
	r.tracks = kept
	r.mu.Unlock()
	r.sfu.dropRoomIfEmpty(r)
	return mine
}

func (r *Room) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.participants) == 0
}

// trackList is the room's tracks now, to visit without r.mu held.
func (r *Room) trackList() []*UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*UpTrack(nil), r.tracks...)
}

func (r *Room) snapshot() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	return ps
}

func (r *Room) addStats(st *Stats) {
	r.mu.Lock()
	st.Participants += len(r.participants)
	st.Tracks += len(r.tracks)
	tracks := append([]*UpTrack(nil), r.tracks...)
	r.mu.Unlock()
	for _, t := range tracks {
		t.addStats(st)
	}
}
