package cluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// AcquireConn implements queue.Shared: it takes a lease on one of the
// limit connections of provider, unless the live leases of every node
// already reach it. In fallback it takes a lease locally only, which the
// next heartbeat after Redis returns registers, and none in the first two
// heartbeats, while the other nodes close the connections they hold over
// their share.
func (c *Cluster) AcquireConn(provider string, limit int) bool {
	member := c.opts.NodeID + "#" + strconv.FormatUint(c.leaseSeq.Add(1), 10)
	if !c.up.Load() {
		c.leasesMu.Lock()
		hold := time.Now().Before(c.holdUntil)
		c.leasesMu.Unlock()
		if hold {
			return false
		}
	} else {
		ctx, cancel := c.ctx()
		defer cancel()
		ok, err := acquireScript.Run(ctx, c.rdb, []string{c.key("conns", provider)}, member, limit, c.opts.LeaseTTL.Milliseconds()).Int64()
		if err != nil {
			// In fallback from now on: the node asks again under its share
			// once the others have closed what they hold over theirs.
			c.fail(fmt.Errorf("cluster: connection lease of %s: %w", provider, err))
			return false
		}
		if ok == 0 {
			return false
		}
	}
	c.leasesMu.Lock()
	c.leases[provider] = append(c.leases[provider], member)
	c.leasesMu.Unlock()
	return true
}

// ReleaseConn implements queue.Shared: it gives back one of the node's
// leases of provider.
func (c *Cluster) ReleaseConn(provider string) {
	c.leasesMu.Lock()
	held := c.leases[provider]
	if len(held) == 0 {
		c.leasesMu.Unlock()
		return
	}
	member := held[len(held)-1]
	c.leases[provider] = held[:len(held)-1]
	c.leasesMu.Unlock()
	if !c.up.Load() {
		return // the lease, if Redis still has it, expires
	}
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.rdb.ZRem(ctx, c.key("conns", provider), member).Err(); err != nil {
		c.fail(fmt.Errorf("cluster: connection lease of %s: %w", provider, err))
	}
}

// renewLeases extends every lease the node holds, registering again those
// a restarted Redis lost.
func (c *Cluster) renewLeases(ctx context.Context) error {
	c.leasesMu.Lock()
	held := make(map[string][]any, len(c.leases))
	for p, members := range c.leases {
		if len(members) > 0 {
			args := []any{c.opts.LeaseTTL.Milliseconds()}
			for _, m := range members {
				args = append(args, m)
			}
			held[p] = args
		}
	}
	c.leasesMu.Unlock()
	if len(held) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for p, args := range held {
		renewScript.Eval(ctx, pipe, []string{c.key("conns", p)}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: renew connection leases: %w", err)
	}
	return nil
}

// acquireScript drops the expired leases of KEYS[1] and adds lease ARGV[1]
// for ARGV[3] ms if fewer than ARGV[2] are left; it returns 1 if it did.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
return 1
`)

// renewScript extends the leases ARGV[2..] of KEYS[1] to ARGV[1] ms from
// now, adding those that are missing.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return #ARGV - 1
`)
