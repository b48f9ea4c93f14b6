package cluster

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"corriere/core/queue"
	"corriere/core/warmup"
)

// Warmup is the warm-up daily counts shared by the cluster: what every
// node sent from each warming IP to each provider today. It implements
// queue.WarmupCounter over the node's own tracker, which keeps counting
// what this node sends (a restart does not forget it).
type Warmup struct {
	c     *Cluster
	local *warmup.Tracker

	mu sync.Mutex
	// shared is the cluster's count of each key when Redis last answered.
	shared map[warmKey]int64
	// pending is what the node sent in fallback, not yet added in Redis.
	pending map[warmKey]int64
}

type warmKey struct{ day, source, provider string }

var _ queue.WarmupCounter = (*Warmup)(nil)

// Warmup returns the shared counts over local, the node's own tracker.
func (c *Cluster) Warmup(local *warmup.Tracker) *Warmup {
	w := &Warmup{c: c, local: local, shared: map[warmKey]int64{}, pending: map[warmKey]int64{}}
	c.warm.Store(w)
	return w
}

func (w *Warmup) key(source, provider string) warmKey {
	return warmKey{time.Now().UTC().Format("2006-01-02"), source, provider}
}

// Sent returns the cluster's count of today when Redis last answered,
// plus what the node sent since in fallback; never less than the node's
// own count. It makes no Redis call.
func (w *Warmup) Sent(source, provider string) int64 {
	k := w.key(source, provider)
	w.mu.Lock()
	n := w.shared[k] + w.pending[k]
	w.mu.Unlock()
	return max(n, w.local.Sent(source, provider))
}

// Reserve takes up to n of today's limit in Redis, and records what it
// took in the node's tracker. In fallback the node takes from its share of
// what was left when Redis last answered.
func (w *Warmup) Reserve(source, provider string, limit, n int) (int, error) {
	k := w.key(source, provider)
	if w.c.up.Load() {
		ctx, cancel := w.c.ctx()
		defer cancel()
		res, err := warmupScript.Run(ctx, w.c.rdb, []string{w.c.key("warmup", k.day, source, provider)}, limit, n).Int64Slice()
		if err == nil && len(res) == 2 {
			w.mu.Lock()
			w.shared[k] = res[1]
			w.mu.Unlock()
			return w.record(source, provider, int(res[0]))
		}
		if err == nil {
			err = fmt.Errorf("warm-up script answered %v", res)
		}
		w.c.fail(fmt.Errorf("cluster: warm-up count of %s towards %s: %w", source, provider, err))
	}
	w.mu.Lock()
	left := float64(int64(limit) - w.shared[k])
	allowance := int64(math.Floor(left*w.c.Share())) - w.pending[k]
	take := int64(max(0, min(int64(n), allowance)))
	w.pending[k] += take
	w.mu.Unlock()
	return w.record(source, provider, int(take))
}

// record counts take in the node's own tracker.
func (w *Warmup) record(source, provider string, take int) (int, error) {
	if take <= 0 {
		return 0, nil
	}
	if _, err := w.local.Reserve(source, provider, math.MaxInt32, take); err != nil {
		return take, err
	}
	return take, nil
}

// NextDay returns the start of the next UTC day, when caps reset.
func (w *Warmup) NextDay() time.Time { return w.local.NextDay() }

// reconcile adds in Redis what the node sent in fallback.
func (w *Warmup) reconcile() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := w.c.ctx()
	defer cancel()
	for k, n := range w.pending {
		total, err := mergeScript.Run(ctx, w.c.rdb, []string{w.c.key("warmup", k.day, k.source, k.provider)}, n, w.shared[k]+n).Int64()
		if err != nil {
			return fmt.Errorf("cluster: reconcile warm-up counts: %w", err)
		}
		w.shared[k] = total
		delete(w.pending, k)
	}
	today := time.Now().UTC().Format("2006-01-02")
	for k := range w.shared {
		if k.day != today {
			delete(w.shared, k)
		}
	}
	return nil
}

// warmupScript takes up to ARGV[2] of the limit ARGV[1] in the day's
// count KEYS[1] and returns {taken, count}.
var warmupScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local take = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - cur)
if take <= 0 then return {0, cur} end
cur = redis.call('INCRBY', KEYS[1], take)
redis.call('EXPIRE', KEYS[1], 172800)
return {take, cur}
`)

// mergeScript adds ARGV[1], what a node sent in fallback, to the day's
// count KEYS[1], and raises it to at least ARGV[2], what the node knew of
// the count plus ARGV[1]: a Redis that restarted empty does not hand out
// the day's allowance again. It returns the count.
var mergeScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[1])
cur = math.max(cur, tonumber(ARGV[2]))
redis.call('SET', KEYS[1], cur, 'EX', 172800)
return cur
`)
