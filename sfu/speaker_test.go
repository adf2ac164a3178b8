package sfu

import (
	"slices"
	"testing"
	"time"
)

// speakerScript drives a detector with synthetic intervals: each participant's
// share of speech per interval, no clock.
type speakerScript struct {
	t       *testing.T
	d       *speakerDetector
	ids     []string
	speech  map[string]float64 // share of each interval that is speech
	held    map[string]bool
	ticks   int
	last    Speakers
	reports int
	// changes of the dominant speaker, in order
	dominants []string
}

func newScript(t *testing.T, ids ...string) *speakerScript {
	return &speakerScript{t: t, d: newSpeakerDetector(), ids: ids, speech: map[string]float64{}, held: map[string]bool{}}
}

// talk sets who speaks how much from now on (others keep theirs).
func (s *speakerScript) talk(id string, share float64) *speakerScript {
	s.speech[id] = share
	return s
}

// run advances n intervals; each calls check, when set, after it.
func (s *speakerScript) run(n int, check func(Speakers)) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		in := make([]speakerInput, 0, len(s.ids))
		for _, id := range s.ids {
			in = append(in, speakerInput{id: id, audible: !s.held[id],
				speech: time.Duration(s.speech[id] * float64(speakerTick))})
		}
		sp, changed := s.d.tick(in)
		s.ticks++
		if changed {
			s.reports++
			if sp.Dominant != s.last.Dominant {
				s.dominants = append(s.dominants, sp.Dominant)
			}
		} else if sp.Dominant != s.last.Dominant || !slices.Equal(sp.Active, s.last.Active) {
			s.t.Fatalf("tick %d: %+v changed from %+v without saying so", s.ticks, sp, s.last)
		}
		s.last = sp
		if check != nil {
			check(sp)
		}
	}
}

// until runs until cond holds and returns how many intervals it took;
// it fails after max.
func (s *speakerScript) until(max int, what string, cond func(Speakers) bool) int {
	s.t.Helper()
	for i := 1; i <= max; i++ {
		s.run(1, nil)
		if cond(s.last) {
			return i
		}
	}
	s.t.Fatalf("after %d intervals (%v), still not %s: %+v", max, time.Duration(max)*speakerTick, what, s.last)
	return 0
}

func dominantIs(id string) func(Speakers) bool {
	return func(sp Speakers) bool { return sp.Dominant == id }
}

func TestSteadySpeakerBecomesDominantWithinHalfASecond(t *testing.T) {
	s := newScript(t, "a", "b", "c")
	s.run(20, func(sp Speakers) {
		if sp.Dominant != "" || len(sp.Active) != 0 {
			t.Fatalf("silence gave %+v", sp)
		}
	})
	if s.reports != 0 {
		t.Fatalf("%d reports of silence", s.reports)
	}
	s.talk("a", 1)
	n := s.until(10, "a dominant", dominantIs("a"))
	// 400 ms of speech in the 800 ms window.
	if n != 4 {
		t.Fatalf("a took over after %d intervals, want 4", n)
	}
	if !slices.Equal(s.last.Active, []string{"a"}) {
		t.Fatalf("active %v", s.last.Active)
	}
	reports := s.reports
	s.run(30, nil)
	if s.reports != reports {
		t.Fatalf("%d reports of nothing new", s.reports-reports)
	}
}

func TestCoughDoesNotTakeTheDominantSpeaker(t *testing.T) {
	for _, c := range []struct {
		name  string
		first func(s *speakerScript) // before the cough
		cough []float64              // b's intervals
		want  string                 // the dominant speaker throughout
	}{
		{"while the speaker talks", func(s *speakerScript) { s.talk("a", 1).run(30, nil) }, []float64{1, 1}, "a"},
		{"just after the speaker stops", func(s *speakerScript) { s.talk("a", 1).run(30, nil); s.talk("a", 0) }, []float64{1, 1}, "a"},
		{"in a long silence", func(s *speakerScript) { s.talk("a", 1).run(30, nil); s.talk("a", 0).run(30, nil) }, []float64{1, 1}, "a"},
		{"arriving in one burst", func(s *speakerScript) { s.talk("a", 1).run(30, nil); s.talk("a", 0).run(30, nil) }, []float64{2, 0}, "a"},
		{"two coughs", func(s *speakerScript) { s.talk("a", 1).run(30, nil); s.talk("a", 0).run(30, nil) }, []float64{1, 1, 0, 0, 1}, "a"},
		{"before anyone spoke", func(s *speakerScript) {}, []float64{1, 1}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScript(t, "a", "b")
			c.first(s)
			sawB := false
			check := func(sp Speakers) {
				if sp.Dominant != c.want {
					t.Fatalf("tick %d: dominant %q, want %q", s.ticks, sp.Dominant, c.want)
				}
				sawB = sawB || slices.Contains(sp.Active, "b")
			}
			for _, v := range c.cough {
				s.talk("b", v).run(1, check)
			}
			s.talk("b", 0).run(40, check)
			if !sawB {
				t.Fatal("the cough never showed in the active set")
			}
			if slices.Contains(s.last.Active, "b") {
				t.Fatal("b still active long after its cough")
			}
		})
	}
}

func TestNewSteadySpeakerTakesOverWithinASecond(t *testing.T) {
	for _, c := range []struct {
		name   string
		shares []float64 // b's speech, interval by interval, repeating
		within int
	}{
		{"continuous", []float64{1}, 5},
		{"with pauses between words", []float64{1, 1, 0.6, 1, 0, 1, 1, 0.8}, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScript(t, "a", "b", "c")
			s.talk("a", 1).run(30, nil)
			s.talk("a", 0)
			n := 0
			for s.last.Dominant != "b" {
				if n >= 10 {
					t.Fatalf("b not dominant after %v: %+v", time.Duration(n)*speakerTick, s.last)
				}
				s.talk("b", c.shares[n%len(c.shares)]).run(1, nil)
				n++
			}
			if n > c.within {
				t.Fatalf("b took over after %d intervals, want at most %d", n, c.within)
			}
			t.Logf("b took over after %v", time.Duration(n)*speakerTick)
			if !slices.Equal(s.dominants, []string{"a", "b"}) {
				t.Fatalf("dominant speakers %v", s.dominants)
			}
		})
	}
}

func TestTalkingOverEachOtherKeepsTheDominantSpeaker(t *testing.T) {
	s := newScript(t, "a", "b")
	s.talk("a", 1).run(30, nil)
	s.talk("b", 1).run(50, func(sp Speakers) {
		if sp.Dominant != "a" {
			t.Fatalf("b took over while a went on talking: %+v", sp)
		}
		if s.ticks > 31 && !slices.Equal(sp.Active, []string{"a", "b"}) {
			t.Fatalf("active %v", sp.Active)
		}
	})
	// A softer speaker does not take over either.
	s.talk("b", 0.9).talk("a", 0.8).run(50, func(sp Speakers) {
		if sp.Dominant != "a" {
			t.Fatalf("a slightly busier b took over: %+v", sp)
		}
	})
	s.talk("a", 0)
	s.until(10, "b dominant once a stopped", dominantIs("b"))
}

func TestQuickTurnsMoveThePictureAtMostOnceASecond(t *testing.T) {
	s := newScript(t, "a", "b")
	s.talk("a", 1).run(20, nil)
	for i := 0; i < 20; i++ { // 300 ms turns for 12 s
		s.talk("a", 0).talk("b", 1).run(3, nil)
		s.talk("b", 0).talk("a", 1).run(3, nil)
	}
	if n := len(s.dominants) - 1; n > 12 {
		t.Fatalf("%d changes in 12 s of quick turns: %v", n, s.dominants)
	}
	t.Logf("%d changes in 12 s of 300 ms turns", len(s.dominants)-1)
}

func TestSilenceKeepsTheLastSpeakerAndActiveHolds(t *testing.T) {
	s := newScript(t, "a", "b")
	s.talk("a", 1).run(10, nil)
	s.talk("a", 0)
	for i := 1; i <= 30; i++ {
		s.run(1, nil)
		active := slices.Contains(s.last.Active, "a")
		// 600 ms past the last interval of speech, not longer.
		if want := i <= 6; active != want {
			t.Fatalf("%v after a stopped: active %v, want %v", time.Duration(i)*speakerTick, active, want)
		}
		if s.last.Dominant != "a" {
			t.Fatalf("silence dropped the dominant speaker: %+v", s.last)
		}
	}
	// A gap between words does not drop it from the active set.
	s.talk("a", 1).run(3, nil)
	for _, v := range []float64{0, 0, 0, 0, 0, 1, 0, 0, 1, 0.1, 1} {
		s.talk("a", v).run(1, func(sp Speakers) {
			if !slices.Contains(sp.Active, "a") {
				t.Fatalf("a left the active set between words at tick %d", s.ticks)
			}
		})
	}
}

func TestHeldOrGoneLeavesTheActiveSetAtOnce(t *testing.T) {
	s := newScript(t, "a", "b", "c")
	s.talk("a", 1).run(20, nil)
	if !slices.Equal(s.last.Active, []string{"a"}) || s.last.Dominant != "a" {
		t.Fatalf("%+v", s.last)
	}
	// A host mutes a mid-sentence: out of the active set in the next
	// interval, still the last dominant speaker.
	s.held["a"] = true
	s.run(1, nil)
	if len(s.last.Active) != 0 || s.last.Dominant != "a" {
		t.Fatalf("after the hold: %+v", s.last)
	}
	// Unmuted and silent, it is not active again from what it said
	// before the hold.
	s.held["a"] = false
	s.talk("a", 0).run(1, nil)
	if slices.Contains(s.last.Active, "a") {
		t.Fatalf("a active again after the hold: %+v", s.last)
	}
	// b, who talks, takes over, then leaves: gone from both.
	s.talk("b", 1).until(10, "b dominant", dominantIs("b"))
	s.ids = []string{"a", "c"}
	s.run(1, nil)
	if s.last.Dominant != "" || len(s.last.Active) != 0 {
		t.Fatalf("after b left: %+v", s.last)
	}
	// The next one to talk takes the empty place like the first did.
	s.talk("c", 1)
	if n := s.until(10, "c dominant", dominantIs("c")); n != 4 {
		t.Fatalf("c took the empty place after %d intervals", n)
	}
	// A muted dominant speaker gives way to one who talks as soon as
	// that one has talked enough: what it said before the hold counts
	// for nothing.
	s.run(20, nil)
	s.held["c"] = true
	s.talk("a", 1)
	if n := s.until(10, "a dominant", dominantIs("a")); n != 4 {
		t.Fatalf("a took over from muted c after %d intervals", n)
	}
}

func TestHeldSpeechDoesNotCountAfterTheHold(t *testing.T) {
	s := newScript(t, "a", "b")
	s.talk("a", 1).run(20, nil)
	s.talk("a", 0).talk("b", 1).run(3, nil) // b is 300 ms into taking over
	s.held["b"] = true
	s.run(1, nil)
	s.held["b"] = false
	s.talk("b", 0).run(20, func(sp Speakers) {
		if sp.Dominant != "a" {
			t.Fatalf("b took over on speech from before its hold: %+v", sp)
		}
	})
}
