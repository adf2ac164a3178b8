// Package cluster makes several servers one service, coordinated through
// Redis: each node registers itself (public URL, media address, capacity,
// load) under a key that expires unless the node renews it, so a dead node
// drops out on its own; each room is placed on one node, which holds a
// lease on it and renews it while the room lives there. Any node can place
// a room (an atomic claim on the least loaded node with room to spare) and
// say where a room lives; signaling sends clients there (a redirect), and
// media goes straight to the owner. This package owns every use of Redis;
// with no -redis it is not built at all and a server is a single node.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"consult/protocol"
)

// Config sets up a node.
type Config struct {
	// Redis is the coordination store's URL: redis://[:password@]host:port/db
	// (rediss:// for TLS).
	Redis string
	// NodeID names this node (default: random). It must differ between nodes.
	NodeID string
	// URL is this node's public base URL (http(s)://host:port), where
	// clients and other nodes reach it.
	URL string
	// MediaAddr is where its media is reached (shown in GET /api/nodes).
	MediaAddr string
	// Capacity is how many live participants it takes (0: no limit).
	Capacity int
	// TTL is how long a node's registration and its rooms' leases last
	// without renewal (4 s); it renews every TTL/4.
	TTL time.Duration
	// Load reports the node's load at each heartbeat.
	Load func() protocol.NodeLoad
	// Rooms lists the rooms this node holds (live ones and those set up
	// ahead), whose leases it renews.
	Rooms  func() []string
	Logger *zap.Logger
}

// Cluster is this node's view of the cluster.
type Cluster struct {
	cfg      Config
	rdb      *redis.Client
	log      *zap.Logger
	draining atomic.Bool
	up       atomic.Bool // the last heartbeat reached Redis

	mu     sync.Mutex
	known  []protocol.Node // as of the last heartbeat (origins)
	self   protocol.Node
	hop    string               // the cluster's token for requests between nodes
	probed map[string]probeSeen // Reachable's recent answers

	writes chan func(context.Context) // state.go: in order, off the caller's path
	stop   chan struct{}
	done   chan struct{}
	wrote  chan struct{}
}

const keyPrefix = "consult:"

func nodeKey(id string) string      { return keyPrefix + "node:" + id }
func nodeRoomsKey(id string) string { return keyPrefix + "noderooms:" + id }
func roomKey(room string) string    { return keyPrefix + "room:" + room }
func policyKey(room string) string  { return keyPrefix + "policy:" + room }
func admittedKey(room string) string {
	return keyPrefix + "admitted:" + room
}

const (
	nodesKey = keyPrefix + "nodes"
	hopKey   = keyPrefix + "hop"
)

// validID is what a node id may be: it starts resume tokens, before a '.'.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HopToken is the token requests between nodes carry (X-Consult-Local):
// a request with it is answered where it lands. Empty until the node has
// reached Redis once.
func (c *Cluster) HopToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hop
}

// New sets up a node of the cluster; Start registers it.
func New(cfg Config) (*Cluster, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 4 * time.Second
	}
	if cfg.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.NodeID = hex.EncodeToString(b[:])
	}
	if !validID.MatchString(cfg.NodeID) {
		return nil, fmt.Errorf("cluster: node id %q: want 1 to 64 letters, digits, '-' or '_'", cfg.NodeID)
	}
	if cfg.Load == nil {
		cfg.Load = func() protocol.NodeLoad { return protocol.NodeLoad{} }
	}
	if cfg.Rooms == nil {
		cfg.Rooms = func() []string { return nil }
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cluster: node URL %q: want http(s)://host:port", cfg.URL)
	}
	redisLogOnce.Do(func() { redis.SetLogger(redisLog{cfg.Logger.Named("redis")}) })
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("cluster: -redis: %w", err)
	}
	// A join waits on Redis: an unreachable one must fail fast, not hang
	// the lobby (the node then answers cluster-unavailable).
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	opt.MaxRetries = 1
	c := &Cluster{cfg: cfg, rdb: redis.NewClient(opt), log: cfg.Logger.With(zap.String("node", cfg.NodeID)),
		stop: make(chan struct{}), done: make(chan struct{}), wrote: make(chan struct{}),
		writes: make(chan func(context.Context), writeQueue), probed: map[string]probeSeen{}}
	c.self = protocol.Node{ID: cfg.NodeID, URL: cfg.URL, MediaAddr: cfg.MediaAddr, Capacity: cfg.Capacity}
	return c, nil
}

// redisLog sends go-redis's own messages (failed dials while Redis is
// away, which the heartbeat reports itself) to zap, at debug level.
type redisLog struct{ l *zap.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.l.Debug(fmt.Sprintf(format, v...))
}

var redisLogOnce sync.Once

// ID is this node's id.
func (c *Cluster) ID() string { return c.cfg.NodeID }

// Start registers the node and keeps it registered until Close. A node
// may start while Redis is away: it registers once Redis is back.
func (c *Cluster) Start(ctx context.Context) {
	if err := c.beat(ctx); err != nil {
		c.log.Error("cluster: Redis unreachable at start; will keep trying", zap.Error(err))
	}
	go c.run()
	go c.writer()
}

// run renews the registration and the leases until Close.
func (c *Cluster) run() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.TTL / 4)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.TTL/2)
			err := c.beat(ctx)
			cancel()
			if err != nil && c.up.Swap(false) {
				c.log.Error("cluster: Redis unreachable: running consults go on, new rooms wait", zap.Error(err))
			}
		}
	}
}

// Close stops the heartbeat and leaves the cluster: the node's record
// and leases go at once rather than when they expire.
func (c *Cluster) Close() {
	close(c.stop)
	<-c.done
	<-c.wrote
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = releaseAll.Run(ctx, c.rdb, []string{nodeRoomsKey(c.cfg.NodeID), nodeKey(c.cfg.NodeID), nodesKey}, c.cfg.NodeID).Result()
	_ = c.rdb.Close()
}

// SetDraining marks the node as taking no new rooms (from now on, and in
// its registration from the next heartbeat).
func (c *Cluster) SetDraining(on bool) { c.draining.Store(on) }

// beat registers the node with its load, renews its rooms' leases and
// refreshes the list of nodes.
func (c *Cluster) beat(ctx context.Context) error {
	c.mu.Lock()
	n := c.self
	c.mu.Unlock()
	n.Load = c.cfg.Load()
	n.Draining = c.draining.Load()
	n.Seen = time.Now().UnixMilli()
	b, _ := json.Marshal(n)
	pipe := c.rdb.TxPipeline()
	pipe.Set(ctx, nodeKey(n.ID), b, c.cfg.TTL)
	pipe.SAdd(ctx, nodesKey, n.ID)
	// The token nodes put on requests to each other: the first node makes
	// it, every node reads it.
	pipe.SetNX(ctx, hopKey, randomToken(), 0)
	hop := pipe.Get(ctx, hopKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if err := c.renew(ctx, c.cfg.Rooms()); err != nil {
		return err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.known = nodes
	c.self = n
	c.hop = hop.Val()
	c.mu.Unlock()
	if !c.up.Swap(true) {
		c.log.Info("cluster: registered", zap.String("url", n.URL), zap.Int("nodes", len(nodes)))
	}
	return nil
}

// Nodes lists the live nodes, with the rooms placed on each.
func (c *Cluster) Nodes(ctx context.Context) ([]protocol.Node, error) {
	ids, err := c.rdb.SMembers(ctx, nodesKey).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = nodeKey(id)
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	pipe := c.rdb.Pipeline()
	var out []protocol.Node
	var counts []*redis.IntCmd
	for i, v := range vals {
		s, ok := v.(string)
		var n protocol.Node
		if !ok || json.Unmarshal([]byte(s), &n) != nil {
			pipe.SRem(ctx, nodesKey, ids[i]) // expired: gone from the cluster
			continue
		}
		out = append(out, n)
		counts = append(counts, pipe.SCard(ctx, nodeRoomsKey(n.ID)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i := range out {
		out[i].Rooms = int(counts[i].Val())
	}
	return out, nil
}

// Node returns a live node's record; ok is false for a node that is gone.
func (c *Cluster) Node(ctx context.Context, id string) (protocol.Node, bool, error) {
	s, err := c.rdb.Get(ctx, nodeKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return protocol.Node{}, false, nil
	}
	if err != nil {
		return protocol.Node{}, false, err
	}
	var n protocol.Node
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return protocol.Node{}, false, nil
	}
	return n, true, nil
}

// Known returns the nodes as of the last heartbeat, without asking Redis
// (the WebSocket origin check and the page's connect-src use it).
func (c *Cluster) Known() []protocol.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]protocol.Node(nil), c.known...)
}

// SocketOrigins are the known nodes as WebSocket origins, for the page's
// connect-src (a page may be sent to the room's node).
func (c *Cluster) SocketOrigins() []string {
	var out []string
	for _, n := range c.Known() {
		out = append(out, n.SocketOrigin())
	}
	return out
}

// Up reports whether the last heartbeat reached Redis.
func (c *Cluster) Up() bool { return c.up.Load() }
