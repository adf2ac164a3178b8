package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// What of a room must outlive the node it runs on, so that a consult
// placed again after its node died carries on as it was: the operator's
// policy for the room (capacity, direct path, direct entry, recording
// allowed), and which guests are in the call by a host's leave, so that
// they come back to the call rather than to the waiting room. Identities
// are kept, never names. The writes go through one queue, in order, so
// that callers (signaling, under its lock) never wait on Redis, and an
// admission followed by a removal ends as a removal.

// admittedFor bounds how long a room's admissions are kept after the last
// one (a consult is far shorter; a room that ends normally forgets them).
const admittedFor = 12 * time.Hour

// writeQueue bounds the writes waiting for Redis; past it they are dropped
// (and logged): Redis is away, and the consults go on without it.
const writeQueue = 1024

// write queues f; it never blocks.
func (c *Cluster) write(what string, f func(context.Context) error) {
	select {
	case c.writes <- func(ctx context.Context) {
		if err := f(ctx); err != nil {
			c.log.Warn("cluster: a write to Redis failed", zap.String("what", what), zap.Error(err))
		}
	}:
	default:
		c.log.Error("cluster: too many writes waiting for Redis; dropping one", zap.String("what", what))
	}
}

// writer runs the queued writes until Close, then what is left, briefly.
func (c *Cluster) writer() {
	defer close(c.wrote)
	do := func(f func(context.Context)) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		f(ctx)
		cancel()
	}
	for {
		select {
		case f := <-c.writes:
			do(f)
		case <-c.stop:
			for {
				select {
				case f := <-c.writes:
					do(f)
				default:
					return
				}
			}
		}
	}
}

// SavePolicy stores a room's policy (opaque JSON to this package).
func (c *Cluster) SavePolicy(room string, policy []byte) {
	c.write("policy", func(ctx context.Context) error { return c.rdb.Set(ctx, policyKey(room), policy, 0).Err() })
}

// LoadPolicy returns a room's stored policy, nil if it has none.
func (c *Cluster) LoadPolicy(ctx context.Context, room string) ([]byte, error) {
	b, err := c.rdb.Get(ctx, policyKey(room)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// SetAdmitted records that identity is in room's call by a host's leave
// (in), or no longer (sent back, removed, gone).
func (c *Cluster) SetAdmitted(room, identity string, in bool) {
	c.write("admission", func(ctx context.Context) error {
		pipe := c.rdb.TxPipeline()
		if in {
			pipe.SAdd(ctx, admittedKey(room), identity)
			pipe.Expire(ctx, admittedKey(room), admittedFor)
		} else {
			pipe.SRem(ctx, admittedKey(room), identity)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// Admitted reports whether identity was in room's call by a host's leave.
// It reads behind this node's queued writes (a removal just made must
// count). Without Redis it says no at once: the guest waits for a host.
func (c *Cluster) Admitted(ctx context.Context, room, identity string) bool {
	if !c.up.Load() {
		return false
	}
	got := make(chan bool, 1)
	select {
	case c.writes <- func(wctx context.Context) {
		ok, err := c.rdb.SIsMember(wctx, admittedKey(room), identity).Result()
		got <- err == nil && ok
	}:
	case <-ctx.Done():
		return false
	}
	select {
	case ok := <-got:
		return ok
	case <-ctx.Done():
		return false
	}
}

// RoomEnded forgets a consult's admissions, and gives up the room's
// placement unless keep (a room set up ahead stays placed here).
func (c *Cluster) RoomEnded(room string, keep bool) {
	c.write("room ended", func(ctx context.Context) error {
		if err := c.rdb.Del(ctx, admittedKey(room)).Err(); err != nil || keep {
			return err
		}
		return release.Run(ctx, c.rdb, []string{roomKey(room), nodeRoomsKey(c.cfg.NodeID)}, c.cfg.NodeID, room).Err()
	})
}
