package sfu

import "time"

// speakerWatch is the SFU-wide ticker of the speaker detector
// (speaker.go): every speakerTick it reads how much speech each room's
// audio up-tracks heard since the last tick and reports the rooms whose
// speakers changed. Like the allocator, it runs on its own goroutine and
// reads the tracks' counters without stopping their readers.
type speakerWatch struct {
	s      *SFU
	report func(room string, sp Speakers)
	rooms  map[*Room]*roomSpeakers
	done   chan struct{} // closed by SFU.Close
	exited chan struct{} // closed when run returns
}

// roomSpeakers is one room's detector and what it read last.
type roomSpeakers struct {
	det  *speakerDetector
	last map[*UpTrack]uint64 // each audio track's speech total at the last tick
}

func newSpeakerWatch(s *SFU, report func(string, Speakers)) *speakerWatch {
	return &speakerWatch{s: s, report: report, rooms: map[*Room]*roomSpeakers{},
		done: make(chan struct{}), exited: make(chan struct{})}
}

func (w *speakerWatch) run() {
	defer close(w.exited)
	tick := time.NewTicker(speakerTick)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-w.done:
			return
		case now := <-tick.C:
			w.tick(intervals(now.Sub(last)))
			last = now
		}
	}
}

// intervals is how many detector intervals a tick that came after d
// stands for. On a busy machine a tick comes late (and the ones it
// overran never come), so the detector is stepped as many times as the
// time that passed, and its windows keep their length in time.
func intervals(d time.Duration) int {
	n := int((d + speakerTick/2) / speakerTick)
	return min(max(n, 1), 2*longTicks)
}

// tick steps every room's detector over n intervals and reports the
// changes, with no lock held. A room that has gone (its last participant
// left the SFU: the call ended, or moved to the direct path) has no
// speakers any more, and says so, unless a room of the same name has
// taken its place.
func (w *speakerWatch) tick(n int) {
	rooms := w.s.roomList()
	now := make(map[*Room]bool, len(rooms))
	names := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		now[r], names[r.name] = true, true
	}
	for r, rs := range w.rooms {
		if now[r] {
			continue
		}
		delete(w.rooms, r) // its tracks' counters with it
		if last := rs.det.out; !names[r.name] && (last.Dominant != "" || len(last.Active) > 0) {
			w.report(r.name, Speakers{Active: []string{}})
		}
	}
	for _, r := range rooms {
		rs := w.rooms[r]
		if rs == nil {
			rs = &roomSpeakers{det: newSpeakerDetector()}
			w.rooms[r] = rs
		}
		if sp, changed := rs.step(r, n); changed {
			w.report(r.name, sp)
		}
	}
}

// step feeds r's detector what the room's tracks heard since the last
// tick, shared out over n intervals.
func (rs *roomSpeakers) step(r *Room, n int) (Speakers, bool) {
	ps := r.snapshot()
	in := make([]speakerInput, len(ps))
	at := make(map[string]int, len(ps))
	for i, p := range ps {
		in[i].id = p.id
		at[p.id] = i
	}
	last := make(map[*UpTrack]uint64, len(rs.last))
	for _, t := range r.audioTracks() {
		i, ok := at[t.info.Participant]
		if !ok {
			continue // its publisher is leaving
		}
		total := t.level.speech.Load()
		last[t] = total
		if t.held != nil && t.held.Load() {
			continue
		}
		in[i].audible = true
		// A track new since the last tick counts all it heard: it has
		// been read for about an interval at most.
		in[i].speech += rtpDuration(total - rs.last[t])
	}
	rs.last = last
	for i := range in {
		in[i].speech /= time.Duration(n)
	}
	var sp Speakers
	changed := false
	for range n {
		var c bool
		sp, c = rs.det.tick(in)
		changed = changed || c
	}
	return sp, changed
}

// audioTracks is the room's audio up-tracks now.
func (r *Room) audioTracks() []*UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*UpTrack
	for _, t := range r.tracks {
		if t.info.Kind == "audio" {
			out = append(out, t)
		}
	}
	return out
}
