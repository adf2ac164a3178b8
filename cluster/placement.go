package cluster

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"consult/protocol"
)

// A room's placement is a key holding its owner's id, with a lease (the
// key's expiry) that the owner renews at every heartbeat. A placement
// whose owner's registration is gone is void: the next Place claims the
// room for a live node, atomically (a script compares the owner it found
// with the one it replaces), so nodes that race to place a room agree.

// claim sets KEYS[1] (a room's placement) to ARGV[2] if it holds ARGV[1]
// (the dead owner, or "" for none) and that owner is not registered, with
// a lease of ARGV[3] ms, and adds the room ARGV[4] to the new owner's set
// KEYS[2]. It returns the owner after.
var claim = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
if cur and redis.call('EXISTS', '` + keyPrefix + `node:' .. cur) == 1 then return cur end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return ARGV[2]`)

// renew extends the leases of the rooms KEYS[2..] (ARGV[3..] their names)
// held by ARGV[1], or takes them back where no one holds them (after Redis
// was away), and keeps the node's set of rooms KEYS[1] to what it holds.
// It returns the names of rooms another node holds now.
var renew = redis.NewScript(`
local lost = {}
local keep = {}
for i = 2, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if not cur or cur == ARGV[1] then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    redis.call('SADD', KEYS[1], ARGV[i + 1])
    keep[ARGV[i + 1]] = true
  else
    table.insert(lost, ARGV[i + 1])
  end
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[name] and redis.call('GET', ARGV[#ARGV] .. name) ~= ARGV[1] then
    redis.call('SREM', KEYS[1], name)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return lost`)

// release drops KEYS[1] (a room's placement) if ARGV[1] holds it, and
// the room ARGV[2] from the node's set KEYS[2].
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1`)

// releaseAll drops every placement ARGV[1] holds (the rooms in its set
// KEYS[1]), its registration KEYS[2] and its entry in the nodes set KEYS[3].
var releaseAll = redis.NewScript(`
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = '` + keyPrefix + `room:' .. name
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1`)

// renew runs the renew script for rooms.
func (c *Cluster) renew(ctx context.Context, rooms []string) error {
	keys := []string{nodeRoomsKey(c.cfg.NodeID)}
	args := []any{c.cfg.NodeID, c.cfg.TTL.Milliseconds()}
	for _, r := range rooms {
		keys = append(keys, roomKey(r))
		args = append(args, r)
	}
	args = append(args, keyPrefix+"room:")
	lost, err := renew.Run(ctx, c.rdb, keys, args...).StringSlice()
	if err != nil {
		return err
	}
	for _, r := range lost {
		// Redis was away long enough for another node to take the room:
		// the consult here goes on, new joins go there.
		c.log.Warn("cluster: a room held here is placed on another node", zap.String("room", r))
	}
	return nil
}

// Place returns the node that holds room, placing it first if no live
// node does: on the least loaded node that takes new rooms (never this
// one while it drains). A zero Node means no node can take it.
func (c *Cluster) Place(ctx context.Context, room string) (protocol.Node, error) {
	for range 3 {
		owner, err := c.rdb.Get(ctx, roomKey(room)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return protocol.Node{}, err
		}
		if owner != "" {
			n, ok, err := c.Node(ctx, owner)
			if err != nil {
				return protocol.Node{}, err
			}
			if ok {
				return n, nil
			}
		}
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return protocol.Node{}, err
		}
		target, ok := c.choose(nodes)
		if !ok {
			return protocol.Node{}, nil
		}
		won, err := claim.Run(ctx, c.rdb, []string{roomKey(room), nodeRoomsKey(target.ID)},
			owner, target.ID, c.cfg.TTL.Milliseconds(), room).Text()
		if err != nil {
			return protocol.Node{}, err
		}
		if won == target.ID {
			c.log.Info("cluster: room placed", zap.String("room", room), zap.String("on", target.ID),
				zap.String("was", owner))
			return target, nil
		}
		// Another node placed it first: read where.
	}
	return protocol.Node{}, errors.New("cluster: the room's placement keeps changing")
}

// Owner returns the node that holds room; ok is false when no live node does.
func (c *Cluster) Owner(ctx context.Context, room string) (protocol.Node, bool, error) {
	owner, err := c.rdb.Get(ctx, roomKey(room)).Result()
	if errors.Is(err, redis.Nil) {
		return protocol.Node{}, false, nil
	}
	if err != nil {
		return protocol.Node{}, false, err
	}
	return c.Node(ctx, owner)
}

// choose picks the node for a new room: not draining, with seats left,
// and the least loaded by rooms placed, live participants (four count as
// one room) and CPU (a fully loaded core counts as four rooms).
func (c *Cluster) choose(nodes []protocol.Node) (protocol.Node, bool) {
	score := func(n protocol.Node) float64 {
		return float64(n.Rooms) + float64(n.Load.Participants)/4 + 4*n.Load.CPU
	}
	var ok []protocol.Node
	for _, n := range nodes {
		if n.Draining || n.ID == c.cfg.NodeID && c.draining.Load() {
			continue
		}
		if n.Capacity > 0 && n.Load.Participants >= n.Capacity {
			continue
		}
		ok = append(ok, n)
	}
	if len(ok) == 0 {
		return protocol.Node{}, false
	}
	sort.Slice(ok, func(i, j int) bool {
		si, sj := score(ok[i]), score(ok[j])
		if si != sj {
			return si < sj
		}
		return ok[i].ID < ok[j].ID
	})
	return ok[0], true
}

// Reachable returns node id's record if it is registered and answers. A
// node whose port refuses connections is dead (a crashed process on a
// live host): its registration is dropped at once, so its rooms can be
// placed again without waiting for the lease to run out. A node that does
// not answer in time is left to its lease.
func (c *Cluster) Reachable(ctx context.Context, id string) (protocol.Node, bool, error) {
	n, ok, err := c.Node(ctx, id)
	if err != nil || !ok || id == c.cfg.NodeID {
		return n, ok, err
	}
	// Anyone can present a token naming a node: probe each at most once
	// a second.
	c.mu.Lock()
	seen, fresh := c.probed[id]
	fresh = fresh && time.Since(seen.at) < time.Second
	c.mu.Unlock()
	if fresh && seen.alive {
		return n, true, nil
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(pctx, http.MethodGet, n.URL+"/healthz", nil)
	resp, err := probeClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	alive := err == nil || !errors.Is(err, syscall.ECONNREFUSED)
	c.mu.Lock()
	c.probed[id] = probeSeen{at: time.Now(), alive: alive}
	c.mu.Unlock()
	if alive {
		return n, true, nil
	}
	c.log.Warn("cluster: a node refuses connections; dropping its registration", zap.String("dead", id))
	pipe := c.rdb.TxPipeline()
	pipe.Del(ctx, nodeKey(id))
	pipe.SRem(ctx, nodesKey, id)
	_, err = pipe.Exec(ctx)
	return protocol.Node{}, false, err
}

// probeSeen is a probe's answer.
type probeSeen struct {
	at    time.Time
	alive bool
}

// probeClient checks other nodes' /healthz; self-signed test certificates
// are not its concern (a refused connection is all it looks for).
var probeClient = &http.Client{Timeout: time.Second}
