package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
	"consult/webhook"
)

// hookReceiver is the clinic's backend: a real HTTP endpoint that checks
// each webhook's signature and keeps the events.
type hookReceiver struct {
	key    []byte
	mu     sync.Mutex
	events []webhook.Event
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	var e webhook.Event
	if !webhook.Verify(h.key, body, r.Header.Get(webhook.SignatureHeader)) || json.Unmarshal(body, &e) != nil {
		h.bad++
		http.Error(w, "refused", http.StatusUnauthorized)
		return
	}
	h.events = append(h.events, e)
}

func (h *hookReceiver) types() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Type)
	}
	return out
}

// A scripted consult: the clinician opens the room, a patient waits and
// is admitted, the call is recorded for a while, and the clinician ends
// it. The backend gets every event once, in order, signed, with ids and
// roles and no names.
func TestWebhooksFollowAConsult(t *testing.T) {
	needFFprobe(t)
	hr := &hookReceiver{key: []byte("hook-key")}
	hs := httptest.NewServer(hr)
	t.Cleanup(hs.Close) // after the server, which flushes its webhooks as it stops
	srv := startMainCtl(t, "-p2p=false", "-webhook-url", hs.URL+"/hooks", "-webhook-key", "hook-key")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()
	dial := func() *client.Client {
		c, err := client.Dial(ctx, client.Config{URL: srv.url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	doc, pat := dial(), dial()
	if _, err := doc.Join(ctx, protocol.Join{Room: "clinic", Name: "Dr Who", Role: "host", Live: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := pat.Join(ctx, protocol.Join{Room: "clinic", Name: "Pat Smith", Role: "guest", Live: true}); err != nil {
		t.Fatal(err)
	}
	if err := doc.Admit(pat.ID()); err != nil {
		t.Fatal(err)
	}
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "s")
	if _, err := doc.Publish(ctx, video); err != nil {
		t.Fatal(err)
	}
	sendFrames(t, video)

	var rec recording.Info
	postJSON(t, srv.base+"/api/recordings", `{"room":"clinic"}`, &rec)
	testenv.Eventually(t, 20*time.Second, "a second of recording", func() bool {
		var list []recording.Info
		getJSON(t, srv.base+"/api/recordings", &list)
		return len(list) == 1 && list[0].Duration >= time.Second
	})
	postJSON(t, srv.base+"/api/recordings/"+rec.ID+"/stop", "", &rec)
	if err := doc.End(); err != nil {
		t.Fatal(err)
	}

	want := []string{"room-started", "participant-joined", "participant-joined", "waiting-started", "call-started",
		"path-changed", "recording-started", "recording-finished", "participant-left", "participant-left",
		"call-ended", "room-finished", "quality-summary", "quality-summary"}
	testenv.Eventually(t, 20*time.Second, "the consult's webhooks", func() bool { return len(hr.types()) >= len(want) })
	if got := hr.types(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("webhooks\n got %v\nwant %v", got, want)
	}
	hr.mu.Lock()
	defer hr.mu.Unlock()
	ids := map[string]bool{}
	for i, e := range hr.events {
		if ids[e.ID] || e.ID == "" || e.Time.IsZero() || e.Room != "clinic" {
			t.Errorf("event %d %+v: want a fresh id, a time and the room", i, e)
		}
		ids[e.ID] = true
		if _, named := e.Data["name"]; named {
			t.Errorf("event %d carries a display name without -webhook-names: %+v", i, e)
		}
	}
	if hr.bad != 0 {
		t.Errorf("%d webhooks with a bad signature", hr.bad)
	}
	if j := hr.events[1]; j.Participant != doc.ID() || j.Data["role"] != "host" {
		t.Errorf("the clinician's join: %+v", j)
	}
	if w := hr.events[3]; w.Participant != pat.ID() || w.Data["role"] != "guest" {
		t.Errorf("the patient's wait: %+v", w)
	}
	if p := hr.events[5]; p.Data["path"] != "sfu" {
		t.Errorf("path change: %+v", p)
	}
	files, _ := hr.events[7].Data["files"].([]any)
	if len(files) != 1 {
		t.Fatalf("recording-finished lists %v, want the clinician's file", hr.events[7].Data)
	}
	if f := files[0].(map[string]any); f["participant"] != doc.ID() || f["bytes"].(float64) <= 0 || f["durationMs"].(float64) < 1000 {
		t.Errorf("recorded file: %+v", f)
	}
	if d := hr.events[10].Data["durationMs"]; d == nil || d.(float64) <= 0 {
		t.Errorf("call-ended without its duration: %+v", hr.events[10])
	}
	// How each one's consult went, once it has left.
	summaries := map[string]map[string]any{}
	for _, e := range hr.events[12:] {
		summaries[e.Participant] = e.Data
	}
	for id, role := range map[string]string{doc.ID(): "host", pat.ID(): "guest"} {
		q := summaries[id]
		if q["role"] != role || q["path"] != "sfu" || q["reconnects"] != float64(0) || q["keyframeRequests"] == nil || q["worstLoss"] == nil {
			t.Errorf("quality summary of the %s: %+v", role, q)
		}
	}
}

// A backend that never answers holds up nothing: consults start and their
// media flows.
func TestAHangingWebhookReceiverDelaysNothing(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hs.Close)
	srv := startMainCtl(t, "-p2p=false", "-webhook-url", hs.URL, "-webhook-key", "k")
	t.Cleanup(func() { close(release) }) // before the server stops
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	tc := startCall(t, ctx, srv.url, "r")
	testenv.Eventually(t, 20*time.Second, "media to flow with the receiver hanging", func() bool {
		return tc.packets.Load() > 50 && calls.Load() >= 1
	})
}

// An operator can forbid recording a room: a host's request to record it
// is refused (403) until the policy allows it again.
func TestARoomThatMayNotBeRecorded(t *testing.T) {
	srv := startMainCtl(t, "-p2p=false")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	adm := &client.Admin{Base: srv.base}
	no, yes := false, true
	if err := adm.SetRoom(ctx, "private", client.RoomSettings{Recording: &no}); err != nil {
		t.Fatal(err)
	}
	c := dialJoin(t, ctx, client.Config{URL: srv.url}, protocol.Join{Room: "private", Name: "Dr", Live: true})
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "s")
	if _, err := c.Publish(ctx, video); err != nil {
		t.Fatal(err)
	}
	record := func() int {
		resp, err := http.Post(srv.base+"/api/recordings", "application/json", strings.NewReader(`{"room":"private"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := record(); code != http.StatusForbidden {
		t.Fatalf("recording a room that may not be recorded: %d, want 403", code)
	}
	if err := adm.SetRoom(ctx, "private", client.RoomSettings{Recording: &yes}); err != nil {
		t.Fatal(err)
	}
	if code := record(); code != http.StatusOK {
		t.Fatalf("recording once allowed: %d", code)
	}
}
