package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"consult/cluster"
	"consult/internal/testenv"
	"consult/internal/testredis"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

// startNode runs an in-process node of a cluster on loopback and returns
// its WebSocket URL.
func startNode(t *testing.T, redis, id string) string {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	media, err := sfu.New(sfu.Config{ICE: sfu.ICEConfig{IncludeLoopback: true, UDPMux: udp}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	hs := httptest.NewUnstartedServer(mux)
	var sig *signaling.Server
	cl, err := cluster.New(cluster.Config{Redis: redis, NodeID: id, URL: "http://" + hs.Listener.Addr().String(),
		Rooms: func() []string { return sig.HeldRooms() },
		Load: func() protocol.NodeLoad {
			c := sig.Census()
			return protocol.NodeLoad{Rooms: c.RoomCount(), Participants: c.Live}
		}})
	if err != nil {
		t.Fatal(err)
	}
	sig = signaling.New(signaling.Config{Logger: zap.NewNop(), Media: signaling.SFUMedia(media), Capacity: 1000, Cluster: cl})
	mux.Handle("/ws", sig.Handler())
	mux.Handle("/api/", sig.Handler())
	cl.Start(context.Background())
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
		defer cancel()
		_ = sig.Shutdown(ctx)
		hs.Close()
		cl.Close()
		_ = media.Close()
		_ = udp.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// Against a cluster, -url names several nodes: clients spread over them,
// follow the redirects to their rooms' nodes, and the result has each
// node's rooms, clients and load.
func TestHarnessReportsEachNodeOfACluster(t *testing.T) {
	r := testredis.Start(t)
	a, b := startNode(t, r.URL, "n1"), startNode(t, r.URL, "n2")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()
	res, err := runOnce(ctx, RunConfig{
		URL: a + "," + b, Rooms: 2, Publishers: 1, Subscribers: 2,
		Duration: 2 * time.Second, JoinTimeout: 20 * time.Second,
		Media: MediaConfig{VideoKbps: 300, FPS: 15, Audio: true, KeyframeInterval: time.Second, Pacing: 2.5},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	printResult(&report, res)
	t.Log(report.String())
	if res.JoinFailures != 0 || res.SubscribersUp != 4 {
		t.Fatalf("%d subscribers receiving, %d joins failed: %v", res.SubscribersUp, res.JoinFailures, res.JoinErrors)
	}
	if len(res.Nodes) != 2 {
		t.Fatalf("nodes in the result: %+v", res.Nodes)
	}
	for _, n := range res.Nodes {
		if n.Rooms != 1 || n.Clients != 3 || n.Load == nil || n.ID == "" || n.Load.Participants != 3 {
			t.Errorf("node %+v (load %+v): want one room of three clients, with its load", n, n.Load)
		}
	}
}
