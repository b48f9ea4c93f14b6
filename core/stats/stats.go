// Package stats keeps the live delivery counters the policy steers by:
// attempts, deliveries, deferrals, bounces and complaints per (source IP,
// provider, class), over sliding windows of 5 minutes, 1 hour and 24 hours.
//
// Counters are fed from the event bus (Counters is an event.Sink) and read
// through policy.Counters, where an empty source, provider or class is a
// wildcard. Every event updates the eight wildcard combinations of its key,
// so a read is a constant-time sum of a few buckets whatever the number of
// keys. Windows slide by bucket: 30-second buckets for 5 minutes, 5-minute
// buckets for the hour, hourly buckets for the day; a window's count
// includes the whole oldest bucket, so it may overstate by one bucket.
package stats

import (
	"sync"
	"time"

	"corriere/core/event"
	"corriere/core/policy"
)

type key struct {
	source, provider, class string
}

// tier is one sliding window made of fixed buckets.
type tier struct {
	window time.Duration
	bucket time.Duration
}

var tiers = [3]tier{
	{5 * time.Minute, 30 * time.Second},
	{time.Hour, 5 * time.Minute},
	{24 * time.Hour, time.Hour},
}

// ring is one tier's buckets for one key.
type ring struct {
	counts []policy.Counts
	stamps []int64 // bucket number each slot holds
}

type series [3]ring

// Counters is the live counter store. The zero value is not usable; call
// New.
type Counters struct {
	mu      sync.Mutex
	m       map[key]*series
	tenants map[string]*series // tenant.go
	now     func() time.Time
}

var (
	_ policy.Counters = (*Counters)(nil)
	_ event.Sink      = (*Counters)(nil)
)

// New returns empty counters using clock now (time.Now if nil).
func New(now func() time.Time) *Counters {
	if now == nil {
		now = time.Now
	}
	return &Counters{m: map[key]*series{}, now: now}
}

// Emit counts delivery events.
func (c *Counters) Emit(e *event.Event) {
	var add policy.Counts
	switch e.Type {
	case event.Delivered:
		add = policy.Counts{Attempted: 1, Delivered: 1}
	case event.Deferred:
		add = policy.Counts{Attempted: 1, Deferred: 1}
	case event.Bounced, event.Expired:
		add = policy.Counts{Attempted: 1, Bounced: 1}
	case event.Complained:
		add = policy.Counts{Complained: 1}
	default:
		return
	}
	t := e.Time
	if t.IsZero() {
		t = c.now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for mask := 0; mask < 8; mask++ {
		// An empty field is the wildcard already: filling it in would
		// count the event twice under the same key.
		if (mask&1 != 0 && e.Source == "") || (mask&2 != 0 && e.Provider == "") || (mask&4 != 0 && e.Class == "") {
			continue
		}
		k := key{}
		if mask&1 != 0 {
			k.source = e.Source
		}
		if mask&2 != 0 {
			k.provider = e.Provider
		}
		if mask&4 != 0 {
			k.class = e.Class
		}
		s, ok := c.m[k]
		if !ok {
			s = newSeries()
			c.m[k] = s
		}
		s.add(t, add)
	}
	c.addTenant(e.Tenant, t, add)
}

// Counts implements policy.Counters: window is rounded up to 5m, 1h or 24h.
func (c *Counters) Counts(source, provider, class string, window time.Duration) policy.Counts {
	ti := len(tiers) - 1
	for i, t := range tiers {
		if window <= t.window {
			ti = i
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[key{source, provider, class}]
	if !ok {
		return policy.Counts{}
	}
	return s[ti].sum(tiers[ti], c.now())
}

func newSeries() *series {
	var s series
	for i, t := range tiers {
		n := int(t.window / t.bucket)
		s[i] = ring{counts: make([]policy.Counts, n), stamps: make([]int64, n)}
	}
	return &s
}

func (s *series) add(t time.Time, add policy.Counts) {
	for i, ti := range tiers {
		r := &s[i]
		b := t.UnixNano() / int64(ti.bucket)
		slot := int(b % int64(len(r.counts)))
		if r.stamps[slot] != b {
			r.stamps[slot] = b
			r.counts[slot] = policy.Counts{}
		}
		c := &r.counts[slot]
		c.Attempted += add.Attempted
		c.Delivered += add.Delivered
		c.Deferred += add.Deferred
		c.Bounced += add.Bounced
		c.Complained += add.Complained
	}
}

func (r *ring) sum(ti tier, now time.Time) policy.Counts {
	cur := now.UnixNano() / int64(ti.bucket)
	oldest := cur - int64(len(r.counts)) + 1
	var out policy.Counts
	for i, c := range r.counts {
		if st := r.stamps[i]; st >= oldest && st <= cur {
			out.Attempted += c.Attempted
			out.Delivered += c.Delivered
			out.Deferred += c.Deferred
			out.Bounced += c.Bounced
			out.Complained += c.Complained
		}
	}
	return out
}
