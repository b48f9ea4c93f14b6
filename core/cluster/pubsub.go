package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"corriere/core/queue"
	"corriere/core/suppress"
)

// Channels, under the prefix.
const (
	chanThrottle = "throttle"
	chanSuppress = "suppress"
)

// suppressSync passes the node's suppression changes on to Redis and the
// other nodes.
type suppressSync struct {
	list    atomic.Pointer[suppress.List]
	changes chan suppress.Change
	// lost is set when a change could not be passed on: the next
	// reconciliation pushes the whole list.
	lost atomic.Bool
}

// message is what travels on the channels.
type message struct {
	Origin   string           `json:"origin"`
	Throttle *queue.Throttle  `json:"throttle,omitempty"`
	Change   *suppress.Change `json:"change,omitempty"`
}

func (s *suppressSync) init() { s.changes = make(chan suppress.Change, 4096) }

// AttachSuppression shares list with the other nodes: what is added to it
// here is published to them, what they add is stored in it, and the two
// are merged now and after every outage.
func (c *Cluster) AttachSuppression(list *suppress.List) {
	c.supp.list.Store(list)
	list.OnChange(func(ch suppress.Change) {
		select {
		case c.supp.changes <- ch:
		default:
			c.supp.lost.Store(true)
		}
	})
	c.done.Add(1)
	go c.pushSuppressions()
	if c.up.Load() {
		if err := c.supp.resync(c); err != nil {
			c.fail(err)
		}
	}
}

// pushSuppressions stores each local change in Redis and publishes it.
func (c *Cluster) pushSuppressions() {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case ch := <-c.supp.changes:
			if !c.up.Load() {
				c.supp.lost.Store(true)
				continue
			}
			if err := c.pushSuppression(ch); err != nil {
				c.supp.lost.Store(true)
				c.fail(err)
			}
		}
	}
}

func (c *Cluster) pushSuppression(ch suppress.Change) error {
	blob, err := json.Marshal(message{Origin: c.opts.NodeID, Change: &ch})
	if err != nil {
		return fmt.Errorf("cluster: suppression: %w", err)
	}
	entry, err := json.Marshal(ch.Entry)
	if err != nil {
		return fmt.Errorf("cluster: suppression: %w", err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	pipe := c.rdb.TxPipeline()
	field := ch.Entry.Tenant + "\x00" + ch.Entry.Address
	if ch.Removed {
		pipe.HDel(ctx, c.key("suppress"), field)
	} else {
		pipe.HSet(ctx, c.key("suppress"), field, entry)
	}
	pipe.Publish(ctx, c.key(chanSuppress), blob)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: publish suppression of %s: %w", ch.Entry.Address, err)
	}
	return nil
}

// resync merges the node's list and Redis's: entries only in Redis are
// stored locally, entries only here are stored in Redis.
func (s *suppressSync) resync(c *Cluster) error {
	list := s.list.Load()
	if list == nil {
		return nil
	}
	s.lost.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*c.opts.Timeout)
	defer cancel()
	remote := map[string]bool{}
	iter := c.rdb.HScan(ctx, c.key("suppress"), 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		field := iter.Val()
		if !iter.Next(ctx) {
			break
		}
		remote[field] = true
		var e suppress.Entry
		if err := json.Unmarshal([]byte(iter.Val()), &e); err != nil {
			c.log.Warn("damaged suppression entry in redis; skipped", "field", field, "err", err)
			continue
		}
		if _, ok, err := list.Lookup(e.Tenant, e.Address); err == nil && !ok {
			if err := list.Apply(suppress.Change{Entry: e}); err != nil {
				c.log.Warn("suppression from redis not stored", "address", e.Address, "err", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		s.lost.Store(true)
		return fmt.Errorf("cluster: read suppressions: %w", err)
	}
	pipe := c.rdb.Pipeline()
	n := 0
	err := list.Scan(suppress.AllTenants, func(e suppress.Entry) error {
		if remote[e.Tenant+"\x00"+e.Address] {
			return nil
		}
		blob, err := json.Marshal(e)
		if err != nil {
			return err
		}
		msg, err := json.Marshal(message{Origin: c.opts.NodeID, Change: &suppress.Change{Entry: e}})
		if err != nil {
			return err
		}
		// Published too: the nodes that merged before this one learn it.
		pipe.HSet(ctx, c.key("suppress"), e.Tenant+"\x00"+e.Address, blob)
		pipe.Publish(ctx, c.key(chanSuppress), msg)
		n++
		return nil
	})
	if err == nil && n > 0 {
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		s.lost.Store(true)
		return fmt.Errorf("cluster: push suppressions: %w", err)
	}
	return nil
}

// Throttled implements queue.Shared: it publishes t to the other nodes,
// and keeps a suspension in Redis until it ends, for the nodes that join
// or come back meanwhile. In fallback the throttle stays this node's.
func (c *Cluster) Throttled(t queue.Throttle) {
	if !c.up.Load() {
		return
	}
	blob, err := json.Marshal(message{Origin: c.opts.NodeID, Throttle: &t})
	if err != nil {
		return
	}
	go func() {
		ctx, cancel := c.ctx()
		defer cancel()
		pipe := c.rdb.Pipeline()
		pipe.Publish(ctx, c.key(chanThrottle), blob)
		if left := time.Until(t.Until); left > 0 {
			pipe.Set(ctx, c.key("suspension", t.Provider+"|"+t.Source), blob, left)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			c.fail(fmt.Errorf("cluster: publish throttle of %s: %w", t.Provider, err))
		}
	}()
}

// applySuspensions applies the suspensions other nodes decided that are
// still in force: at Attach and after an outage, when their messages may
// have gone by.
func (c *Cluster) applySuspensions() error {
	c.targetMu.Lock()
	target := c.target
	c.targetMu.Unlock()
	if target == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*c.opts.Timeout)
	defer cancel()
	iter := c.rdb.Scan(ctx, 0, c.key("suspension", "*"), 100).Iterator()
	for iter.Next(ctx) {
		blob, err := c.rdb.Get(ctx, iter.Val()).Result()
		if err != nil {
			continue // ended between the two reads
		}
		var m message
		if err := json.Unmarshal([]byte(blob), &m); err != nil || m.Throttle == nil || m.Origin == c.opts.NodeID {
			continue
		}
		if time.Now().Before(m.Throttle.Until) {
			target.ApplyThrottle(queue.Throttle{Provider: m.Throttle.Provider, Source: m.Throttle.Source, Until: m.Throttle.Until, Reason: m.Throttle.Reason})
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("cluster: read suspensions: %w", err)
	}
	return nil
}

// openSubscription subscribes to the other nodes' messages and, when Redis
// answers, waits until the subscription is active: a suppression published
// after the first merge of the lists must not be missed.
func (c *Cluster) openSubscription() *redis.PubSub {
	ps := c.rdb.Subscribe(context.Background(), c.key(chanThrottle), c.key(chanSuppress))
	if c.up.Load() {
		ctx, cancel := c.ctx()
		defer cancel()
		if _, err := ps.Receive(ctx); err != nil {
			c.fail(fmt.Errorf("cluster: subscribe: %w", err))
		}
	}
	return ps
}

// subscribe receives the other nodes' throttles and suppressions until
// Close; the client subscribes again by itself after an outage.
func (c *Cluster) subscribe(ps *redis.PubSub) {
	defer c.done.Done()
	defer ps.Close()
	msgs := ps.Channel()
	for {
		select {
		case <-c.stop:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			c.received(m.Payload)
		}
	}
}

// received applies one message of another node.
func (c *Cluster) received(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		c.log.Warn("unreadable cluster message; ignored", "err", err)
		return
	}
	if m.Origin == c.opts.NodeID {
		return
	}
	switch {
	case m.Throttle != nil:
		c.targetMu.Lock()
		t := c.target
		c.targetMu.Unlock()
		if t != nil {
			t.ApplyThrottle(*m.Throttle)
		}
	case m.Change != nil:
		if list := c.supp.list.Load(); list != nil {
			if err := list.Apply(*m.Change); err != nil {
				c.log.Warn("suppression from another node not stored", "node", m.Origin, "address", m.Change.Entry.Address, "err", err)
			}
		}
	}
}
