package web_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/internal/shaper"
	"consult/internal/testenv"
	"consult/signaling"
)

// layersAt is what the server forwards to one member: per track, the
// layer (empty for a track without simulcast).
func (ts *testServer) layersAt(t *testing.T, room, member string) map[string]string {
	t.Helper()
	out := map[string]string{}
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
					out[l.Track] = l.Layer
				}
			}
		}
	}
	return out
}

// Three pages through the server, which asks for simulcast, the
// patient's downlink shaped. Chrome sends its camera as layers; capped at
// 250 kbit/s, the patient is sent the low layers and keeps decoding,
// while the doctor and the family go on receiving more.
func TestSimulcastKeepsAWeakDownlinkDecoding(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}, simulcast: true})
	_, p := newPages(t, 150*time.Second, 3, "doctor", "family", "patient")
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

	relay.Set(shaper.Link{}, shaper.Link{Kbps: 250, Queue: 300 * time.Millisecond})
	capped := time.Now()
	testenv.Eventually(t, 30*time.Second, "the patient on the low layers", func() bool {
		for _, l := range srv.layersAt(t, "sim", "Pat") {
			if l != "q" {
				return false
			}
		}
		return true
	})
	t.Logf("at 250 kbit/s the patient was on the low layers %v after the cap", time.Since(capped).Round(100*time.Millisecond))

	pb, db, fb := eval[inbound](t, patient, inboundJS), eval[inbound](t, doctor, inboundJS), eval[inbound](t, family, inboundJS)
	start := time.Now()
	end := start.Add(15 * time.Second)
	testenv.Eventually(t, 30*time.Second, "fifteen seconds on the capped link", func() bool { return time.Now().After(end) })
	pa, da, fa := eval[inbound](t, patient, inboundJS), eval[inbound](t, doctor, inboundJS), eval[inbound](t, family, inboundJS)
	secs := time.Since(start).Seconds()
	fps := func(a, b inbound) float64 { return (a.Frames - b.Frames) / secs }
	concealed := func(a, b inbound) float64 { return (a.Concealed - b.Concealed) / max(a.Received-b.Received, 1) }
	// For the record (this machine's three Chromiums share two cores).
	t.Logf("at 250 kbit/s over %.0f s: patient %.1f frames/s decoded (both pictures), %v freezes, %.1f %% audio concealed, widths %v",
		secs, fps(pa, pb), pa.Freezes-pb.Freezes, 100*concealed(pa, pb), pa.Widths)
	t.Logf("meanwhile: doctor %.1f frames/s, %v freezes, widths %v; family %.1f frames/s, %v freezes, widths %v",
		fps(da, db), da.Freezes-db.Freezes, da.Widths, fps(fa, fb), fa.Freezes-fb.Freezes, fa.Widths)
	if fps(pa, pb) < 2 {
		b, _ := json.Marshal(srv.sig.AllRooms())
		t.Errorf("the patient decoded %.1f frames a second at 250 kbit/s; rooms %s", fps(pa, pb), b)
	}
	// The low layer is a quarter of the camera's width: what the patient
	// decodes is no wider than the widest picture the others get.
	for _, w := range pa.Widths {
		if w > 0 && w > max(slicesMax(da.Widths), slicesMax(fa.Widths)) {
			t.Errorf("the patient decodes %d pixels wide on the capped link, the others %v and %v", w, da.Widths, fa.Widths)
		}
	}
	if fps(da, db) < 2 || fps(fa, fb) < 2 {
		t.Errorf("the doctor's and family's pages stalled: %.1f and %.1f frames/s", fps(da, db), fps(fa, fb))
	}
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
