package queue

import (
	"math"
	"time"

	"corriere/core/policy"
)

// Shared is the cluster-wide side of the limits, for several nodes sending
// to the same providers: core/cluster implements it over Redis. Without it
// (Options.Shared nil) every limit is the node's own.
//
// The queue checks its own limiters first and asks Shared only for what
// they let through, so a node never sends faster than the policy allows
// even alone. Shared never blocks for long: when the shared counts cannot
// be reached it lets everything through, and the node keeps to its share
// of each limit (SetShare).
type Shared interface {
	// Reserve takes one message's allowance of the cluster-wide rates of
	// r's lane and provider. It returns 0 when the message may go, or how
	// long to wait before asking again (nothing is taken then).
	Reserve(r SharedRate) time.Duration
	// AcquireConn takes one of the limit connections of provider across
	// the cluster. It reports false when the other nodes hold them all.
	AcquireConn(provider string, limit int) bool
	// ReleaseConn gives back a connection AcquireConn took.
	ReleaseConn(provider string)
	// Cancel gives back the allowance the last Reserve for the lane of
	// provider and source took, when the message could not go after all
	// (no connection was free).
	Cancel(provider, source string)
	// Throttled tells the other nodes about a suspension or slow-down the
	// policy decided on this node.
	Throttled(t Throttle)
}

// SharedRate is one message's request for cluster-wide allowance.
type SharedRate struct {
	// Provider and Source name the lane.
	Provider, Source string
	// Lane and Prov are the limits of the lane and of the provider, with
	// their slow-down factors (1 is full speed).
	Lane, Prov             policy.Limits
	LaneFactor, ProvFactor float64
	// Critical mail may use the critical reserve of the hourly and daily
	// volumes.
	Critical bool
}

// Throttle is a suspension or slow-down, of a provider (Source empty) or
// of one lane, decided on one node and applied on every node.
type Throttle struct {
	Provider string `json:"provider"`
	Source   string `json:"source,omitempty"`
	// Until ends the suspension; zero when the throttle only slows down.
	Until time.Time `json:"until,omitzero"`
	// Factor multiplies the rates; 0 when the throttle only suspends.
	Factor float64 `json:"factor,omitempty"`
	// Reason is the reply that caused it.
	Reason string `json:"reason,omitempty"`
}

// connRetry is how soon a lane whose provider's connections are all held
// by other nodes asks again.
const connRetry = 100 * time.Millisecond

// SetShare sets the share of every limit this node keeps to on its own: 1
// while the cluster-wide counts hold, 1/live nodes while they cannot be
// reached. Connection limits are shared the same way, rounded down but
// never under one connection.
func (q *Queue) SetShare(s float64) {
	q.mu.Lock()
	q.share.Store(math.Float64bits(s))
	lanes := make([]*lane, 0, len(q.lanes))
	for _, l := range q.lanes {
		l.limiter.SetShare(s)
		lanes = append(lanes, l)
	}
	for _, p := range q.providers {
		p.limiter.SetShare(s)
	}
	q.mu.Unlock()
	for _, l := range lanes {
		l.wake()
	}
}

// shareOf returns the node's share of a connection limit.
func (q *Queue) shareOf(limit int) int {
	s := q.localShare()
	if limit <= 0 || s >= 1 {
		return limit
	}
	return max(1, int(math.Floor(float64(limit)*s)))
}

// clusterFullFor returns how long a runner without a connection waits
// before it asks for rate allowance: the rest of connRetry after the
// cluster's connections to p were last found all held elsewhere.
func (p *provider) clusterFullFor(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clusterFull.IsZero() {
		return 0
	}
	return max(0, p.clusterFull.Add(connRetry).Sub(now))
}

// localShare returns the node's share of every limit (SetShare).
func (q *Queue) localShare() float64 { return math.Float64frombits(q.share.Load()) }

// reserveShared asks Options.Shared for one message's cluster-wide
// allowance of l; 0 means it may go.
func (q *Queue) reserveShared(l *lane, critical bool) time.Duration {
	if q.opts.Shared == nil {
		return 0
	}
	l.mu.Lock()
	lim := l.limits
	l.mu.Unlock()
	l.prov.mu.Lock()
	plim := l.prov.limits
	l.prov.mu.Unlock()
	return q.opts.Shared.Reserve(SharedRate{
		Provider: l.key.provider, Source: l.key.source, Lane: lim, Prov: plim,
		LaneFactor: l.throttle.factor(), ProvFactor: l.prov.throttle.factor(), Critical: critical,
	})
}

// cancelRate gives back the rate allowance waitRate took for a message of
// l that cannot go now: the lane's, the provider's and the cluster's.
func (q *Queue) cancelRate(l *lane) {
	now := q.now()
	l.limiter.Cancel(now)
	l.prov.limiter.Cancel(now)
	if q.opts.Shared != nil {
		q.opts.Shared.Cancel(l.key.provider, l.key.source)
	}
}

// publishThrottle tells the other nodes about a throttle decided here.
func (q *Queue) publishThrottle(t Throttle) {
	if q.opts.Shared != nil {
		q.opts.Shared.Throttled(t)
	}
}

// ApplyThrottle applies a suspension or slow-down another node decided.
// A lane-wide one applies to the lane only if this node has it (its
// sources are its own); a provider-wide one always applies.
func (q *Queue) ApplyThrottle(t Throttle) {
	now := q.now()
	if t.Source == "" {
		q.mu.Lock()
		p := q.providerLocked(t.Provider)
		q.mu.Unlock()
		if t.Factor > 0 && t.Factor < 1 {
			p.mu.Lock()
			lim := p.limits
			p.mu.Unlock()
			p.throttle.slowDown(t.Factor, now, lim)
		}
		if !t.Until.IsZero() {
			p.suspend(q, t.Until, t.Reason)
		}
		return
	}
	q.mu.Lock()
	l := q.lanes[laneKey{t.Source, t.Provider}]
	q.mu.Unlock()
	if l == nil {
		return
	}
	if t.Factor > 0 && t.Factor < 1 {
		l.throttle.slowDown(t.Factor, now, l.throttleLimits(policy.ScopeSource))
	}
	if !t.Until.IsZero() {
		l.suspend(t.Until, t.Reason)
	}
}
