package client

import (
	"context"
	"testing"
	"time"

	"consult/internal/testenv"
)

func TestInboxKeepsEventsUntilAwaitedInAnyOrder(t *testing.T) {
	b := newInbox()
	b.push(Event{Type: "a"})
	b.push(Event{Type: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(time.Second))
	defer cancel()
	e, err := b.await(ctx, func(e Event) bool { return e.Type == "b" })
	if err != nil || e.Type != "b" {
		t.Fatalf("got %v %v", e, err)
	}
	e, err = b.await(ctx, func(e Event) bool { return e.Type == "a" })
	if err != nil || e.Type != "a" {
		t.Fatalf("got %v %v", e, err)
	}
	// An event pushed while someone waits wakes them.
	go b.push(Event{Type: "c"})
	if e, err = b.await(ctx, func(e Event) bool { return e.Type == "c" }); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := b.await(short, func(Event) bool { return true }); err == nil {
		t.Fatal("await on an empty inbox returned")
	}
}

func TestInboxIsBounded(t *testing.T) {
	b := newInbox()
	for i := 0; i < maxInbox+10; i++ {
		b.push(Event{Type: "x"})
	}
	if len(b.items) != maxInbox {
		t.Fatalf("%d events kept", len(b.items))
	}
}
