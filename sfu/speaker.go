package sfu

import (
	"slices"
	"sort"
	"time"
)

// Speakers. The server, not each browser, decides who is speaking: every
// publisher puts its microphone's level in each audio packet (RFC 6464,
// level.go), and ten times a second one ticker for the whole SFU turns
// how much of each interval was speech into each room's dominant speaker
// (the one speaker view shows) and its active set (those speaking now,
// for a ring around their picture). One decision for the room means every
// screen shows the same person, and a phone need not meter every stream
// it receives. The dominant speaker changes only when a challenger has
// clearly talked more than it over the last 800 ms and talks more now,
// and not within a second of the last change, so a cough, a "mm-hm" or
// two people talking over each other never flips the picture; a new
// steady speaker takes it about half a second after the last one stopped.
// When everyone is silent it stays on the last speaker, as people expect
// of speaker view. Active membership lasts 600 ms past the last interval
// of speech, so the ring does not flicker between words. A participant
// whose audio is held (muted by a host) or who left drops out of the
// active set at once; one who left stops being the dominant speaker.
//
// The detector is a state machine fed one interval at a time, so tests
// drive it with synthetic intervals and no clock (speakerwatch.go feeds
// it from the up-tracks).

// Speakers is a room's speech activity: participant ids.
type Speakers struct {
	Dominant string   // "" until someone has spoken (or after it left)
	Active   []string // speaking now, sorted
}

const (
	speakerTick = 100 * time.Millisecond
	// An interval with at least half of it speech is one of speaking
	// (for the active set); a single loud packet is not.
	speakingAt = 0.5
	holdTicks  = 6 // active for 600 ms after the last interval of speaking
	longTicks  = 8 // 800 ms: the window a challenger must lead over
	shortTicks = 3 // 300 ms: what "talks now" means
	// To take over, a challenger needs at least 400 ms of speech in the
	// long window (a 200 ms cough has at most 200), and 160 ms more than
	// the dominant speaker there (two people talking over each other do
	// not trade places).
	electAt = 0.5
	leadBy  = 0.2
	// No change within a second of the last: a quick back-and-forth of
	// short turns moves the picture at most once a second.
	dwellTicks = 10
	// Speech beyond an interval's length (packets that bunched up behind
	// a stall) carries into the next ones, up to this much.
	maxCarry = 2 * speakerTick
)

// speakerInput is one participant's interval: the speech heard from it,
// and whether it publishes audio that is not held.
type speakerInput struct {
	id      string
	speech  time.Duration
	audible bool
}

// talker is what the detector keeps of one participant.
type talker struct {
	hist     [longTicks]float64 // speech per interval, 0..1, a ring
	next     int                // where the next interval goes
	carry    time.Duration
	audible  bool
	quietFor int // intervals since it last spoke; over holdTicks: not active
}

func (t *talker) push(v float64) {
	t.hist[t.next] = v
	t.next = (t.next + 1) % longTicks
}

// recent is the share of the last n intervals that was speech.
func (t *talker) recent(n int) float64 {
	sum := 0.0
	for i := 1; i <= n; i++ {
		sum += t.hist[(t.next-i+longTicks)%longTicks]
	}
	return sum / float64(n)
}

// speakerDetector decides one room's speakers.
type speakerDetector struct {
	talkers  map[string]*talker
	dominant string
	since    int      // intervals since the dominant speaker last changed
	out      Speakers // as last reported
}

func newSpeakerDetector() *speakerDetector {
	return &speakerDetector{talkers: map[string]*talker{}}
}

// tick advances the detector by one interval. in lists every participant
// of the room now; one missing has left. It returns the room's speakers
// and whether they differ from what it returned last time it said so.
func (d *speakerDetector) tick(in []speakerInput) (Speakers, bool) {
	present := make(map[string]bool, len(in))
	for _, x := range in {
		present[x.id] = true
		t := d.talkers[x.id]
		if t == nil {
			t = &talker{quietFor: holdTicks + 1}
			d.talkers[x.id] = t
		}
		t.observe(x)
	}
	for id := range d.talkers {
		if !present[id] {
			delete(d.talkers, id)
		}
	}
	if _, ok := d.talkers[d.dominant]; !ok {
		d.dominant = ""
	}
	d.since++
	d.elect()

	s := Speakers{Dominant: d.dominant, Active: []string{}}
	for id, t := range d.talkers {
		if t.audible && t.quietFor <= holdTicks {
			s.Active = append(s.Active, id)
		}
	}
	sort.Strings(s.Active)
	if s.Dominant == d.out.Dominant && slices.Equal(s.Active, d.out.Active) {
		return s, false
	}
	d.out = s
	return s, true
}

// observe records one interval of t.
func (t *talker) observe(x speakerInput) {
	t.audible = x.audible
	if !x.audible {
		// Held: what it said before does not count for later, and it
		// is not speaking now.
		*t = talker{quietFor: holdTicks + 1}
		return
	}
	s := x.speech + t.carry
	t.carry = min(max(s-speakerTick, 0), maxCarry)
	v := min(float64(s)/float64(speakerTick), 1)
	t.push(v)
	switch {
	case v >= speakingAt:
		t.quietFor = 0
	case t.quietFor <= holdTicks:
		t.quietFor++
	}
}

// elect makes the most active challenger the dominant speaker when it has
// talked enough, and clearly more than the dominant speaker.
func (d *speakerDetector) elect() {
	if d.dominant != "" && d.since < dwellTicks {
		return
	}
	var best string
	var bt *talker
	for id, t := range d.talkers {
		if id != d.dominant && t.audible && (bt == nil || ahead(t, id, bt, best)) {
			best, bt = id, t
		}
	}
	if bt == nil || bt.recent(longTicks) < electAt {
		return
	}
	if cur := d.talkers[d.dominant]; cur != nil {
		if bt.recent(longTicks) <= cur.recent(longTicks)+leadBy || bt.recent(shortTicks) <= cur.recent(shortTicks) {
			return
		}
	}
	d.dominant, d.since = best, 0
}

// ahead orders challengers: most speech over the long window, then now,
// then by id (so that the result does not depend on map order).
func ahead(a *talker, aid string, b *talker, bid string) bool {
	if la, lb := a.recent(longTicks), b.recent(longTicks); la != lb {
		return la > lb
	}
	if sa, sb := a.recent(shortTicks), b.recent(shortTicks); sa != sb {
		return sa > sb
	}
	return aid < bid
}
