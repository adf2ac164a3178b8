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
// allowed), and which guests a host had let in, so they come back to the
// call rather than to the waiting room. Identities are kept, never names.

// admittedFor bounds how long a room's admissions are kept after the last
// one (a consult is far shorter; a room that ends normally forgets them).
const admittedFor = 12 * time.Hour

// SavePolicy stores a room's policy (opaque JSON to this package).
func (c *Cluster) SavePolicy(room string, policy []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.rdb.Set(ctx, policyKey(room), policy, 0).Err(); err != nil {
		c.log.Error("cluster: could not store a room's policy", zap.String("room", room), zap.Error(err))
	}
}

// LoadPolicy returns a room's stored policy, nil if it has none.
func (c *Cluster) LoadPolicy(ctx context.Context, room string) ([]byte, error) {
	b, err := c.rdb.Get(ctx, policyKey(room)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// SetAdmitted remembers that identity was let into room's call (in), or
// sent back to the waiting room.
func (c *Cluster) SetAdmitted(room, identity string, in bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pipe := c.rdb.TxPipeline()
	if in {
		pipe.SAdd(ctx, admittedKey(room), identity)
		pipe.Expire(ctx, admittedKey(room), admittedFor)
	} else {
		pipe.SRem(ctx, admittedKey(room), identity)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		c.log.Warn("cluster: could not store an admission", zap.String("room", room), zap.Error(err))
	}
}

// Admitted reports whether a host had let identity into room's call.
func (c *Cluster) Admitted(ctx context.Context, room, identity string) bool {
	ok, err := c.rdb.SIsMember(ctx, admittedKey(room), identity).Result()
	return err == nil && ok
}

// RoomEnded forgets a consult's admissions: the next one in the room
// starts with everyone waiting again.
func (c *Cluster) RoomEnded(room string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.rdb.Del(ctx, admittedKey(room)).Err()
}
