package client

import (
	"context"
	"sync"
)

// maxInbox bounds the events kept for Await; the oldest go first.
const maxInbox = 4096

// inbox keeps server events until someone awaits them, so a caller can
// wait for "the next call event" without racing the reader goroutine or
// losing events it was not waiting for yet.
type inbox struct {
	mu      sync.Mutex
	items   []Event
	changed chan struct{}
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{})} }

func (b *inbox) push(e Event) {
	b.mu.Lock()
	if len(b.items) >= maxInbox {
		b.items = b.items[1:]
	}
	b.items = append(b.items, e)
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// await removes and returns the oldest event that match accepts.
func (b *inbox) await(ctx context.Context, match func(Event) bool) (Event, error) {
	for {
		b.mu.Lock()
		for i, e := range b.items {
			if match(e) {
				b.items = append(b.items[:i], b.items[i+1:]...)
				b.mu.Unlock()
				return e, nil
			}
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
