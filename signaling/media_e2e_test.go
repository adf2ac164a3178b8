package signaling_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
)

// isVP8KeyframeStart reads the VP8 payload descriptor and header.
func isVP8KeyframeStart(payload []byte) bool {
	var d codecs.VP8Packet
	b, err := d.Unmarshal(payload)
	return err == nil && d.S == 1 && d.PID == 0 && len(b) > 0 && b[0]&1 == 0
}

// checkTrack reads n packets of a received track and compares each
// payload with what its publisher sent under that sequence number.
func checkTrack(t *testing.T, r *webrtc.TrackRemote, pubs map[string]*publisher, n int) {
	t.Helper()
	owner, local, _ := cutID(r.ID())
	pub := pubs[owner]
	if pub == nil {
		t.Errorf("track %q from an unknown publisher", r.ID())
		return
	}
	for i := 0; i < n; i++ {
		_ = r.SetReadDeadline(time.Now().Add(testenv.Scale(5 * time.Second)))
		p, _, err := r.ReadRTP()
		if err != nil {
			t.Errorf("track %s: %v", r.ID(), err)
			return
		}
		want, ok := pub.payload(local, p.SequenceNumber)
		if !ok || !bytes.Equal(want, p.Payload) {
			t.Errorf("track %s seq %d: payload differs from what was sent", r.ID(), p.SequenceNumber)
			return
		}
	}
}

func cutID(id string) (participant, track string, ok bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return "", id, false
}

func TestThreeParticipantsExchangeMediaUnchanged(t *testing.T) {
	e := startServer(t, nil)
	pubs := map[string]*publisher{}
	a, _ := e.join(t, "consult", "Doctor", true)
	pubs[a.ID()] = startPublisher(t, a)
	b, _ := e.join(t, "consult", "Patient", true)
	pubs[b.ID()] = startPublisher(t, b)

	// The interpreter joins late, while the others are mid-stream.
	var ev protocol.TrackEvent
	for i := 0; i < 2; i++ {
		a.await(protocol.TypeTrackPublished, &ev)
	}
	var mu sync.Mutex
	var connectedAt time.Time
	c := e.dialWithState(t, func(pc string, s webrtc.PeerConnectionState) {
		if pc == protocol.PCSubscribe && s == webrtc.PeerConnectionStateConnected {
			mu.Lock()
			connectedAt = time.Now()
			mu.Unlock()
		}
	})
	if _, err := c.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "consult", Name: "Interpreter", Live: true}); err != nil {
		t.Fatal(err)
	}
	pubs[c.ID()] = startPublisher(t, c)

	// The late joiner's first video packets start keyframes, promptly.
	for got := 0; got < 2; {
		r := <-c.trackCh
		if r.Kind() != webrtc.RTPCodecTypeVideo {
			go checkTrack(t, r, pubs, 10)
			continue
		}
		p, _, err := r.ReadRTP()
		if err != nil {
			t.Fatal(err)
		}
		first := time.Now()
		if !isVP8KeyframeStart(p.Payload) {
			t.Fatalf("late joiner's first packet of %s is not a keyframe start: % x", r.ID(), p.Payload[:8])
		}
		mu.Lock()
		wait := first.Sub(connectedAt)
		mu.Unlock()
		if wait > time.Second {
			t.Fatalf("first keyframe of %s came %v after the connection was up", r.ID(), wait)
		}
		t.Logf("late joiner: first keyframe of %s %v after connecting", r.ID(), wait)
		checkTrack(t, r, pubs, 20)
		got++
	}

	// Everyone receives the two others' audio and video, bytes unchanged.
	for _, p := range []*peer{a, b} {
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			select {
			case r := <-p.trackCh:
				owner, _, _ := cutID(r.ID())
				if owner == p.ID() {
					t.Fatal("received own track")
				}
				wg.Add(1)
				go func() { defer wg.Done(); checkTrack(t, r, pubs, 20) }()
			case <-testenv.After(10 * time.Second):
				t.Fatalf("%s received %d of 4 tracks", p.ID(), i)
			}
		}
		wg.Wait()
	}
}

// dialWithState is dial with a connection-state hook.
func (e *env) dialWithState(t *testing.T, f func(string, webrtc.PeerConnectionState)) *peer {
	t.Helper()
	return e.dialOpts(t, f)
}
