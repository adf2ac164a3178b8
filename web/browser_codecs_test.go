package web_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/signaling"
)

// codecsJS is the video codecs a page sends (its active encodings) and
// receives, by MIME type.
const codecsJS = `(async () => {
  const out = {sent: [], received: []};
  const s = window.consultApp?.session;
  for (const [pc, type, key] of [[s?.pub, 'outbound-rtp', 'sent'], [s?.sub, 'inbound-rtp', 'received']]) {
    if (!pc) continue;
    const st = await pc.getStats();
    st.forEach((r) => {
      if (r.type !== type || r.kind !== 'video' || !r.codecId || r.active === false) return;
      if (!(r.framesEncoded || r.framesDecoded)) return;
      out[key].push(st.get(r.codecId)?.mimeType || '');
    });
  }
  return out;
})()`

type pageCodecs struct {
	Sent     []string `json:"sent"`
	Received []string `json:"received"`
}

// all reports whether list is not empty and every entry is mime.
func all(list []string, mime string) bool {
	for _, c := range list {
		if !strings.EqualFold(c, mime) {
			return false
		}
	}
	return len(list) > 0
}

// h264Watch counts what a Go client receives of each video track: H.264
// packets, and whether one that starts a picture (an SPS or an IDR
// slice) came.
type h264Watch struct {
	mu      sync.Mutex
	packets map[string]int
	keyed   map[string]bool
	other   int // packets of any other codec
}

func (w *h264Watch) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if tr.Kind() != webrtc.RTPCodecTypeVideo {
		return
	}
	go func() {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			w.mu.Lock()
			if !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264) {
				w.other++
			} else {
				w.packets[tr.ID()]++
				w.keyed[tr.ID()] = w.keyed[tr.ID()] || startsH264Picture(p.Payload)
			}
			w.mu.Unlock()
		}
	}()
}

// decoding reports whether n tracks came in H.264, each from a keyframe
// and with at least min packets.
func (w *h264Watch) decoding(n, min int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := 0
	for id, c := range w.packets {
		if c >= min && w.keyed[id] {
			got++
		}
	}
	return got >= n
}

// startsH264Picture: an SPS or IDR NAL unit alone, in a STAP-A, or the
// first fragment of one.
func startsH264Picture(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch typ := p[0] & 0x1f; typ {
	case 5, 7:
		return true
	case 24: // STAP-A: a 2-byte size, then the first NAL unit
		return len(p) > 3 && (p[3]&0x1f == 7 || p[3]&0x1f == 5)
	case 28: // FU-A: start bit and the fragment's type
		return p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}

// Mixed codecs with real Chromium: a doctor and a family member talk
// through the server in VP8, each sending its camera as simulcast
// layers. A phone that decodes H.264 alone joins: both pages are told
// the room's codec is now H.264, their cameras switch to it, the phone
// receives both pictures from a keyframe, and the pages go on decoding
// each other. When the phone leaves, both go back to VP8 and still see
// each other.
func TestPagesSwitchToTheCodecAPhoneDecodes(t *testing.T) {
	srv := startServerWith(t, serverOptions{p2p: signaling.P2PConfig{Disabled: true}, simulcast: true})
	_, p := newPages(t, 150*time.Second, 2, "doctor", "family")
	doctor, family := p[0], p[1]
	do(t, doctor, chromedp.Navigate(roomURL(srv.URL, "codecs", "Dr", true)))
	waitState(t, doctor, "doctor", "live")
	do(t, family, chromedp.Navigate(roomURL(srv.URL, "codecs", "Fam", true)))
	waitVideoFlowing(t, doctor, "doctor", 1)
	waitVideoFlowing(t, family, "family", 1)
	sending := func(page string, pg context.Context, mime string) {
		t.Helper()
		waitFor(t, pg, page+" to send and receive "+mime, 30*time.Second, codecsJS, func(c pageCodecs) bool {
			return all(c.Sent, mime) && all(c.Received, mime)
		})
	}
	sending("doctor", doctor, webrtc.MimeTypeVP8)
	sending("family", family, webrtc.MimeTypeVP8)

	// The phone: pion with H.264 alone, on loopback.
	se := &webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api, err := client.VideoAPI(se, webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}
	watch := &h264Watch{packets: map[string]int{}, keyed: map[string]bool{}}
	ctx := testenv.Context(t, 120*time.Second)
	phone, err := client.Dial(ctx, client.Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", API: api, OnTrack: watch.onTrack})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	j, err := phone.Join(ctx, protocol.Join{Room: "codecs", Name: "Phone", Live: true, Video: client.VideoCodecs(webrtc.MimeTypeH264)})
	if err != nil || j.VideoCodec != webrtc.MimeTypeH264 {
		t.Fatalf("phone joined: %+v, %v", j, err)
	}
	sending("doctor", doctor, webrtc.MimeTypeH264)
	sending("family", family, webrtc.MimeTypeH264)
	testenv.Eventually(t, 30*time.Second, "the phone to receive both cameras in H.264 from a keyframe", func() bool {
		return watch.decoding(2, 100)
	})
	// Chrome sends H.264 as layers too: the server forwards the phone a
	// layer of each camera.
	testenv.Eventually(t, 20*time.Second, "the phone's videos forwarded as simulcast layers", func() bool {
		n := 0
		for _, l := range srv.layersAt(t, "codecs", "Phone") {
			if l != "" {
				n++
			}
		}
		return n == 2
	})
	t.Logf("the phone's layers: %v", srv.layersAt(t, "codecs", "Phone"))
	advancing(t, doctor, "doctor", "Fam")
	advancing(t, family, "family", "Dr")
	watch.mu.Lock()
	other := watch.other
	watch.mu.Unlock()
	if other != 0 {
		t.Fatalf("the phone got %d packets of a codec it cannot decode", other)
	}

	if err := phone.Leave(); err != nil {
		t.Fatal(err)
	}
	sending("doctor", doctor, webrtc.MimeTypeVP8)
	sending("family", family, webrtc.MimeTypeVP8)
	waitVideoFlowing(t, doctor, "doctor", 1)
	waitVideoFlowing(t, family, "family", 1)
}

// advancing waits until the page's picture of name decodes 10 more frames.
func advancing(t *testing.T, ctx context.Context, page, name string) {
	t.Helper()
	frames := func(vs []remoteVideo) int {
		for _, v := range vs {
			if v.Name == name && v.Width > 0 {
				return v.Frames
			}
		}
		return -1
	}
	base := frames(eval[[]remoteVideo](t, ctx, remoteVideosJS))
	waitFor(t, ctx, page+"'s picture of "+name+" to advance", 20*time.Second, remoteVideosJS, func(vs []remoteVideo) bool {
		return base >= 0 && frames(vs) >= base+10
	})
}
