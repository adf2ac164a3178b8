package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The layouts of a group consult: the grid, speaker view, a pinned tile,
// and a shared screen on the main stage with the presenter's camera in the
// strip; the picture-in-picture button pops the main picture out. Each
// layout is saved as a screenshot at desktop (1280×800) and phone size
// (390×844, and turned: 844×390), and checked for controls and marks that
// overlap or fall off the screen.
func TestLayoutsSpeakerViewPinAndScreenShare(t *testing.T) {
	srv := startServer(t, 20*time.Second)
	_, p := newPages(t, 120*time.Second, 3, "doctor", "patient", "interpreter")
	doctor, patient, interp := p[0], p[1], p[2]
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "layouts", "Dr Amara Lee", true)))
	do(t, patient, chromedp.Navigate(roomURL(srv.URL, "layouts", "Jordan Patel", true)))
	do(t, interp, chromedp.Navigate(roomURL(srv.URL, "layouts", "Sam Rivera", true)))
	vids := waitVideoFlowing(t, doctor, "doctor", 2)
	pid := map[string]string{}
	for _, v := range vids {
		pid[v.Name] = v.PID
	}
	patientTile := fmt.Sprintf(`document.querySelector('.tile[data-pid=%s]')`, jsString(pid["Jordan Patel"]))

	layout := func(ctx context.Context) string {
		return eval[string](t, ctx, `document.getElementById('grid').dataset.layout`)
	}
	shots := func(name string) {
		t.Helper()
		screenshot(t, doctor, name+"-desktop", 1280, 800, false)
		checkNoOverlap(t, doctor, name+" (desktop)")
		screenshot(t, doctor, name+"-phone", 390, 844, true)
		checkNoOverlap(t, doctor, name+" (phone)")
		screenshot(t, doctor, name+"-phone-landscape", 844, 390, true)
		checkNoOverlap(t, doctor, name+" (phone, landscape)")
		do(t, doctor, chromedp.EmulateViewport(1280, 800))
	}
	if l := layout(doctor); l != "grid" {
		t.Fatalf("layout %q with three people, want grid", l)
	}
	shots("layout-grid")

	// Speaker view: one remote tile on the main stage, the rest in the strip.
	click(t, doctor, "#btn-layout")
	waitFor(t, doctor, "speaker view", 10*time.Second,
		`document.getElementById('grid').dataset.layout + ' ' + document.querySelectorAll('.tile[data-remote][data-main="true"]').length`,
		func(s string) bool { return s == "focus 1" })
	if p := eval[string](t, doctor, `document.getElementById('btn-layout').getAttribute('aria-pressed')`); p != "true" {
		t.Errorf("layout button aria-pressed %q in speaker view", p)
	}
	shots("layout-speaker")
	click(t, doctor, "#btn-layout")
	waitFor(t, doctor, "the grid again", 5*time.Second, `document.getElementById('grid').dataset.layout`,
		func(s string) bool { return s == "grid" })

	// Pin the patient: their tile takes the main stage until unpinned.
	click(t, doctor, chromedp.CSS(fmt.Sprintf(`.tile[data-pid=%s] .tile-pin`, jsString(pid["Jordan Patel"]))))
	waitFor(t, doctor, "the pinned patient on the main stage", 5*time.Second,
		`[document.getElementById('grid').dataset.layout, `+patientTile+`.dataset.main, `+patientTile+`.dataset.pinned,
		  `+patientTile+`.querySelector('.tile-pin').getAttribute('aria-label')].join('|')`,
		func(s string) bool { return s == "focus|true|true|Unpin Jordan Patel" })
	shots("layout-pinned")

	// The picture-in-picture button pops the main tile's video out.
	click(t, doctor, "#btn-pip")
	waitFor(t, doctor, "the pinned picture popped out", 10*time.Second,
		`document.pictureInPictureElement === `+patientTile+`.querySelector('video')`, func(b bool) bool { return b })
	click(t, doctor, "#btn-pip")
	waitFor(t, doctor, "the picture back", 10*time.Second, `document.pictureInPictureElement === null`, func(b bool) bool { return b })

	click(t, doctor, chromedp.CSS(fmt.Sprintf(`.tile[data-pid=%s] .tile-pin`, jsString(pid["Jordan Patel"]))))
	waitFor(t, doctor, "unpinned", 5*time.Second, `document.getElementById('grid').dataset.layout + ' ' + `+patientTile+`.dataset.pinned`,
		func(s string) bool { return s == "grid false" })

	// The patient shares a screen: the share is on the main stage of the
	// others' pages, the patient's camera stays in the strip, marked.
	click(t, patient, "#btn-share")
	screenTile := fmt.Sprintf(`document.querySelector('.tile[data-pid=%s]')`, jsString(pid["Jordan Patel"]+":screen"))
	for _, ctx := range []context.Context{doctor, interp} {
		waitFor(t, ctx, "the share on the main stage", 20*time.Second,
			`(() => { const s = `+screenTile+`; const c = document.querySelector('.tile[data-pid=`+jsString(pid["Jordan Patel"])+`]');
			  return [document.getElementById('grid').dataset.layout, s?.dataset.main, !!s && s.querySelector('video').videoWidth > 0,
			    c?.dataset.main, c?.dataset.sharing, c?.dataset.video].join(' '); })()`,
			func(s string) bool { return s == "focus true true false true on" })
	}
	shots("layout-screenshare")
	click(t, patient, "#btn-share")
	waitFor(t, doctor, "the grid after the share", 10*time.Second, `document.getElementById('grid').dataset.layout`,
		func(s string) bool { return s == "grid" })

	// The layout functions: four people on a portrait phone get a 2×2
	// grid (not one thin column), on a laptop 2×2 as well; two on a
	// laptop, side by side.
	cols := eval[[]int](t, doctor, `import('/js/stage.js').then(m => [m.bestLayout(4, 374, 620).cols, m.bestLayout(4, 1252, 690).cols, m.bestLayout(2, 1252, 690).cols])`)
	if fmt.Sprint(cols) != "[2 2 2]" {
		t.Errorf("grid columns for 4 on a phone, 4 and 2 on a laptop: %v, want [2 2 2]", cols)
	}
}

// checkNoOverlap fails if two visible controls or marks of the room (the
// control bar's buttons, each tile's label, connection mark, pin and
// presenting mark) overlap, or one falls outside the window.
func checkNoOverlap(t *testing.T, ctx context.Context, screen string) {
	t.Helper()
	problems := eval[[]string](t, ctx, `(() => {
	  const W = innerWidth, H = innerHeight, out = [];
	  const seen = (el) => { const s = getComputedStyle(el); const r = el.getBoundingClientRect();
	    return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0 && el.closest('[hidden]') === null; };
	  const name = (el) => (el.id || el.className.baseVal || el.className) + '@' + (el.closest('.tile')?.dataset.pid || 'bar');
	  const bar = [...document.querySelectorAll('.controls button')].filter(seen);
	  for (const el of bar) {
	    const r = el.getBoundingClientRect();
	    if (r.left < 0 || r.top < 0 || r.right > W + 0.5 || r.bottom > H + 0.5) out.push('off screen: ' + name(el));
	  }
	  const pairs = (els) => { for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
	    const a = els[i].getBoundingClientRect(), b = els[j].getBoundingClientRect();
	    if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) out.push(name(els[i]) + ' over ' + name(els[j]));
	  } };
	  pairs(bar);
	  for (const tile of document.querySelectorAll('.tile')) {
	    if (!seen(tile)) continue;
	    const marks = [...tile.querySelectorAll('.tile-label, .tile-net, .tile-pin, .tile-share')].filter(seen);
	    pairs(marks);
	    const tr = tile.getBoundingClientRect();
	    for (const m of marks) { const r = m.getBoundingClientRect();
	      if (r.left < tr.left - 0.5 || r.right > tr.right + 0.5 || r.top < tr.top - 0.5 || r.bottom > tr.bottom + 0.5) out.push('outside its tile: ' + name(m)); }
	  }
	  const tiles = [...document.querySelectorAll('#grid .tile')].filter(seen);
	  pairs(tiles);
	  return out;
	})()`)
	for _, p := range problems {
		t.Errorf("%s: %s", screen, p)
	}
}
