package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"consult/cluster"
	"consult/internal/testenv"
	"consult/internal/testlog"
	"consult/internal/testredis"
	"consult/sfu"
	"consult/signaling"
	"consult/web"
)

// clusterNode is one in-process node of a test cluster: SFU, signaling
// and the web client, on its own origin.
type clusterNode struct {
	URL string
	cl  *cluster.Cluster
	sig *signaling.Server
	hs  *httptest.Server
	sfu *sfu.SFU
}

func startClusterNode(t *testing.T, redis, id string) *clusterNode {
	t.Helper()
	log := testlog.New(t).Named(id)
	s, err := sfu.New(sfu.Config{Logger: log.Named("sfu"), ICE: sfu.ICEConfig{IncludeLoopback: true, Interfaces: []string{"lo"}}})
	if err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{sfu: s}
	mux := http.NewServeMux()
	n.hs = httptest.NewUnstartedServer(mux)
	n.URL = "http://" + n.hs.Listener.Addr().String()
	n.cl, err = cluster.New(cluster.Config{Redis: redis, NodeID: id, URL: n.URL, Logger: log.Named("cluster"),
		Rooms: func() []string { return n.sig.HeldRooms() }})
	if err != nil {
		t.Fatal(err)
	}
	n.sig = signaling.New(signaling.Config{Logger: log.Named("signaling"), Media: signaling.SFUMedia(s), Cluster: n.cl,
		P2P: signaling.P2PConfig{Disabled: true}})
	mux.Handle("/ws", n.sig.Handler())
	mux.Handle("/api/", n.sig.Handler())
	mux.Handle("/", web.HandlerWith(web.Options{ConnectSources: n.cl.SocketOrigins}))
	n.cl.Start(context.Background())
	n.hs.Start()
	t.Cleanup(n.stop)
	return n
}

// stop takes the node out at once: its sockets cut, its port closed.
func (n *clusterNode) stop() {
	if n.hs == nil {
		return
	}
	n.hs.CloseClientConnections()
	n.hs.Close()
	n.cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.sig.Shutdown(ctx)
	_ = n.sfu.Close()
	n.hs = nil
}

// Two pages loaded from one node of a cluster join a room placed on the
// other: they follow the redirect there (another origin) and see each
// other. When that node goes away, both come back on the node that is
// left, and see each other again.
func TestPagesFollowTheirRoomAcrossTheCluster(t *testing.T) {
	r := testredis.Start(t)
	owner := startClusterNode(t, r.URL, "n1") // the lower id: new rooms go here first
	entry := startClusterNode(t, r.URL, "n2")
	testenv.Eventually(t, 10*time.Second, "both nodes to know each other", func() bool {
		return len(entry.cl.Known()) == 2 && len(owner.cl.Known()) == 2
	})
	_, p := newPages(t, 120*time.Second, 2, "ana", "ben")
	ana, ben := p[0], p[1]
	logConsole(t, ana, "ana")
	do(t, ana, chromedp.Navigate(roomURL(entry.URL, "visit", "Ana", true)))
	do(t, ben, chromedp.Navigate(roomURL(entry.URL, "visit", "Ben", true)))
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)
	const signalURL = `window.consultApp.signal.url`
	for _, pg := range []context.Context{ana, ben} {
		if u := eval[string](t, pg, signalURL); !strings.HasPrefix(u, "ws"+strings.TrimPrefix(owner.URL, "http")) {
			t.Fatalf("a page's socket is at %s; the room is on %s", u, owner.URL)
		}
	}
	if rooms := owner.sig.AllRooms(); len(rooms) != 1 || len(rooms[0].Members) != 2 {
		t.Fatalf("the owner's rooms: %+v", rooms)
	}

	owner.stop()
	waitVideoFlowing(t, ana, "Ana", 1)
	waitVideoFlowing(t, ben, "Ben", 1)
	for _, pg := range []context.Context{ana, ben} {
		if u := eval[string](t, pg, signalURL); !strings.HasPrefix(u, "ws"+strings.TrimPrefix(entry.URL, "http")) {
			t.Fatalf("after its node went, a page's socket is at %s", u)
		}
	}
	if rooms := entry.sig.AllRooms(); len(rooms) != 1 || len(rooms[0].Members) != 2 {
		t.Fatalf("the remaining node's rooms: %+v", rooms)
	}
}
