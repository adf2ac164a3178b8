package signaling_test

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

func (e *env) httpURL(path string) string {
	return "http" + strings.TrimSuffix(strings.TrimPrefix(e.url, "ws"), "/ws") + path
}

func (e *env) roomCheck(t *testing.T, room string) signaling.RoomCheck {
	t.Helper()
	var c signaling.RoomCheck
	getJSON(t, e.httpURL("/api/rooms/"+room), "", &c)
	return c
}

func getJSON(t *testing.T, url, bearer string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// countPackets reads a track in the background and counts packets.
func countPackets(r *webrtc.TrackRemote) func() int {
	ch := make(chan int, 1)
	ch <- 0
	go func() {
		for {
			if _, _, err := r.ReadRTP(); err != nil {
				return
			}
			ch <- <-ch + 1
		}
	}()
	return func() int { n := <-ch; ch <- n; return n }
}

func TestBadInputGetsAnErrorAndCallsGoOn(t *testing.T) {
	e := startServer(t, nil)
	// A live call that must not notice anything.
	a, _ := e.join(t, "steady", "A", true)
	startPublisher(t, a)
	b, _ := e.join(t, "steady", "B", true)
	var video *webrtc.TrackRemote
	for video == nil {
		select {
		case r := <-b.trackCh:
			if r.Kind() == webrtc.RTPCodecTypeVideo {
				video = r
			}
		case <-testenv.After(10 * time.Second):
			t.Fatal("no video")
		}
	}
	packets := countPackets(video)

	bad, _ := e.join(t, "hostile", "Mallory", true)
	fresh := e.dial(t) // not joined
	cases := []struct {
		name string
		p    *peer
		msg  string
		code string
	}{
		{"malformed json", bad, `{"type":"join",`, protocol.ErrBadRequest},
		{"not an object", bad, `[1,2,3]`, protocol.ErrBadRequest},
		{"unknown type", bad, `{"type":"teleport"}`, protocol.ErrUnknownType},
		{"oversized", bad, `{"type":"offer","sdp":"` + strings.Repeat("x", 70<<10) + `"}`, protocol.ErrTooLarge},
		{"garbage sdp", bad, `{"type":"offer","target":"server","sdp":"v=banana"}`, protocol.ErrInvalidSDP},
		{"answer without offer", bad, `{"type":"answer","sdp":"v=0\r\n"}`, protocol.ErrInvalidState},
		{"garbage candidate", bad, `{"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:!! nonsense"}}`, protocol.ErrInvalidICE},
		{"unknown pc", bad, `{"type":"candidate","pc":"sideways","candidate":{"candidate":"x"}}`, protocol.ErrBadRequest},
		{"p2p target in sfu mode", bad, `{"type":"offer","target":"someone","sdp":"v=0"}`, protocol.ErrInvalidState},
		{"bad mute kind", bad, `{"type":"mute","kind":"smell","muted":true}`, protocol.ErrBadRequest},
		{"second join", bad, `{"type":"join","room":"other","name":"M"}`, protocol.ErrAlreadyJoined},
		{"bad room name", fresh, `{"type":"join","room":"../../etc","name":"x"}`, protocol.ErrBadRequest},
		{"offer before join", fresh, `{"type":"offer","sdp":"v=0"}`, protocol.ErrNotJoined},
		{"invite unknown", bad, `{"type":"invite","participant":"ghost"}`, protocol.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.p.SendRaw([]byte(c.msg)); err != nil {
				t.Fatal(err)
			}
			c.p.awaitError(c.code)
		})
	}
	// The hostile client's connection still works, and so does the call.
	if err := bad.Mute("audio", true); err != nil {
		t.Fatal(err)
	}
	bad.await(protocol.TypeParticipantUpdated, nil)
	before := packets()
	waitUntil(t, "media keeps flowing", 5*time.Second, func() bool { return packets() > before+20 })
}

func TestRateLimit(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.MessageRate, c.MessageBurst = 10, 20 })
	p, _ := e.join(t, "flood", "F", false)
	for i := 0; i < 200; i++ {
		_ = p.SendRaw([]byte(`{"type":"mute","kind":"audio","muted":true}`))
	}
	p.awaitError(protocol.ErrRateLimited)
	// Still connected once the flood is over.
	waitUntil(t, "a message passes again", 5*time.Second, func() bool {
		_ = p.Mute("video", true)
		_, err := p.Await(ctxT(t, 200*time.Millisecond), protocol.TypeParticipantUpdated)
		return err == nil
	})
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, what, cond)
}

func TestAPIRoomsShowsMembersAndTracks(t *testing.T) {
	e := startServer(t, nil)
	a, _ := e.join(t, "status", "Dr <b>Who</b>", true)
	startPublisher(t, a)
	e.join(t, "status", "Waiting one", false)
	a.await(protocol.TypeTrackPublished, nil)
	a.await(protocol.TypeTrackPublished, nil)
	var rooms []signaling.RoomStatus
	getJSON(t, e.httpURL("/api/rooms"), "", &rooms)
	if len(rooms) != 1 || rooms[0].Mode != protocol.ModeSFU || len(rooms[0].Members) != 2 {
		t.Fatalf("rooms %+v", rooms)
	}
	m := rooms[0].Members[0]
	if m.Name != "Dr <b>Who</b>" || !m.Live || len(m.Tracks) != 2 || rooms[0].Members[1].Live {
		t.Fatalf("member %+v", m)
	}
	if c := e.roomCheck(t, "status"); !c.Exists || c.Present != 2 || c.Live != 1 || c.Full {
		t.Fatalf("check %+v", c)
	}
	if c := e.roomCheck(t, "nobody-here"); c.Exists {
		t.Fatalf("check %+v", c)
	}
	if code := getJSON(t, e.httpURL("/api/rooms/bad%20name"), "", nil); code != http.StatusBadRequest {
		t.Fatalf("bad room name answered %d", code)
	}
}

func TestLeaveAndSocketLossCleanUp(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) {
		c.PingInterval, c.PongWait = 100*time.Millisecond, 500*time.Millisecond
		c.ResumeGrace = 300 * time.Millisecond
	})
	base := runtime.NumGoroutine()
	watcher, _ := e.join(t, "cleanup", "Watcher", false)

	// A clean leave: tracks unpublished, then participant-left.
	leaver, _ := e.join(t, "cleanup", "Leaver", true)
	pub1 := startPublisher(t, leaver)
	watcher.await(protocol.TypeTrackPublished, nil)
	_ = leaver.Leave()
	watcher.await(protocol.TypeTrackUnpublished, nil)
	var left protocol.ParticipantLeft
	watcher.await(protocol.TypeParticipantLeft, &left)
	if left.Participant != leaver.ID() {
		t.Fatalf("left %+v", left)
	}

	// An abrupt socket close: the member is away (others see it
	// reconnecting) and gone when the grace period ends.
	crasher, _ := e.join(t, "cleanup", "Crasher", true)
	pub2 := startPublisher(t, crasher)
	_ = crasher.Client.Close()
	var away protocol.ParticipantEvent
	for !away.Participant.Reconnecting {
		watcher.awaitMatchInto(protocol.TypeParticipantUpdated, crasher.ID(), &away)
	}
	watcher.await(protocol.TypeParticipantLeft, &left)
	if left.Participant != crasher.ID() {
		t.Fatalf("left %+v", left)
	}

	// A socket that goes silent (no pongs): removed after PongWait.
	silent := e.dialRaw(t)
	silent.send(t, `{"type":"join","room":"cleanup","name":"Silent","live":false}`)
	watcher.await(protocol.TypeParticipantJoined, nil)
	watcher.await(protocol.TypeParticipantLeft, &left)

	pub1.close() // the test's own goroutines do not count
	pub2.close()
	_ = leaver.Client.Close()
	_ = watcher.Client.Close()
	deadline := time.Now().Add(testenv.Scale(15 * time.Second))
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines, baseline %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if st := e.sfu.Stats(); st.Rooms != 0 || st.Participants != 0 {
		t.Fatalf("sfu still holds %+v", st)
	}
}

func TestTransportLossRemovesParticipant(t *testing.T) {
	e := startServer(t, func(_ *signaling.Config, s *sfu.Config) {
		s.ICE.DisconnectedTimeout, s.ICE.FailedTimeout = 500*time.Millisecond, time.Second
	})
	watcher, _ := e.join(t, "transport", "Watcher", true)
	gone, _ := e.join(t, "transport", "Gone", true)
	startPublisher(t, gone)
	watcher.await(protocol.TypeTrackPublished, nil)
	// The media connection dies while the socket lives on.
	_ = gone.PublishPC().Close()
	gone.awaitError(protocol.ErrTransport)
	var left protocol.ParticipantLeft
	watcher.await(protocol.TypeParticipantLeft, &left)
	if left.Participant != gone.ID() {
		t.Fatalf("left %+v", left)
	}
}
