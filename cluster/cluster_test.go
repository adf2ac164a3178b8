package cluster

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/internal/testredis"
	"consult/protocol"
)

const testTTL = 400 * time.Millisecond

// node starts a node of the cluster at rdb whose URL answers /healthz,
// holding the rooms held returns.
func node(t *testing.T, rdb, id string, held func() []string) *Cluster {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(web.Close)
	c, err := New(Config{Redis: rdb, NodeID: id, URL: web.URL, TTL: testTTL, Rooms: held})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	t.Cleanup(func() {
		select {
		case <-c.stop:
		default:
			c.Close()
		}
	})
	return c
}

// crash stops a node's heartbeat without leaving the cluster, as a killed
// process does.
func crash(c *Cluster) {
	close(c.stop)
	<-c.done
}

func place(t *testing.T, c *Cluster, room string) protocol.Node {
	t.Helper()
	n, err := c.Place(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoomsSpreadAndEveryNodeAgreesWhereOneLives(t *testing.T) {
	r := testredis.Start(t)
	a, b, c := node(t, r.URL, "a", nil), node(t, r.URL, "b", nil), node(t, r.URL, "c", nil)
	testenv.Eventually(t, 5*time.Second, "three nodes", func() bool {
		ns, _ := a.Nodes(context.Background())
		return len(ns) == 3
	})
	owners := map[string]bool{}
	for _, room := range []string{"r1", "r2", "r3"} {
		owners[place(t, a, room).ID] = true
	}
	if len(owners) != 3 {
		t.Fatalf("three rooms placed on %v, want one per node", owners)
	}
	// Nodes racing to place one room agree on its owner.
	var wg sync.WaitGroup
	got := make([]string, 3)
	for i, n := range []*Cluster{a, b, c} {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = place(t, n, "shared").ID }()
	}
	wg.Wait()
	if got[0] != got[1] || got[1] != got[2] {
		t.Fatalf("nodes disagree on a room's owner: %v", got)
	}
	if o, ok, _ := c.Owner(context.Background(), "r1"); !ok || o.ID != place(t, b, "r1").ID {
		t.Fatalf("owner of r1: %v %v", o, ok)
	}
}

func TestADeadNodesRoomsArePlacedAgain(t *testing.T) {
	r := testredis.Start(t)
	a := node(t, r.URL, "a", func() []string { return []string{"visit"} })
	b := node(t, r.URL, "b", nil)
	if o := place(t, b, "visit"); o.ID != "a" {
		t.Fatalf("visit placed on %s; a holds it", o.ID)
	}
	crash(a)
	testenv.Eventually(t, 5*time.Second, "the dead node's room to move", func() bool {
		return place(t, b, "visit").ID == "b"
	})
}

func TestANodeThatRefusesConnectionsIsDroppedAtOnce(t *testing.T) {
	r := testredis.Start(t)
	a := node(t, r.URL, "a", nil)
	b := node(t, r.URL, "b", func() []string { return []string{"visit"} })
	if _, ok, err := a.Reachable(context.Background(), "b"); err != nil || !ok {
		t.Fatalf("a live node: %v %v", ok, err)
	}
	// b's process dies: its port refuses, its lease has not run out.
	crash(b)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	b.self.URL = dead
	a.mu.Lock()
	clear(a.probed) // the last probe's answer, kept for a second
	a.mu.Unlock()
	ctx := context.Background()
	if err := b.beat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Reachable(ctx, "b"); err != nil || ok {
		t.Fatalf("a refusing node counts as reachable (%v, %v)", ok, err)
	}
	if o := place(t, a, "visit"); o.ID != "a" {
		t.Fatalf("a dead node's room placed on %s", o.ID)
	}
}

func TestRoomsComeBackAfterRedisRestarts(t *testing.T) {
	r := testredis.Start(t)
	a := node(t, r.URL, "a", func() []string { return []string{"visit"} })
	if !a.Up() {
		t.Fatal("not registered")
	}
	r.Stop()
	testenv.Eventually(t, 5*time.Second, "the node to notice Redis is gone", func() bool { return !a.Up() })
	if _, err := a.Place(context.Background(), "new"); err == nil {
		t.Fatal("placing a room without Redis worked")
	}
	r.Restart() // empty: everything the cluster knew is gone
	testenv.Eventually(t, 5*time.Second, "the node to register again", func() bool { return a.Up() })
	if o, ok, err := a.Owner(context.Background(), "visit"); err != nil || !ok || o.ID != "a" {
		t.Fatalf("after Redis came back, visit's owner is %v (%v, %v)", o, ok, err)
	}
}

func TestADrainingNodeTakesNoNewRoomsButKeepsItsOwn(t *testing.T) {
	r := testredis.Start(t)
	a := node(t, r.URL, "a", func() []string { return []string{"running"} })
	node(t, r.URL, "b", nil)
	a.SetDraining(true)
	for _, room := range []string{"n1", "n2", "n3"} {
		if o := place(t, a, room); o.ID != "b" {
			t.Fatalf("a new room placed on %s while a drains", o.ID)
		}
	}
	if o := place(t, a, "running"); o.ID != "a" {
		t.Fatalf("a draining node's own room moved to %s", o.ID)
	}
}

func TestLeavingReleasesTheNodesRooms(t *testing.T) {
	r := testredis.Start(t)
	a := node(t, r.URL, "a", func() []string { return []string{"visit"} })
	b := node(t, r.URL, "b", nil)
	if _, ok, _ := b.Owner(context.Background(), "visit"); !ok {
		t.Fatal("no owner")
	}
	a.Close()
	if o, ok, _ := b.Owner(context.Background(), "visit"); ok {
		t.Fatalf("a node that left still holds visit: %v", o)
	}
	if ns, _ := b.Nodes(context.Background()); len(ns) != 1 {
		t.Fatalf("nodes after one left: %v", ns)
	}
}
