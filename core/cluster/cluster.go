package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"corriere/core/event"
	"corriere/core/queue"
)

// Options configure Open.
type Options struct {
	// Addr is the Redis server, host:port. Required.
	Addr string
	// Password authenticates to Redis (AUTH). The default value is none.
	Password string
	// TLS, when set, talks to Redis over TLS with this configuration. The
	// default value is nil: plain TCP.
	TLS *tls.Config
	// NodeID names this node in the cluster; it must differ between
	// nodes. Required.
	NodeID string
	// Prefix starts every Redis key and channel, so that several clusters
	// may share one Redis. The default value is "corriere:".
	Prefix string
	// Heartbeat is how often the node registers itself, renews its
	// connection leases and, in fallback, tries Redis again. The default
	// value is 1s.
	Heartbeat time.Duration
	// NodeTTL is how long a node not seen is still counted live. The
	// default value is 5s.
	NodeTTL time.Duration
	// LeaseTTL is how long a connection lease outlives the node that
	// stopped renewing it. The default value is 5s.
	LeaseTTL time.Duration
	// BatchSpan is how much of a rate a node reserves at once: a batch is
	// rate × BatchSpan messages, between 1 and 16. The default value is
	// 100ms.
	BatchSpan time.Duration
	// Timeout bounds each Redis call; a call that takes longer puts the
	// node in fallback. The default value is 500ms.
	Timeout time.Duration
	// Info tells what the node publishes about itself at each heartbeat.
	// The default value publishes the node ID only.
	Info func() NodeInfo
	// Events receives the Cluster events. May be nil.
	Events event.Sink
	// Logger logs the fallbacks and reconciliations. The default value is
	// slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills in the zero fields of o with their default values.
func (o *Options) EnsureDefaults() {
	if o.Prefix == "" {
		o.Prefix = "corriere:"
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = 5 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.BatchSpan <= 0 {
		o.BatchSpan = 100 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.Info == nil {
		o.Info = func() NodeInfo { return NodeInfo{} }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports the first option that cannot work.
func (o *Options) Validate() error {
	if o.Addr == "" {
		return errors.New("cluster: Addr: no Redis address")
	}
	if o.NodeID == "" {
		return errors.New("cluster: NodeID: the node needs a name in the cluster")
	}
	return nil
}

// NodeInfo is what a node publishes about itself.
type NodeInfo struct {
	// ID is the node's Options.NodeID.
	ID string `json:"id"`
	// Hostname and SMTP are the node's host name and submission address.
	Hostname string `json:"hostname,omitempty"`
	SMTP     string `json:"smtp,omitempty"`
	// Generation is the number of the node's policy generation, and
	// PolicyHash the SHA-256 of its policy files: a node left on an old
	// policy stands out.
	Generation uint64 `json:"generation"`
	PolicyHash string `json:"policy_hash,omitempty"`
	// Started is when the node started; Seen when it last registered.
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
	// Fallback is whether the node kept to its own share when it last
	// registered: it cannot, but Redis may have answered it since.
	Fallback bool `json:"fallback,omitempty"`
}

// Target is what the cluster acts on in the node: *queue.Queue.
type Target interface {
	// SetShare sets the share of every limit the node keeps to alone.
	SetShare(s float64)
	// ApplyThrottle applies a throttle another node decided.
	ApplyThrottle(t queue.Throttle)
}

// Cluster is a node's membership of a cluster. Create it with Open; it is
// safe for concurrent use. It implements queue.Shared.
type Cluster struct {
	opts    Options
	log     *slog.Logger
	rdb     *redis.Client
	started time.Time

	up   atomic.Bool
	live atomic.Int64 // live nodes when last seen, at least 1
	// epoch is the epoch of Redis's data at the last heartbeat (only the
	// heartbeat goroutine uses it); restarted is set when it changed.
	epoch     string
	restarted atomic.Bool

	targetMu sync.Mutex
	target   Target

	ratesMu sync.Mutex
	rates   map[rateKey]*batch

	leasesMu sync.Mutex
	leases   map[string][]string // provider → lease members held
	// holdUntil is when, after falling back, the node may open new
	// connections: the other nodes first close what they hold over their
	// share.
	holdUntil time.Time
	leaseSeq  atomic.Uint64

	supp suppressSync
	warm atomic.Pointer[Warmup]

	metrics metrics

	stop chan struct{}
	done sync.WaitGroup
}

var _ queue.Shared = (*Cluster)(nil)

// Open connects to Redis and starts the heartbeat. When Redis cannot be
// reached, the node starts in fallback and keeps trying: Open fails only
// on invalid options.
func Open(opts Options) (*Cluster, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		opts: opts, log: opts.Logger.With("redis", opts.Addr), started: time.Now(),
		rates: map[rateKey]*batch{}, leases: map[string][]string{}, stop: make(chan struct{}),
	}
	c.rdb = redis.NewClient(&redis.Options{
		Addr: opts.Addr, Password: opts.Password, TLSConfig: opts.TLS,
		DialTimeout: opts.Timeout, ReadTimeout: opts.Timeout, WriteTimeout: opts.Timeout,
		// One dial, no retries: a Redis that does not answer at once puts
		// the node in fallback rather than holding a message back.
		MaxRetries: -1, DialerRetries: 1, PoolSize: 32,
	})
	c.live.Store(1)
	c.metrics = newMetrics()
	c.supp.init()
	if err := c.heartbeat(); err != nil {
		c.fallback(err)
	} else {
		c.setUp()
		c.log.Info("cluster joined", "node", opts.NodeID, "live_nodes", c.live.Load())
	}
	c.done.Add(2)
	go c.heartbeatLoop()
	go c.subscribe(c.openSubscription())
	return c, nil
}

// Close stops the heartbeat, gives back the connection leases, leaves the
// live list and closes the connection to Redis.
func (c *Cluster) Close() error {
	close(c.stop)
	c.done.Wait()
	if c.up.Load() {
		ctx, cancel := c.ctx()
		defer cancel()
		c.leasesMu.Lock()
		for p, members := range c.leases {
			for _, m := range members {
				c.rdb.ZRem(ctx, c.key("conns", p), m)
			}
		}
		c.leasesMu.Unlock()
		c.rdb.ZRem(ctx, c.key("nodes"), c.opts.NodeID)
	}
	if err := c.rdb.Close(); err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	return nil
}

// RegisterMetrics registers the cluster's metrics with reg.
func (c *Cluster) RegisterMetrics(reg prometheus.Registerer) error {
	if err := c.metrics.register(reg); err != nil {
		return fmt.Errorf("cluster: metrics: %w", err)
	}
	return nil
}

// Attach makes the cluster act on t: its share of the limits, and the
// throttles other nodes decide, starting with the suspensions in force.
func (c *Cluster) Attach(t Target) {
	c.targetMu.Lock()
	c.target = t
	c.targetMu.Unlock()
	t.SetShare(c.Share())
	if c.up.Load() {
		if err := c.applySuspensions(); err != nil {
			c.fail(err)
		}
	}
}

// Up reports whether the node uses the shared counts (true) or keeps to
// its own share (false, fallback).
func (c *Cluster) Up() bool { return c.up.Load() }

// LiveNodes returns how many nodes were live when the node last reached
// Redis (itself included).
func (c *Cluster) LiveNodes() int { return int(c.live.Load()) }

// Share returns the share of each limit the node keeps to alone: 1 while
// Redis answers, 1 ÷ the live nodes last seen in fallback.
func (c *Cluster) Share() float64 {
	if c.up.Load() {
		return 1
	}
	return 1 / float64(max(1, c.live.Load()))
}

// key returns the Redis key of parts under the prefix.
func (c *Cluster) key(parts ...string) string {
	k := c.opts.Prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// ctx returns the context of one Redis call.
func (c *Cluster) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opts.Timeout)
}

// fail puts the node in fallback after err, once per outage.
func (c *Cluster) fail(err error) {
	if c.up.CompareAndSwap(true, false) {
		c.fallback(err)
	}
}

// fallback says that the node keeps to its share of each limit: the log
// line, the event and the metric, and the queue's share.
func (c *Cluster) fallback(err error) {
	c.leasesMu.Lock()
	// Two heartbeats: an idle node learns of the outage at its next one.
	c.holdUntil = time.Now().Add(2 * c.opts.Heartbeat)
	c.leasesMu.Unlock()
	c.metrics.setUp(false)
	share := c.Share()
	c.log.Warn("redis unreachable; keeping to this node's share of each limit until it returns",
		"err", err, "live_nodes", c.live.Load(), "share", strconv.FormatFloat(share, 'f', 3, 64))
	c.emit(event.ClusterFallback, fmt.Sprintf("redis %s unreachable (%v); keeping to 1/%d of each limit", c.opts.Addr, err, c.live.Load()))
	c.applyShare(share)
}

// setUp marks Redis reachable and the queue back on the shared counts.
func (c *Cluster) setUp() {
	c.up.Store(true)
	c.metrics.setUp(true)
	c.applyShare(1)
}

// recovered puts the node back on the shared counts after an outage. The
// node keeps to its own share for two more heartbeats: the other nodes,
// still in fallback until their next heartbeat, hold connections that a
// restarted Redis does not know of yet. Then it merges the suppression
// lists again, to take what those nodes pushed when they came back.
func (c *Cluster) recovered() {
	c.up.Store(true)
	c.metrics.setUp(true)
	c.log.Info("redis reachable again; back on the shared counts", "live_nodes", c.live.Load())
	c.emit(event.ClusterReconciled, fmt.Sprintf("redis %s reachable again; %d live nodes", c.opts.Addr, c.live.Load()))
	time.AfterFunc(2*c.opts.Heartbeat, func() {
		if !c.up.Load() {
			return
		}
		c.applyShare(1)
		if err := c.supp.resync(c); err != nil {
			c.fail(err)
		}
	})
}

func (c *Cluster) applyShare(s float64) {
	c.targetMu.Lock()
	t := c.target
	c.targetMu.Unlock()
	if t != nil {
		t.SetShare(s)
	}
}

func (c *Cluster) emit(cat event.Category, reason string) {
	if c.opts.Events != nil {
		c.opts.Events.Emit(&event.Event{Time: time.Now(), Type: event.Cluster, Category: cat, Reason: reason})
	}
}

// heartbeatLoop registers the node and renews its leases every Heartbeat;
// in fallback it tries Redis again and reconciles when it answers.
func (c *Cluster) heartbeatLoop() {
	defer c.done.Done()
	t := time.NewTicker(c.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		wasUp := c.up.Load()
		err := c.heartbeat()
		restarted := c.restarted.Swap(false)
		if err == nil && (!wasUp || restarted) {
			// Back from an outage, or Redis restarted between two
			// heartbeats: either way it lacks what this node counted.
			err = c.reconcile()
			if err == nil {
				c.recovered()
			}
		}
		if err != nil && wasUp {
			c.fail(err)
		}
	}
}

// heartbeat registers the node, renews its connection leases and counts
// the live nodes, in one round trip.
func (c *Cluster) heartbeat() error {
	info := c.opts.Info()
	info.ID, info.Started, info.Seen, info.Fallback = c.opts.NodeID, c.started, time.Now(), !c.up.Load()
	blob, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("cluster: node info: %w", err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	res, err := heartbeatScript.Run(ctx, c.rdb, []string{c.key("nodes"), c.key("node", c.opts.NodeID), c.key("epoch")},
		c.opts.NodeID, blob, c.opts.NodeTTL.Milliseconds(), rand.Text()).Slice()
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	live, _ := res[0].(int64)
	epoch, _ := res[1].(string)
	if c.epoch != "" && epoch != c.epoch {
		c.restarted.Store(true)
	}
	c.epoch = epoch
	c.live.Store(max(1, live))
	c.metrics.live.Set(float64(live))
	return c.renewLeases(ctx)
}

// reconcile gives Redis back what the node counted while it could not
// reach it, and takes the suppressions added elsewhere meanwhile.
func (c *Cluster) reconcile() error {
	if err := c.warm.Load().reconcile(); err != nil {
		return err
	}
	if err := c.applySuspensions(); err != nil {
		return err
	}
	return c.supp.resync(c)
}

// heartbeatScript registers a node (KEYS[2] its info, for ARGV[3] ms),
// drops the nodes not seen for that long from KEYS[1], and returns how
// many are live and the epoch of this Redis's data (KEYS[3], set to
// ARGV[4] when missing): a new epoch means Redis lost what it held.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
end
return {redis.call('ZCARD', KEYS[1]), epoch}
`)

// clientLog passes go-redis's own messages (each failed dial while Redis
// is away) to slog at debug level: the node says once that it fell back.
type clientLog struct{}

func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(clientLog{}) }
