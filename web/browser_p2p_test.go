package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/internal/testenv"
	"consult/signaling"
)

// Two pages in a room talk directly; a third page moves the room to the
// SFU and all three see each other; when it leaves, the two go direct
// again. Every switch is make-before-break, and the pages report how long
// the picture stood still.
func TestTwoPagesGoDirectAndAThirdMovesTheRoomToTheSFU(t *testing.T) {
	srv := startServer(t, 0)
	ps, p := newPages(t, 120*time.Second, 3, "ana", "ben")
	ana, ben := p[0], p[1]
	do(t, ana, chromedp.Navigate(roomURL(srv.URL, "duo", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(srv.URL, "duo", "Ben", true)))
	srv.waitMode(t, "duo", "p2p")
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)
	// Same machine: host candidates on both sides (the remote one may be
	// learnt from its first check, as peer-reflexive, before it is
	// signalled).
	st := srv.stats(t)
	if len(st.Successes) != 1 || st.Fallbacks != 0 || (st.Successes["host/host"] != 1 && st.Successes["host/prflx"] != 1) {
		t.Fatalf("stats after the direct call started: %+v, want one host success and no fallback", st)
	}
	for _, p := range []context.Context{ana, ben} {
		if n := eval[int](t, p, serverConnectionsJS); n != 0 {
			t.Errorf("a page on the direct path keeps %d connections to the server", n)
		}
		// Speech on the direct path is sent with RED, as through the
		// server: a lost packet is rebuilt from the next. Chrome's stats
		// name Opus either way; the codec negotiated first is what it
		// sends, and RED's packets carry twice the speech.
		a := waitFor(t, p, "the direct path's audio in RED", 10*time.Second, directAudioJS, func(a directAudio) bool { return a.Codec != "" })
		t.Logf("direct path audio: %s, %.0f bytes of payload a packet", a.Codec, a.Payload)
		if a.Codec != "audio/red" {
			t.Errorf("the direct path's audio is sent as %s, not RED", a.Codec)
		}
	}

	cy := ps.page("cy")
	do(t, cy, chromedp.Navigate(roomURL(srv.URL, "duo", "Cy", true)))
	srv.waitMode(t, "duo", "sfu")
	for i, p := range []context.Context{ana, ben, cy} {
		waitVideoFlowing(t, p, []string{"Ana", "Ben", "Cy"}[i], 2)
	}
	// Ana and Ben each saw the other's picture move from the direct path
	// to the server's.
	st = srv.waitStats(t, "both pages to report their switch", func(s signaling.P2PStats) bool { return s.Switches >= 2 })
	t.Logf("p2p → sfu: %d switches, longest gap %d ms, mean %d ms", st.Switches, st.SwitchGapMax, st.SwitchGapSum/int64(st.Switches))
	if st.SwitchGapMax > 1500 {
		t.Errorf("a picture stood still for %d ms while the room moved to the SFU", st.SwitchGapMax)
	}
	for _, p := range []context.Context{ana, ben} {
		if n := eval[int](t, p, `document.querySelectorAll('.tile[data-remote]').length`); n != 2 {
			t.Errorf("a page shows %d remote tiles after the switch, want 2 (no stale direct tile)", n)
		}
	}

	do(t, cy, chromedp.Navigate("about:blank"))
	srv.waitMode(t, "duo", "p2p")
	before := st.Switches
	st = srv.waitStats(t, "the switch back to the direct path", func(s signaling.P2PStats) bool { return s.Switches >= before+2 })
	t.Logf("sfu → p2p: longest gap so far %d ms", st.SwitchGapMax)
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)
	waitFor(t, ana, "Ana to close her server connections", 10*time.Second, serverConnectionsJS, func(n int) bool { return n == 0 })
	// Both hand-overs ended with both pages receiving on the new path.
	if st := srv.stats(t); st.HandoverTimeouts != 0 {
		t.Errorf("%d hand-overs timed out", st.HandoverTimeouts)
	}
}

// directAudio is what a page sends and receives of audio on the direct
// path: the codec negotiated first for its microphone (empty before the
// path is up), and the mean payload of the packets it receives.
type directAudio struct {
	Codec   string  `json:"codec"`
	Payload float64 `json:"payload"`
}

const directAudioJS = `(async () => {
  const out = {codec: '', payload: 0};
  const pc = window.consultApp?.session?.direct?.pc;
  if (!pc || pc.connectionState !== 'connected') return out;
  const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
  out.codec = tr?.sender.getParameters().codecs?.[0]?.mimeType || '';
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio' && r.packetsReceived > 0) {
      out.payload = r.bytesReceived / r.packetsReceived; // headers not counted
    }
  });
  return out;
})()`

// serverConnectionsJS counts the page's open PeerConnections to the
// server, through the app object the page keeps for debugging.
const serverConnectionsJS = `(() => { const s = window.consultApp?.session; return s ? [s.pub, s.sub].filter(Boolean).length : -1; })()`

// TestTimeToFirstFrameDirectAndSFU measures, for two pages, the time from
// the second page's join to its first remote frame, on the direct path and
// through the SFU. The figures go to the README.
func TestTimeToFirstFrameDirectAndSFU(t *testing.T) {
	const rounds = 3
	direct := startServer(t, 0)
	viaSFU := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}})
	ps, _ := newPages(t, 120*time.Second, 2)
	for _, c := range []struct {
		name string
		srv  *testServer
	}{{"p2p", direct}, {"sfu", viaSFU}} {
		var ms []float64
		for i := range rounds {
			// Fresh tabs each round: a tab that has just left a call may
			// hold its camera and encoder back for a while.
			room := c.name + string(rune('a'+i))
			first, closeFirst := ps.tab("first")
			second, closeSecond := ps.tab("second")
			do(t, first, chromedp.Navigate(roomURL(c.srv.URL, room, "First", true)))
			waitFor(t, first, "the first page to be live", 15*time.Second,
				`document.getElementById('room-view').dataset.state`, func(s string) bool { return s == "live" })
			do(t, second, chromedp.Navigate(roomURL(c.srv.URL, room, "Second", true)))
			ms = append(ms, waitFor(t, second, "the second page's first remote frame", 30*time.Second, firstFrameJS,
				func(v float64) bool { return v > 0 }))
			c.srv.waitMode(t, room, c.name)
			closeSecond()
			closeFirst()
		}
		slices.Sort(ms)
		t.Logf("time to first remote frame, %s: median %.0f ms (runs %.0f)", c.name, ms[len(ms)/2], ms)
	}
}

// firstFrameJS is the time from the page's join to its first remote
// frame, from the marks the client sets, or 0 before that frame.
const firstFrameJS = `(() => {
  const join = performance.getEntriesByName('consult:join').pop();
  const frame = performance.getEntriesByType('mark').find(m => m.name.startsWith('consult:first-frame:'));
  return join && frame ? frame.startTime - join.startTime : 0;
})()`

// waitMode polls /api/rooms until room is in mode.
func (ts *testServer) waitMode(t *testing.T, room, mode string) {
	t.Helper()
	deadline := time.Now().Add(testenv.Scale(20 * time.Second))
	last := ""
	for time.Now().Before(deadline) {
		var rooms []struct {
			Room string `json:"room"`
			Mode string `json:"mode"`
		}
		ts.getJSON(t, "/api/rooms", &rooms)
		for _, r := range rooms {
			if r.Room == room {
				last = r.Mode
			}
		}
		if last == mode {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Fatalf("room %s is in mode %q, want %q", room, last, mode)
}

func (ts *testServer) stats(t *testing.T) signaling.P2PStats {
	t.Helper()
	var st signaling.P2PStats
	ts.getJSON(t, "/api/stats", &st)
	return st
}

// waitStats polls /api/stats until ok accepts them.
func (ts *testServer) waitStats(t *testing.T, what string, ok func(signaling.P2PStats) bool) signaling.P2PStats {
	t.Helper()
	deadline := time.Now().Add(testenv.Scale(20 * time.Second))
	for {
		st := ts.stats(t)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, st)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
}

func (ts *testServer) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
