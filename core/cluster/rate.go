package cluster

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"corriere/core/policy"
	"corriere/core/queue"
)

// maxBatch bounds the messages one round trip reserves.
const maxBatch = 16

// rateKey names the pair whose messages share a batch.
type rateKey struct{ provider, source string }

// batch is the allowance a node reserved for one (provider, source) and
// spends locally.
type batch struct {
	mu      sync.Mutex
	args    []any     // the script arguments the tokens were granted under
	tokens  int       // messages left
	expires time.Time // tokens left after this are dropped
	retry   time.Time // before this, Redis said to wait
}

// rateArgs are the numbers of one scope the rate script reads.
type rateArgs struct {
	perSecond, perMinute, perHour, perDay float64
	capacity                              int
}

// scopeArgs returns the rates of lim at factor, the hourly and daily
// volumes short of the critical reserve unless critical.
func scopeArgs(lim policy.Limits, factor float64, critical bool) rateArgs {
	if factor <= 0 {
		factor = 1
	}
	vol := factor
	if !critical {
		vol *= 1 - math.Min(1, math.Max(0, lim.CriticalReserve))
	}
	return rateArgs{
		perSecond: lim.PerSecond * factor, perMinute: lim.PerMinute * factor,
		perHour: lim.PerHour * vol, perDay: lim.PerDay * vol, capacity: max(lim.Burst, 1),
	}
}

// none reports whether the scope limits nothing.
func (a rateArgs) none() bool {
	return a.perSecond <= 0 && a.perMinute <= 0 && a.perHour <= 0 && a.perDay <= 0
}

// perSecondRate returns the slowest of the scope's rates in messages per
// second, +Inf when it limits nothing.
func (a rateArgs) perSecondRate() float64 {
	r := math.Inf(1)
	for _, v := range []float64{a.perSecond, a.perMinute / 60, a.perHour / 3600, a.perDay / 86400} {
		if v > 0 {
			r = math.Min(r, v)
		}
	}
	return r
}

// Reserve implements queue.Shared: it spends one message of the node's
// batch for r's lane, reserving a new batch in Redis when it is spent. In
// fallback it lets every message through: the local limiters keep the
// node to its share.
func (c *Cluster) Reserve(r queue.SharedRate) time.Duration {
	if !c.up.Load() {
		return 0
	}
	lane := scopeArgs(r.Lane, r.LaneFactor, r.Critical)
	prov := scopeArgs(r.Prov, r.ProvFactor, r.Critical)
	if lane.none() && prov.none() {
		return 0
	}
	rps := math.Min(lane.perSecondRate(), prov.perSecondRate())
	want := int(math.Max(1, math.Min(maxBatch, math.Floor(rps*c.opts.BatchSpan.Seconds()))))
	args := []any{want, r.Provider}
	for _, a := range []rateArgs{prov, lane} {
		args = append(args, a.perSecond, a.perMinute, a.perHour, a.perDay, max(a.capacity, want))
	}

	b := c.batchFor(rateKey{r.Provider, r.Source})
	b.mu.Lock()
	defer b.mu.Unlock()
	if !c.up.Load() {
		return 0 // Redis went away while another runner asked it
	}
	now := time.Now()
	if sameArgs(b.args, args) {
		if b.tokens > 0 && now.Before(b.expires) {
			b.tokens--
			return 0
		}
		if now.Before(b.retry) {
			return b.retry.Sub(now)
		}
	}
	b.args, b.tokens = args, 0
	// A node without a connection to the provider asks only if one is
	// free: its runners would otherwise take allowance they cannot use.
	connLimit := 0
	if r.Prov.MaxConnections > 0 && !c.holdsLease(r.Provider) {
		connLimit = r.Prov.MaxConnections
	}
	ctx, cancel := c.ctx()
	defer cancel()
	c.metrics.calls.Inc()
	res, err := rateScript.Run(ctx, c.rdb,
		[]string{c.key("rate", r.Provider), c.key("rate", r.Provider+"|"+r.Source), c.key("providers"), c.key("sent", r.Provider), c.key("conns", r.Provider)},
		append(args, connLimit)...).Int64Slice()
	if err != nil || len(res) != 2 {
		if err == nil {
			err = fmt.Errorf("rate script answered %v", res)
		}
		c.fail(fmt.Errorf("cluster: rate of %s: %w", r.Provider, err))
		return 0
	}
	if granted := int(res[0]); granted > 0 {
		b.tokens = granted - 1
		b.expires = now.Add(2 * c.opts.BatchSpan)
		return 0
	}
	wait := max(time.Duration(res[1])*time.Microsecond, time.Millisecond)
	b.retry = now.Add(wait)
	return wait
}

// Cancel implements queue.Shared: the message the last Reserve let through
// did not go, so its allowance goes back to the node's batch.
func (c *Cluster) Cancel(provider, source string) {
	b := c.batchFor(rateKey{provider, source})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.args == nil {
		return
	}
	b.tokens++
	if now := time.Now(); now.After(b.expires) {
		b.expires = now.Add(2 * c.opts.BatchSpan)
	}
}

// holdsLease reports whether the node holds a connection lease of provider.
func (c *Cluster) holdsLease(provider string) bool {
	c.leasesMu.Lock()
	defer c.leasesMu.Unlock()
	return len(c.leases[provider]) > 0
}

// batchFor returns the batch of k, creating it.
func (c *Cluster) batchFor(k rateKey) *batch {
	c.ratesMu.Lock()
	defer c.ratesMu.Unlock()
	b, ok := c.rates[k]
	if !ok {
		b = &batch{}
		c.rates[k] = b
	}
	return b
}

func sameArgs(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rateScript reserves up to ARGV[1] messages of the rates of two scopes,
// the provider (KEYS[1]) and the lane (KEYS[2]), and returns {granted,
// wait in µs when none}. Each scope has five arguments: per-second and
// per-minute rates (GCRA, whose capacity is the fifth), per-hour and
// per-day volumes (sliding windows). It also records the provider's name
// in KEYS[3] and counts what it granted in KEYS[4] and in KEYS[4]'s
// per-minute counters, for cluster status. When ARGV[13] is not 0 the node
// holds no connection to the provider, and gets nothing while the live
// leases of KEYS[5] reach that limit.
var rateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local connLimit = tonumber(ARGV[13])
if connLimit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', math.floor(now / 1000))
  if redis.call('ZCARD', KEYS[5]) >= connLimit then
    return {0, 100000}
  end
end
local want = tonumber(ARGV[1])
local grant = want
local wait = 0
local gcras = {}
local windows = {}
for i = 1, 2 do
  local key = KEYS[i]
  local base = 2 + (i - 1) * 5
  local cap = tonumber(ARGV[base + 5])
  local periods = {1000000, 60000000}
  for j = 1, 2 do
    local rate = tonumber(ARGV[base + j])
    if rate > 0 then
      local T = periods[j] / rate
      local k = key .. ':gcra:' .. periods[j]
      local tat = tonumber(redis.call('GET', k) or '0')
      if tat < now then tat = now end
      local tau = cap * T
      local avail = math.floor((now + tau - tat) / T)
      if avail < grant then grant = math.max(avail, 0) end
      if avail < 1 then wait = math.max(wait, tat + T - tau - now) end
      gcras[#gcras + 1] = {k, tat, T, tau}
    end
  end
  local lengths = {3600000000, 86400000000}
  for j = 1, 2 do
    local limit = tonumber(ARGV[base + 2 + j])
    if limit > 0 then
      local len = lengths[j]
      local idx = math.floor(now / len)
      local kc = key .. ':win:' .. len .. ':' .. idx
      local kp = key .. ':win:' .. len .. ':' .. (idx - 1)
      local cur = tonumber(redis.call('GET', kc) or '0')
      local prev = tonumber(redis.call('GET', kp) or '0')
      local start = idx * len
      local overlap = 1 - (now - start) / len
      local avail = math.floor(limit - prev * overlap - cur)
      if avail < grant then grant = math.max(avail, 0) end
      if avail < 1 then
        local at = start + len
        if cur + 1 <= limit and prev > 0 then
          at = start + (1 - (limit - cur - 1) / prev) * len
        end
        wait = math.max(wait, at - now)
      end
      windows[#windows + 1] = {kc, len}
    end
  end
end
if grant > 0 then
  for _, g in ipairs(gcras) do
    local tat = math.floor(g[2] + grant * g[3])
    redis.call('SET', g[1], tat, 'PX', math.ceil((tat - now + g[4]) / 1000) + 1000)
  end
  for _, w in ipairs(windows) do
    redis.call('INCRBY', w[1], grant)
    redis.call('PEXPIRE', w[1], math.ceil(2 * w[2] / 1000))
  end
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('INCRBY', KEYS[4], grant)
  local minute = KEYS[4] .. ':' .. math.floor(now / 60000000)
  redis.call('INCRBY', minute, grant)
  redis.call('PEXPIRE', minute, 120000)
end
return {grant, math.ceil(wait)}
`)
