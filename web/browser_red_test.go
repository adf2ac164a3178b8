package web_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/protocol"

	"consult/internal/shaper"
	"consult/internal/testenv"
	"consult/signaling"
)

// audioFrom is what a page receives of one member's microphone.
type audioFrom struct {
	Received  float64 `json:"received"`
	Concealed float64 `json:"concealed"`
	Frames    float64 `json:"frames"`   // of that member's camera
	Freezes   float64 `json:"freezes"`  // likewise
	NACKs     float64 `json:"nacks"`    // the page sent for that camera
	Repaired  float64 `json:"repaired"` // packets of it that came again (on the RTX stream)
}

// audioFromJS reads a page's inbound streams of the member pid (the
// server names each track "<participant id>:…").
func audioFromJS(pid string) string {
	return fmt.Sprintf(`(async () => {
  const s = window.consultApp?.session?.sub;
  const out = {received: 0, concealed: 0, frames: 0, freezes: 0, nacks: 0, repaired: 0};
  if (!s) return out;
  const st = await s.getStats();
  st.forEach((r) => {
    if (r.type !== 'inbound-rtp' || !(r.trackIdentifier || '').startsWith(%s + ':')) return;
    if (r.kind === 'audio') {
      out.received += r.totalSamplesReceived || 0;
      out.concealed += r.concealedSamples || 0;
    } else {
      out.frames += r.framesDecoded || 0;
      out.freezes += r.freezeCount || 0;
      out.nacks += r.nackCount || 0;
      out.repaired += r.retransmittedPacketsReceived || 0;
    }
  });
  return out;
})()`, jsString(pid))
}

// redListener is a Go member that takes RED, as a browser does: it
// records in which codec each member's microphone reaches it.
type redListener struct {
	mu    sync.Mutex
	codec map[string]string // participant id -> MIME type of its audio
}

func listenForRED(t *testing.T, url, room string) *redListener {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	red := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/red", ClockRate: 48000,
		Channels: 2, SDPFmtpLine: "111/111"}, PayloadType: 63}
	if err := m.RegisterCodec(red, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	l := &redListener{codec: map[string]string{}}
	ctx := testenv.Context(t, 120*time.Second)
	c, err := client.Dial(ctx, client.Config{URL: "ws" + strings.TrimPrefix(url, "http") + "/ws",
		API: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)),
		OnTrack: func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if tr.Kind() != webrtc.RTPCodecTypeAudio {
				return
			}
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
					pid, _, _ := strings.Cut(tr.ID(), ":")
					l.mu.Lock()
					l.codec[pid] = strings.ToLower(tr.Codec().MimeType)
					l.mu.Unlock()
				}
			}()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Join(ctx, protocol.Join{Room: room, Name: "Nurse", Live: true}); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *redListener) codecOf(pid string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codec[pid]
}

// RED for Opus with real Chromium: three pages through the server, the
// patient's link (both ways) losing 5 % of its packets with 50 ± 30 ms of
// delay. Every page sends its microphone as RED (the server's answer puts
// it first), and the server forwards it as RED (a Go member that takes
// RED gets it so); the family hears the patient, and the patient hears
// the doctor, with under 2 % of the audio concealed. The video the
// patient NACKs is repaired on the RTX stream the server offers it, which
// Chrome takes.
func TestREDKeepsSpeechWholeOnALossyLink(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}, simulcast: true})
	_, p := newPages(t, 150*time.Second, 3, "doctor", "family", "patient")
	doctor, family, patient := p[0], p[1], p[2]
	relay := shaped(t, patient)
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "red", "Dr", true)))
	waitState(t, doctor, "doctor", "live")
	do(t, family, chromedp.Navigate(roomURL(srv.URL, "red", "Fam", true)))
	do(t, patient, chromedp.Navigate(roomURL(srv.URL, "red", "Pat", true)))
	pid := map[string]string{}
	for _, v := range waitVideoFlowing(t, patient, "patient", 2) {
		pid[v.Name] = v.PID
	}
	for _, v := range waitVideoFlowing(t, family, "family", 2) {
		pid[v.Name] = v.PID
	}
	// Chrome's stats name Opus whether or not it wraps it in RED: a Go
	// member that takes RED shows what crosses the wire.
	nurse := listenForRED(t, srv.URL, "red")
	for name, id := range pid {
		testenv.Eventually(t, 20*time.Second, name+"'s microphone forwarded as RED", func() bool {
			return nurse.codecOf(id) == "audio/red"
		})
	}
	lossy := shaper.Link{Loss: 0.05, Delay: 50 * time.Millisecond, Jitter: 30 * time.Millisecond}
	relay.Set(lossy, lossy)

	// What the family gets of the patient crossed the lossy uplink; what
	// the patient gets of the doctor, the lossy downlink.
	legs := []struct {
		name string
		page context.Context
		from string
	}{{"the family hearing the patient", family, pid["Pat"]}, {"the patient hearing the doctor", patient, pid["Dr"]}}
	read := func(i int) audioFrom {
		return eval[audioFrom](t, legs[i].page, audioFromJS(legs[i].from))
	}
	// A few seconds for the jitter buffers to settle on the new delay,
	// then thirty measured.
	settled := time.Now().Add(3 * time.Second)
	testenv.Eventually(t, 10*time.Second, "three seconds on the lossy link", func() bool { return time.Now().After(settled) })
	before := []audioFrom{read(0), read(1)}
	start := time.Now()
	end := start.Add(30 * time.Second)
	testenv.Eventually(t, 60*time.Second, "thirty seconds on the lossy link", func() bool { return time.Now().After(end) })
	for i, l := range legs {
		after := read(i)
		got := after.Received - before[i].Received
		if got <= 0 {
			t.Fatalf("%s: no audio in the window", l.name)
		}
		concealed := (after.Concealed - before[i].Concealed) / got
		fps := (after.Frames - before[i].Frames) / time.Since(start).Seconds()
		t.Logf("%s: %.2f %% concealed; video %.1f fps, %.0f freezes, %.0f NACKs, %.0f repaired", l.name, concealed*100, fps,
			after.Freezes-before[i].Freezes, after.NACKs-before[i].NACKs, after.Repaired-before[i].Repaired)
		if concealed >= 0.02 {
			t.Errorf("%s: %.2f %% of the audio concealed at 5 %% loss, want under 2 %%", l.name, concealed*100)
		}
		// Chrome counts as retransmitted only what comes on an RTX
		// stream (0 when the server resent on the media stream): the
		// server's repairs of the lossy downlink, and its probes, must.
		if i == 1 && after.Repaired-before[i].Repaired <= 0 {
			t.Errorf("%s: no video packet repaired on the RTX stream (%.0f NACKs sent)", l.name, after.NACKs-before[i].NACKs)
		}
	}
}
