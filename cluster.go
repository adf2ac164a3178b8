package main

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"consult/cluster"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

// newNode makes this server a node of the cluster -redis names: its
// public URL (from -public-url or the listener), its capacity (-max-live)
// and its load, read at each heartbeat from the signaling server (rooms,
// members), the SFU (forwarded bitrate) and the load average.
func newNode(cfg config, ln net.Addr, scheme string, media *sfu.SFU, sig func() *signaling.Server, log *zap.Logger) (*cluster.Cluster, error) {
	u, err := cfg.cluster.nodeURL(scheme, ln)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var lastBytes uint64
	var lastAt time.Time
	load := func() protocol.NodeLoad {
		var l protocol.NodeLoad
		if s := sig(); s != nil {
			c := s.Census()
			l.Rooms, l.Participants = c.RoomCount(), c.Live
		}
		l.CPU, _ = loadPerCPU()
		out := media.Stats().BytesOut
		mu.Lock()
		if !lastAt.IsZero() && out >= lastBytes {
			l.ForwardedBitrate = int64(float64(out-lastBytes) * 8 / time.Since(lastAt).Seconds())
		}
		lastBytes, lastAt = out, time.Now()
		mu.Unlock()
		return l
	}
	rooms := func() []string {
		if s := sig(); s != nil {
			return s.HeldRooms()
		}
		return nil
	}
	mediaAddr := ""
	if cfg.udpPort > 0 && len(cfg.publicIPs) > 0 {
		mediaAddr = net.JoinHostPort(cfg.publicIPs[0], strconv.Itoa(cfg.udpPort))
	}
	return cluster.New(cluster.Config{Redis: cfg.cluster.redis, NodeID: cfg.cluster.nodeID, URL: u, MediaAddr: mediaAddr,
		Capacity: cfg.maxLive, Load: load, Rooms: rooms, Logger: log.Named("cluster")})
}

// registerNode registers the node; it stays registered until stop.
func registerNode(cl *cluster.Cluster) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cl.Start(ctx)
	return cl.Close
}
