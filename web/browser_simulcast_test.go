package web_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/internal/shaper"
	"consult/internal/testenv"
	"consult/sfu"
	"consult/signaling"
)

// downAt is what the server forwards to one member, per video track:
// the layer (empty for a track without simulcast), the layer it is
// switching to, and whether audio first paused it.
func (ts *testServer) downAt(t *testing.T, room, member string) map[string]sfu.Link {
	t.Helper()
	out := map[string]sfu.Link{}
	for _, r := range ts.sig.AllRooms() {
		if r.Room != room {
			continue
		}
		for _, p := range r.Members {
			if p.Name != member {
				continue
			}
			for _, l := range r.Downlinks[p.ID].Tracks {
				if l.Kind == "video" {
					out[l.Track] = l
				}
			}
		}
	}
	return out
}

// layersAt is the layer forwarded to member, per video track.
func (ts *testServer) layersAt(t *testing.T, room, member string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, l := range ts.downAt(t, room, member) {
		out[id] = l.Layer
	}
	return out
}

// settled reports whether every video track forwarded to member is
// flowing on the layer chosen for it: none paused, none switching.
func (ts *testServer) settled(t *testing.T, room, member string, want int) bool {
	downs := ts.downAt(t, room, member)
	for _, l := range downs {
		if l.Paused || l.Layer == "" || l.Layer != l.TargetLayer {
			return false
		}
	}
	return len(downs) == want
}

// The acceptance run. Three pages through the server, which asks
// for simulcast, the patient's downlink shaped: at 600 kbit/s and then at
// 300, once the patient's layers have settled, it keeps decoding both
// pictures for 30 s, its link dropping under 1 % of the packets (what
// freezes a picture) and under 2 % of the doctor's and family's audio
// concealed, at no more than the others' widths; the doctor's and the
// family's pages decode as before the cap.
func TestSimulcastKeepsAWeakDownlinkDecoding(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}, simulcast: true})
	_, p := newPages(t, 300*time.Second, 3, "doctor", "family", "patient")
	doctor, family, patient := p[0], p[1], p[2]
	relay := shaped(t, patient)
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "sim", "Dr", true)))
	waitState(t, doctor, "doctor", "live")
	do(t, family, chromedp.Navigate(roomURL(srv.URL, "sim", "Fam", true)))
	do(t, patient, chromedp.Navigate(roomURL(srv.URL, "sim", "Pat", true)))
	waitVideoFlowing(t, doctor, "doctor", 2)
	waitVideoFlowing(t, family, "family", 2)
	waitVideoFlowing(t, patient, "patient", 2)

	// Chrome's cameras arrive as layers: what the server forwards to the
	// family is a layer of each.
	testenv.Eventually(t, 20*time.Second, "the family's videos forwarded as simulcast layers", func() bool {
		n := 0
		for _, l := range srv.layersAt(t, "sim", "Fam") {
			if l != "" {
				n++
			}
		}
		return n == 2
	})

	// window measures the three pages over d.
	type figures struct{ patient, doctor, family inbound }
	window := func(d time.Duration) (before, after figures, secs float64) {
		before = figures{eval[inbound](t, patient, inboundJS), eval[inbound](t, doctor, inboundJS), eval[inbound](t, family, inboundJS)}
		start := time.Now()
		end := start.Add(d)
		testenv.Eventually(t, d+30*time.Second, "the measuring window", func() bool { return time.Now().After(end) })
		after = figures{eval[inbound](t, patient, inboundJS), eval[inbound](t, doctor, inboundJS), eval[inbound](t, family, inboundJS)}
		return before, after, time.Since(start).Seconds()
	}
	fps := func(a, b inbound, secs float64) float64 { return (a.Frames - b.Frames) / secs }
	concealed := func(a, b inbound) float64 { return (a.Concealed - b.Concealed) / max(a.Received-b.Received, 1) }

	// The doctor's and the family's frame rates on free links, for "as
	// before".
	b0, a0, s0 := window(10 * time.Second)
	docFree, famFree := fps(a0.doctor, b0.doctor, s0), fps(a0.family, b0.family, s0)
	t.Logf("free links: patient %.1f frames/s, doctor %.1f, family %.1f", fps(a0.patient, b0.patient, s0), docFree, famFree)

	for _, kbps := range []int{600, 300} {
		relay.Set(shaper.Link{}, shaper.Link{Kbps: kbps, Queue: 300 * time.Millisecond})
		capped := time.Now()
		// Settled: both pictures flowing on their layers for 5 s in a row.
		// When the cap comes down, the estimate falls to GCC's floor and
		// audio first may pause both pictures; each comes back on a retry,
		// and a retry that fails waits twice as long (8, 16, then 32 s,
		// with 2.5 s of probing each): three failures in a row are
		// about 70 s.
		var calm time.Time
		testenv.Eventually(t, 90*time.Second, fmt.Sprintf("the patient's layers settled at %d kbit/s", kbps), func() bool {
			if !srv.settled(t, "sim", "Pat", 2) {
				calm = time.Time{}
				return false
			}
			if calm.IsZero() {
				calm = time.Now()
			}
			return time.Since(calm) >= 5*time.Second
		})
		t.Logf("at %d kbit/s the patient settled on %v %v after the cap", kbps, srv.layersAt(t, "sim", "Pat"),
			time.Since(capped).Round(100*time.Millisecond))

		d0 := relay.Down()
		b, a, secs := window(30 * time.Second)
		d1 := relay.Down()
		overflow := float64(d1.Overflowed-d0.Overflowed) / float64(max(d1.Offered-d0.Offered, 1))
		pf, freezes, lost := fps(a.patient, b.patient, secs), a.patient.Freezes-b.patient.Freezes, concealed(a.patient, b.patient)
		df, ff := fps(a.doctor, b.doctor, secs), fps(a.family, b.family, secs)
		// For the record (this machine's three Chromiums share two cores).
		t.Logf("at %d kbit/s over %.0f s: patient %.1f frames/s decoded (both pictures), %v freezes, %.2f %% audio concealed, widths %v; the link dropped %.2f %% of %d packets",
			kbps, secs, pf, freezes, 100*lost, a.patient.Widths, 100*overflow, d1.Offered-d0.Offered)
		t.Logf("meanwhile: doctor %.1f frames/s, %v freezes, widths %v; family %.1f frames/s, %v freezes, widths %v",
			df, a.doctor.Freezes-b.doctor.Freezes, a.doctor.Widths, ff, a.family.Freezes-b.family.Freezes, a.family.Widths)
		rooms := func() string { b, _ := json.Marshal(srv.sig.AllRooms()); return string(b) }
		// What freezes a picture on a narrow link is the server sending
		// more than it carries: the queue overflows, and a lost packet's
		// repair waits behind the full queue. The test holds the server to
		// that (under 1 % of the packets dropped by the cap) rather than
		// to Chrome's freeze count, which on this machine's two cores also
		// counts the stalls of three Chromiums and a race-detecting server
		// (seen over 10 runs: the patient 0–3 freezes in windows where the
		// link dropped nothing, the pages on free links 0–5).
		if pf < 10 || overflow >= 0.01 || lost >= 0.02 {
			t.Errorf("at %d kbit/s the patient decoded %.1f frames a second, the link dropped %.2f %% of the packets, %.2f %% of the audio concealed "+
				"(want 10 or more, under 1 %%, under 2 %%); rooms %s", kbps, pf, 100*overflow, 100*lost, rooms())
		}
		// The low layer is a quarter of the camera's width: what the
		// patient decodes is no wider than the widest picture the others
		// get.
		for _, w := range a.patient.Widths {
			if w > 0 && w > max(slicesMax(a.doctor.Widths), slicesMax(a.family.Widths)) {
				t.Errorf("the patient decodes %d pixels wide at %d kbit/s, the others %v and %v", w, kbps, a.doctor.Widths, a.family.Widths)
			}
		}
		if df < 0.8*docFree || ff < 0.8*famFree {
			t.Errorf("at %d kbit/s the doctor's and family's pages decoded %.1f and %.1f frames/s, %.1f and %.1f on free links",
				kbps, df, ff, docFree, famFree)
		}
	}
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
