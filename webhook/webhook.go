// Package webhook tells a clinic's backend what happens on the server: a
// consult's room started or finished, who joined or left (by id and role),
// calls, path changes, recordings. Each event is a JSON POST with an id and
// a timestamp, signed with HMAC-SHA256 of the body under a shared key (the
// X-Consult-Signature header, "sha256=" and the hex digest), so the
// receiver knows it came from this server. Events go to each receiver in
// the order they happened (one delivery goroutine per receiver), and a
// failed delivery is retried with backoff before the next is sent. Send
// never blocks the caller: a bounded queue takes the events, and when a
// receiver is so far behind that its queue is full, new events for it are
// dropped, counted and logged, while media and signaling go on.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body.
const SignatureHeader = "X-Consult-Signature"

// Event is one webhook. Room and Participant are ids; names travel only
// when the server is configured to send them (Data "name").
type Event struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	Time        time.Time      `json:"timestamp"`
	Room        string         `json:"room,omitempty"`
	Participant string         `json:"participant,omitempty"`
	Data        map[string]any `json:"data,omitempty"`
}

// Config sets up a Sender.
type Config struct {
	URLs []string
	Key  []byte // signing key; required
	// Queue is how many events may wait per receiver (default 1000).
	Queue int
	// Attempts bounds deliveries of one event (default 6); Backoff is the
	// first wait between them (default 500 ms), doubling up to 30 s.
	Attempts int
	Backoff  time.Duration
	// Timeout bounds one delivery (default 10 s).
	Timeout time.Duration
	Logger  *zap.Logger
}

// Stats counts deliveries over all receivers.
type Stats struct {
	Delivered, Retried, Failed, Dropped uint64
}

// Sender delivers events to the receivers.
type Sender struct {
	cfg     Config
	log     *zap.Logger
	client  *http.Client
	targets []*target
	stats   struct{ delivered, retried, failed, dropped atomic.Uint64 }
	wg      sync.WaitGroup
	ctx     context.Context // ended by Close when its time is up: deliveries stop
	stop    context.CancelFunc
	once    sync.Once
	// mu orders Send against Close: an event sent after Close (a timer
	// of a consult ending as the server stops) is dropped.
	mu     sync.RWMutex
	closed bool
}

type target struct {
	url   string
	name  string // scheme and host, for logs (a URL's path or query may hold a secret)
	queue chan []byte
}

// New starts a delivery goroutine per receiver.
func New(cfg Config) (*Sender, error) {
	if len(cfg.Key) == 0 {
		return nil, fmt.Errorf("webhook: a signing key is required")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1000
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Sender{cfg: cfg, log: cfg.Logger, client: &http.Client{Timeout: cfg.Timeout}}
	s.ctx, s.stop = context.WithCancel(context.Background())
	for _, u := range cfg.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("webhook: %q is not an http(s) URL", u)
		}
		t := &target{url: u, name: pu.Scheme + "://" + pu.Host, queue: make(chan []byte, cfg.Queue)}
		s.targets = append(s.targets, t)
		s.wg.Add(1)
		go s.deliver(t)
	}
	return s, nil
}

// Send queues an event for every receiver, filling in its id and time.
// It never blocks.
func (s *Sender) Send(e Event) {
	if s == nil {
		return
	}
	if e.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		e.ID = hex.EncodeToString(b[:])
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	body, err := json.Marshal(e)
	if err != nil {
		s.log.Error("webhook event not encoded", zap.String("type", e.Type), zap.Error(err))
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.stats.dropped.Add(1)
		return
	}
	for _, t := range s.targets {
		select {
		case t.queue <- body:
		default:
			s.stats.dropped.Add(1)
			s.log.Warn("webhook receiver too far behind; event dropped", zap.String("receiver", t.name),
				zap.String("type", e.Type), zap.String("room", e.Room), zap.String("event", e.ID))
		}
	}
}

// Stats returns the delivery counters.
func (s *Sender) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	return Stats{Delivered: s.stats.delivered.Load(), Retried: s.stats.retried.Load(),
		Failed: s.stats.failed.Load(), Dropped: s.stats.dropped.Load()}
}

// Close delivers what is queued until ctx ends, then stops.
func (s *Sender) Close(ctx context.Context) {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, t := range s.targets {
			close(t.queue)
		}
		s.mu.Unlock()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.stop()
			<-done
		}
		s.stop()
	})
}

// Sign returns the signature header's value for body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header's value, in constant time.
func Verify(key, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(key, body)), []byte(header))
}

func (s *Sender) deliver(t *target) {
	defer s.wg.Done()
	for body := range t.queue {
		wait := s.cfg.Backoff
		for attempt := 1; ; attempt++ {
			err := s.post(t.url, body)
			if err == nil {
				s.stats.delivered.Add(1)
				break
			}
			if attempt >= s.cfg.Attempts {
				s.stats.failed.Add(1)
				s.log.Warn("webhook not delivered; giving up on this event", zap.String("receiver", t.name),
					zap.Int("attempts", attempt), zap.Error(err))
				break
			}
			s.stats.retried.Add(1)
			s.log.Debug("webhook delivery failed; retrying", zap.String("receiver", t.name), zap.Duration("in", wait), zap.Error(err))
			select {
			case <-time.After(wait):
			case <-s.ctx.Done():
				return
			}
			wait = min(2*wait, 30*time.Second)
		}
	}
}

func (s *Sender) post(to string, body []byte) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, to, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(s.cfg.Key, body))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error // it names the URL, whose path or query may hold a secret
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
