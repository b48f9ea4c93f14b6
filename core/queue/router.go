package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"corriere/core/dns"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
)

// job is one transaction's worth of recipients: one message, one domain,
// one egress.
type job struct {
	msg      *msgInfo
	domain   string
	mx       *dns.MXResult
	provider string
	route    policy.Route
	items    []*item
}

// router turns due items into jobs in lanes. Batches with critical mail
// are routed before the others, so a large backlog being routed never
// delays critical mail.
type router struct {
	q      *Queue
	mu     sync.Mutex
	cond   *sync.Cond
	urgent [][]*item
	input  [][]*item
	done   bool
	fast   chan struct{} // tokens of fastLane routings in progress
	// running counts the goroutines that route (workers and fast lanes):
	// Stop waits for them, as they may still write to the spool.
	running sync.WaitGroup
}

func newRouter(q *Queue) *router {
	r := &router{q: q, fast: make(chan struct{}, maxFastRoutes)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *router) submit(items []*item) {
	var critical, other []*item
	for _, it := range items {
		if it.msg.meta.Class == message.Critical {
			critical = append(critical, it)
		} else {
			other = append(other, it)
		}
	}
	if len(critical) > 0 && r.fastLane(critical) {
		critical = nil
	}
	r.mu.Lock()
	if len(critical) > 0 {
		r.urgent = append(r.urgent, critical)
	}
	// Other mail is routed in small slices, so urgent mail never waits long
	// for a free router behind a large backlog.
	for len(other) > 0 {
		n := min(len(other), routeSlice)
		r.input = append(r.input, other[:n:n])
		other = other[n:]
	}
	r.mu.Unlock()
	r.cond.Broadcast()
}

// routeSlice is the largest batch of non-critical mail routed at once.
const routeSlice = 256

// maxFastRoutes bounds the critical batches routed at once outside the
// router's workers.
const maxFastRoutes = 64

// fastLane routes critical mail at once on its own goroutine, so it never
// waits for a router worker busy with a backlog; it returns false when
// too many are already in progress (the batch then takes the urgent queue).
func (r *router) fastLane(items []*item) bool {
	select {
	case r.fast <- struct{}{}:
	default:
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		// Stopping: the items stay in the spool for the next start.
		<-r.fast
		return true
	}
	r.running.Add(1)
	go func() {
		defer r.running.Done()
		defer func() { <-r.fast }()
		r.route(r.q.ctx, items)
	}()
	return true
}

func (r *router) start(ctx context.Context, workers int) {
	for range workers {
		r.running.Add(1)
		go func() {
			defer r.running.Done()
			r.work(ctx)
		}()
	}
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		r.done = true
		r.mu.Unlock()
		r.cond.Broadcast()
	}()
}

func (r *router) work(ctx context.Context) {
	for {
		r.mu.Lock()
		for len(r.urgent) == 0 && len(r.input) == 0 && !r.done {
			r.cond.Wait()
		}
		if r.done {
			r.mu.Unlock()
			return
		}
		var batch []*item
		if len(r.urgent) > 0 {
			batch = r.urgent[0]
			r.urgent[0] = nil
			r.urgent = r.urgent[1:]
		} else {
			batch = r.input[0]
			r.input[0] = nil
			r.input = r.input[1:]
		}
		r.mu.Unlock()
		r.route(ctx, batch)
	}
}

// groupKey gathers the recipients of one message at one domain.
type groupKey struct {
	msgID, domain string
}

// route resolves, routes and enqueues a batch of due items.
func (r *router) route(ctx context.Context, batch []*item) {
	groups := map[groupKey][]*item{}
	var order []groupKey
	for _, it := range batch {
		k := groupKey{it.msg.meta.ID, it.entry.Domain()}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], it)
	}
	// Each group's jobs reach their lanes as soon as it is routed: a slow
	// MX lookup for one domain does not hold back the others.
	for _, k := range order {
		if ctx.Err() != nil {
			return // stopping: the entries stay in the spool
		}
		byLane := map[*lane][]*job{}
		var lanes []*lane
		for _, lj := range r.routeGroup(ctx, k.domain, groups[k]) {
			if _, seen := byLane[lj.lane]; !seen {
				lanes = append(lanes, lj.lane)
			}
			byLane[lj.lane] = append(byLane[lj.lane], lj.job)
		}
		for _, l := range lanes {
			if jobs := r.admit(l, byLane[l]); len(jobs) > 0 {
				l.enqueue(jobs...)
			}
		}
	}
}

// laneJob is a routed job and the lane it belongs to.
type laneJob struct {
	lane *lane
	job  *job
}

// dnsTimeout bounds one MX lookup, retries included.
const dnsTimeout = 30 * time.Second

// routeGroup resolves and routes the items of one message at one domain
// and returns their jobs; items that cannot be routed are settled here.
func (r *router) routeGroup(ctx context.Context, domain string, items []*item) []laneJob {
	q := r.q
	lctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	mx, err := q.opts.Resolver.LookupMX(lctx, domain)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: the entries stay in the spool.
			return nil
		}
		r.dnsFailure(domain, items, err)
		return nil
	}
	if len(mx.Hosts) == 0 {
		r.dnsFailure(domain, items, fmt.Errorf("queue: %s: empty MX set", domain))
		return nil
	}
	prov := q.opts.Policy.Provider(mx.Hosts[0].Host)
	capped := q.cappedSources(prov)
	jobs := map[policy.Route]*job{}
	var order []policy.Route
	var held []*item
	var solo []laneJob
	for _, it := range items {
		rt, err := q.opts.Policy.Route(ctx, &policy.Delivery{
			Message: it.msg.msg, Recipient: it.entry.Rcpt.Addr, Domain: domain, Provider: prov,
			MXHost: mx.Hosts[0].Host, Attempts: it.entry.Attempts, PreviousSource: it.entry.LastSource,
			Capped: capped, Pool: q.reboundPool(it.entry),
		})
		if err != nil {
			q.log.Error("route hook failed; retrying in a minute", "msg_id", it.msg.meta.ID, "rcpt", it.entry.Rcpt.Addr, "err", err)
			q.outcome(nil, []*item{it}, outcome{
				verdict: policy.Verdict{Action: policy.Retry, Delay: time.Minute, Category: event.CategorySystemError},
				reply:   reply.New(451, "4.3.0", "routing policy failed: "+err.Error()),
			})
			continue
		}
		if slices.Contains(capped, rt.Source) {
			held = append(held, it)
			continue
		}
		if q.perRecipient(it.msg.meta) {
			j := &job{msg: it.msg, domain: domain, mx: mx, provider: prov, route: rt, items: []*item{it}}
			solo = append(solo, laneJob{q.laneFor(rt.Source, prov), j})
			continue
		}
		j, ok := jobs[rt]
		if !ok {
			j = &job{msg: it.msg, domain: domain, mx: mx, provider: prov, route: rt}
			jobs[rt] = j
			order = append(order, rt)
		}
		j.items = append(j.items, it)
	}
	if len(held) > 0 {
		// The policy insists on a source whose warm-up allowance for today
		// is spent: the recipients wait for tomorrow's.
		q.postpone(held, q.opts.Warmup.NextDay(), prov, "", "route chose an IP at its warm-up cap for today")
	}
	out := make([]laneJob, 0, len(order)+len(solo))
	out = append(out, solo...)
	for _, rt := range order {
		out = append(out, laneJob{q.laneFor(rt.Source, prov), jobs[rt]})
	}
	return out
}

// dnsFailure applies a failed MX lookup to items: temporary failures retry,
// NXDOMAIN and null MX bounce at once.
func (r *router) dnsFailure(domain string, items []*item, err error) {
	var de *dns.Error
	rp := reply.New(451, "4.4.3", "MX lookup failed: "+err.Error())
	category := event.CategoryNetworkError
	action := policy.Retry
	if errors.As(err, &de) {
		rp = de.Reply()
		if !de.Temporary() {
			action = policy.Bounce
			category = event.CategoryHostUnknown
			if de.Kind == dns.NullMX {
				category = event.CategoryNotAccept
			}
		}
	}
	r.q.log.Info("MX lookup failed", "domain", domain, "action", action, "err", err)
	r.q.outcome(nil, items, outcome{verdict: policy.Verdict{Action: action, Category: category}, reply: rp})
}

// Holding recipients back from a full lane: the assumed sending rate of one
// connection when the policy sets no rate, and the bounds of the wait.
const (
	assumedConnectionRate = 100.0 // messages per second
	minHold               = 10 * time.Millisecond
	maxHold               = time.Hour
)

// admit returns the jobs that fit in the lane's backlog
// (Options.MaxLaneBacklog); critical jobs always fit. The recipients of the
// others go back to the scheduler, each due when the lane should have sent
// those ahead of it at its limits, so a throttled lane never holds more
// than its backlog in memory. Their spool entries are not rewritten: they
// were not tried.
func (r *router) admit(l *lane, jobs []*job) []*job {
	q := r.q
	l.mu.Lock()
	backlog := l.queued
	lim := l.limits
	l.mu.Unlock()
	var keep []*job
	var held []*item
	for _, j := range jobs {
		if j.msg.meta.Class == message.Critical || backlog < q.opts.MaxLaneBacklog {
			keep = append(keep, j)
			backlog += len(j.items)
			continue
		}
		held = append(held, j.items...)
	}
	if len(held) == 0 {
		return keep
	}
	rate := drainRate(lim, q.opts.MaxLaneConnections) * l.throttle.factor()
	now := q.now()
	for i, it := range held {
		wait := time.Duration(float64(backlog+i+1) / rate * float64(time.Second))
		q.sched.pushAt(it, now.Add(min(max(wait, minHold), maxHold)))
	}
	q.log.Debug("lane backlog full; holding recipients in the scheduler",
		"provider", l.key.provider, "source", l.key.source, "backlog", backlog, "held", len(held))
	return keep
}

// drainRate estimates how many messages per second a lane sends at its
// limits; laneConns is its connection limit when they set none.
func drainRate(lim policy.Limits, laneConns int) float64 {
	conns := lim.MaxConnections
	if conns <= 0 {
		conns = laneConns
	}
	rate := float64(conns) * assumedConnectionRate
	for _, r := range []float64{lim.PerSecond, lim.PerMinute / 60, lim.PerHour / 3600, lim.PerDay / 86400} {
		if r > 0 {
			rate = min(rate, r)
		}
	}
	return rate
}
