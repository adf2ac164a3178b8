package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/internal/testlog"
)

var key = []byte("shared-secret")

// receiver is a real HTTP endpoint that keeps what it was sent; fail says
// whether to refuse the n-th request (from 1).
type receiver struct {
	mu     sync.Mutex
	events []Event
	calls  int
	bad    int // requests with a wrong signature
	fail   func(n int) bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	if rc.fail != nil && rc.fail(rc.calls) {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	if !Verify(key, body, r.Header.Get(SignatureHeader)) {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, e)
}

func (rc *receiver) got() []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Event(nil), rc.events...)
}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	cfg.Key, cfg.Logger = key, testlog.New(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// checkInOrder fails unless events are n events with Data "n" 0..n-1,
// distinct ids and times that do not go back.
func checkInOrder(t *testing.T, events []Event, n int) {
	t.Helper()
	if len(events) != n {
		t.Fatalf("%d events arrived, want %d", len(events), n)
	}
	ids := map[string]bool{}
	for i, e := range events {
		if got := e.Data["n"]; got != float64(i) {
			t.Fatalf("event %d is %v: out of order", i, got)
		}
		if ids[e.ID] || e.ID == "" {
			t.Fatalf("event %d: id %q repeated or empty", i, e.ID)
		}
		ids[e.ID] = true
		if i > 0 && e.Time.Before(events[i-1].Time) {
			t.Fatalf("event %d is timed before the one sent before it", i)
		}
	}
}

func TestEventsArriveOnceInOrderAndSigned(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSender(t, Config{URLs: []string{srv.URL}})
	for i := range 50 {
		s.Send(Event{Type: "participant-joined", Room: "r" + string(rune('a'+i%3)), Data: map[string]any{"n": i}})
	}
	testenv.Eventually(t, 10*time.Second, "50 events", func() bool { return len(rc.got()) >= 50 })
	checkInOrder(t, rc.got(), 50)
	if rc.bad != 0 {
		t.Fatalf("%d requests with a bad signature", rc.bad)
	}
	if !Verify(key, []byte("x"), Sign(key, []byte("x"))) || Verify([]byte("other"), []byte("x"), Sign(key, []byte("x"))) {
		t.Fatal("Verify does not tell keys apart")
	}
}

// A receiver that fails twice, then answers, still gets every event, in
// order.
func TestAFailingReceiverGetsEverythingInTheEnd(t *testing.T) {
	rc := &receiver{fail: func(n int) bool { return n <= 2 }}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSender(t, Config{URLs: []string{srv.URL}, Backoff: 20 * time.Millisecond})
	for i := range 5 {
		s.Send(Event{Type: "call-started", Room: "r", Data: map[string]any{"n": i}})
	}
	// Counted once the answer is read, a moment after the receiver has it.
	testenv.Eventually(t, 10*time.Second, "5 deliveries", func() bool { return s.Stats().Delivered >= 5 })
	checkInOrder(t, rc.got(), 5)
	if st := s.Stats(); st.Retried != 2 || st.Delivered != 5 || st.Failed != 0 {
		t.Fatalf("stats %+v, want 2 retries and 5 deliveries", st)
	}
}

// A receiver that never answers holds up its own queue only: Send returns
// at once, and what does not fit is dropped and counted.
func TestAHangingReceiverNeverBlocksSend(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSender(t, Config{URLs: []string{srv.URL}, Queue: 4})
	sent := make(chan struct{})
	go func() {
		for i := range 100 {
			s.Send(Event{Type: "path-changed", Room: "r", Data: map[string]any{"n": i}})
		}
		close(sent)
	}()
	select {
	case <-sent:
	case <-testenv.After(5 * time.Second):
		t.Fatal("Send blocked on a hanging receiver")
	}
	if st := s.Stats(); st.Dropped < 100-4-1 {
		t.Fatalf("stats %+v: want all but the queue (and the one in flight) dropped", st)
	}
}

func TestConfigIsChecked(t *testing.T) {
	if _, err := New(Config{URLs: []string{"http://x"}}); err == nil {
		t.Fatal("no key accepted")
	}
	if _, err := New(Config{URLs: []string{"ftp://x"}, Key: key}); err == nil {
		t.Fatal("an ftp URL accepted")
	}
}
