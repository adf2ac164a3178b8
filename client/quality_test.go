package client

import (
	"context"
	"testing"
	"time"

	"consult/protocol"
)

// AwaitQuality returns the latest quality message once it matches: one
// already there, or a later one; it is state, so the inbox never fills
// with it.
func TestAwaitQualityWaitsForAMatchingMessage(t *testing.T) {
	c := &Client{done: make(chan struct{}), inbox: newInbox()}
	c.quality.changed = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	poor := func(q protocol.Quality) bool {
		return len(q.Members) == 1 && q.Members[0].Level == protocol.QualityPoor
	}
	if _, ok := c.Quality(); ok {
		t.Fatal("a quality message before any came")
	}
	c.quality.set([]byte(`{"type":"quality","members":[{"participant":"a","level":"good","path":"sfu"}]}`))
	got := make(chan protocol.Quality, 1)
	go func() {
		q, err := c.AwaitQuality(ctx, poor)
		if err != nil {
			t.Error(err)
		}
		got <- q
	}()
	c.quality.set([]byte(`{"type":"quality","members":[{"participant":"a","level":"poor","path":"relay","lossPct":12.5}]}`))
	if q := <-got; q.Members[0].Path != protocol.PathRelay || q.Members[0].LossPct != 12.5 {
		t.Fatalf("got %+v", q)
	}
	if q, err := c.AwaitQuality(ctx, poor); err != nil || q.Members[0].Level != protocol.QualityPoor {
		t.Fatalf("the latest message, already there: %+v %v", q, err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := c.AwaitQuality(short, func(q protocol.Quality) bool { return len(q.Members) == 2 }); err == nil {
		t.Fatal("a match that never came")
	}
}
