package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"corriere/core/dns"
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

// router turns due items into jobs in lanes.
type router struct {
	q     *Queue
	mu    sync.Mutex
	cond  *sync.Cond
	input [][]*item
	done  bool
}

func newRouter(q *Queue) *router {
	r := &router{q: q}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *router) submit(items []*item) {
	r.mu.Lock()
	r.input = append(r.input, items)
	r.mu.Unlock()
	r.cond.Signal()
}

func (r *router) start(ctx context.Context, workers int) {
	for range workers {
		go r.work(ctx)
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
		for len(r.input) == 0 && !r.done {
			r.cond.Wait()
		}
		if r.done {
			r.mu.Unlock()
			return
		}
		batch := r.input[0]
		r.input[0] = nil
		r.input = r.input[1:]
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
	for _, k := range order {
		r.routeGroup(ctx, k.domain, groups[k])
	}
}

// dnsTimeout bounds one MX lookup, retries included.
const dnsTimeout = 30 * time.Second

func (r *router) routeGroup(ctx context.Context, domain string, items []*item) {
	q := r.q
	lctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	mx, err := q.opts.Resolver.LookupMX(lctx, domain)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: the entries stay in the spool.
			return
		}
		r.dnsFailure(domain, items, err)
		return
	}
	if len(mx.Hosts) == 0 {
		r.dnsFailure(domain, items, fmt.Errorf("queue: %s: empty MX set", domain))
		return
	}
	prov := q.opts.Policy.Provider(mx.Hosts[0].Host)
	capped := q.cappedSources(prov)
	jobs := map[policy.Route]*job{}
	var order []policy.Route
	var held []*item
	for _, it := range items {
		rt, err := q.opts.Policy.Route(ctx, &policy.Delivery{
			Message: it.msg.msg, Recipient: it.entry.Rcpt.Addr, Domain: domain, Provider: prov,
			MXHost: mx.Hosts[0].Host, Attempts: it.entry.Attempts, PreviousSource: it.entry.LastSource,
			Capped: capped,
		})
		if err != nil {
			q.log.Error("route hook failed; retrying in a minute", "msg_id", it.msg.meta.ID, "rcpt", it.entry.Rcpt.Addr, "err", err)
			q.outcome(nil, []*item{it}, outcome{
				verdict: policy.Verdict{Action: policy.Retry, Delay: time.Minute, Category: "systemerror"},
				reply:   reply.New(451, "4.3.0", "routing policy failed: "+err.Error()),
			})
			continue
		}
		if slices.Contains(capped, rt.Source) {
			held = append(held, it)
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
	for _, rt := range order {
		q.laneFor(rt.Source, prov).enqueue(jobs[rt])
	}
	if len(held) > 0 {
		// The policy insists on a source whose warm-up allowance for today
		// is spent: the recipients wait for tomorrow's.
		q.postpone(held, q.opts.Warmup.NextDay(), prov, "", "route chose an IP at its warm-up cap for today")
	}
}

// dnsFailure applies a failed MX lookup to items: temporary failures retry,
// NXDOMAIN and null MX bounce at once.
func (r *router) dnsFailure(domain string, items []*item, err error) {
	var de *dns.Error
	rp := reply.New(451, "4.4.3", "MX lookup failed: "+err.Error())
	category := "networkerror"
	action := policy.Retry
	if errors.As(err, &de) {
		rp = de.Reply()
		if !de.Temporary() {
			action = policy.Bounce
			category = "hostunknown"
			if de.Kind == dns.NullMX {
				category = "notaccept"
			}
		}
	}
	r.q.log.Info("MX lookup failed", "domain", domain, "action", action, "err", err)
	r.q.outcome(nil, items, outcome{verdict: policy.Verdict{Action: action, Category: category}, reply: rp})
}
