package queue

import (
	"context"
	"sync"
	"time"

	"corriere/core/clock"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/shape"
)

// laneKey names a lane: one egress source towards one provider.
type laneKey struct {
	source, provider string
}

// classIndex returns a class's position in priority order.
func classIndex(c message.Class) int {
	for i, k := range message.Classes {
		if k == c {
			return i
		}
	}
	return 1 // unknown classes travel as transactional mail
}

// lane is the ready queue of one (source, provider) pair, split by class.
type lane struct {
	q    *Queue
	key  laneKey
	prov *provider

	mu       sync.Mutex
	classes  [4][]*job
	jobs     int // jobs queued
	queued   int // recipients queued
	inflight int // recipients being delivered
	runners  int // runners, the reserved one excluded
	idle     int // runners waiting for work with a connection open
	// shedding counts the runners leaving to bring the lane back under a
	// lowered connection limit; they stay in runners until their
	// connection is closed.
	shedding int
	reserved bool
	notify   chan struct{}
	// reload is closed when the limits may have changed, to rouse the
	// runners waiting for the rate with a connection open.
	reload chan struct{}

	limits   policy.Limits
	limiter  *shape.Limiter
	throttle *throttle
	active   time.Time // last enqueue or delivery
}

// laneFor returns the lane for (source, provider), creating it.
func (q *Queue) laneFor(source, providerName string) *lane {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := laneKey{source, providerName}
	l, ok := q.lanes[k]
	if ok {
		return l
	}
	l = &lane{q: q, key: k, prov: q.providerLocked(providerName), notify: make(chan struct{}), reload: make(chan struct{}), active: q.now()}
	l.limits = q.shape(providerName, source, policy.DefaultLimits)
	l.limiter = shape.NewLimiter(l.limits)
	l.limiter.SetShare(q.localShare())
	l.throttle = newThrottle(l.limiter)
	q.applyLaneOrdersLocked(l)
	q.lanes[k] = l
	return l
}

// shape asks the policy for limits, keeping fallback when it fails.
func (q *Queue) shape(providerName, source string, fallback policy.Limits) policy.Limits {
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.PolicyTimeout)
	defer cancel()
	lim, err := q.opts.Policy.Shape(ctx, providerName, source)
	if err != nil {
		q.log.Error("shape hook failed; keeping previous limits", "provider", providerName, "source", source, "err", err)
		return fallback
	}
	return lim
}

// refreshLimits asks the policy for the lane's limits again and rouses
// every runner: those over a lowered connection limit leave.
func (l *lane) refreshLimits() {
	l.mu.Lock()
	prev := l.limits
	l.mu.Unlock()
	lim := l.q.shape(l.key.provider, l.key.source, prev)
	l.mu.Lock()
	// Under the lane's lock, so that concurrent reloads leave the limits
	// and the limiter in agreement.
	l.limiter.SetLimits(lim, l.q.now())
	l.limits = lim
	close(l.reload)
	l.reload = make(chan struct{})
	l.spawnLocked()
	l.broadcastLocked()
	l.mu.Unlock()
}

func (l *lane) maxConnections() int {
	if l.limits.MaxConnections <= 0 {
		return l.q.opts.MaxLaneConnections
	}
	return l.limits.MaxConnections
}

// enqueue adds jobs and starts runners as needed.
func (l *lane) enqueue(jobs ...*job) {
	l.mu.Lock()
	for _, j := range jobs {
		ci := classIndex(j.msg.meta.Class)
		l.classes[ci] = append(l.classes[ci], j)
		l.jobs++
		l.queued += len(j.items)
	}
	l.active = l.q.now()
	l.spawnLocked()
	l.broadcastLocked()
	l.mu.Unlock()
}

// requeue puts a job back at the head of its class, as if never taken.
func (l *lane) requeue(j *job) {
	l.mu.Lock()
	ci := classIndex(j.msg.meta.Class)
	l.classes[ci] = append([]*job{j}, l.classes[ci]...)
	l.jobs++
	l.queued += len(j.items)
	l.inflight -= len(j.items)
	// A lingering runner of the lane may take it at once.
	l.broadcastLocked()
	l.mu.Unlock()
}

// wake starts runners for queued work and rouses lingering ones.
func (l *lane) wake() {
	l.mu.Lock()
	l.spawnLocked()
	l.broadcastLocked()
	l.mu.Unlock()
}

func (l *lane) broadcastLocked() {
	close(l.notify)
	l.notify = make(chan struct{})
}

// isSuspended reports whether the lane or its provider is suspended at now.
func (l *lane) isSuspended(now time.Time) bool {
	return l.throttle.suspended(now) || l.prov.throttle.suspended(now)
}

// spawnLocked starts runners while there is more queued work than idle
// runners and connection slots remain; plus the reserved critical runner.
func (l *lane) spawnLocked() {
	if l.jobs == 0 || l.isSuspended(l.q.now()) {
		return
	}
	for l.runners < l.maxConnections() && l.idle < l.jobs && l.runners < l.jobs+l.idle {
		if !l.q.startRunner() {
			return
		}
		l.runners++
		l.idle++ // counts as idle until it takes a job
		go l.run(false)
	}
	if len(l.classes[0]) > 0 && l.runners >= l.maxConnections() && !l.reserved && l.idle == 0 {
		if !l.q.startRunner() {
			return
		}
		l.reserved = true
		go l.run(true)
	}
}

// startRunner counts a new runner unless the queue is stopping.
func (q *Queue) startRunner() bool {
	q.runnersMu.Lock()
	defer q.runnersMu.Unlock()
	if q.stopping.Load() {
		return false
	}
	q.runners.Add(1)
	return true
}

// take returns the next job for a runner, waiting up to the linger time for
// one; nil means the runner should stop.
func (l *lane) take(r *runner, fresh bool) *job {
	reserved := r.reserved
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		if !fresh && !reserved {
			l.idle++
		}
		fresh = false
		if l.q.stopping.Load() || l.isSuspended(l.q.now()) || r.shedLocked() {
			if !reserved {
				l.idle--
			}
			l.mu.Unlock()
			return nil
		}
		if j := l.popLocked(reserved); j != nil {
			if !reserved {
				l.idle--
			}
			l.inflight += len(j.items)
			l.mu.Unlock()
			return j
		}
		if reserved {
			l.mu.Unlock()
			return nil
		}
		ch := l.notify
		l.mu.Unlock()
		if timer == nil {
			timer = l.q.opts.Clock.NewTimer(l.q.opts.Linger)
		}
		select {
		case <-ch:
			l.mu.Lock()
			l.idle--
			l.mu.Unlock()
		case <-timer.C():
			l.mu.Lock()
			l.idle--
			l.mu.Unlock()
			return nil
		}
	}
}

// popLocked takes the first job of the highest non-empty class (critical
// only for the reserved runner), split to the recipients-per-transaction
// limit.
func (l *lane) popLocked(reserved bool) *job {
	for ci := range l.classes {
		if reserved && ci > 0 {
			break
		}
		qc := l.classes[ci]
		if len(qc) == 0 {
			continue
		}
		j := qc[0]
		if n := l.limits.MaxRecipientsPerMessage; n > 0 && len(j.items) > n {
			head := *j
			head.items = j.items[:n:n]
			j.items = j.items[n:]
			l.queued -= n
			return &head
		}
		qc[0] = nil
		l.classes[ci] = qc[1:]
		l.jobs--
		l.queued -= len(j.items)
		return j
	}
	return nil
}

// run is one runner: it takes jobs and delivers them over one connection at
// a time, reusing it while the next job goes to the same MX host.
func (l *lane) run(reserved bool) {
	defer l.q.runners.Done()
	r := &runner{l: l, reserved: reserved}
	fresh := true
	for {
		j := l.take(r, fresh)
		fresh = false
		if j == nil {
			break
		}
		if !r.deliver(j) {
			break
		}
		if r.onReserve && !l.criticalQueued() {
			// The critical reserve never waits idle: other critical mail
			// may need it now.
			r.closeConn()
		}
	}
	r.closeConn()
	l.mu.Lock()
	if reserved {
		l.reserved = false
	} else {
		l.runners--
	}
	if r.shed {
		l.shedding--
	}
	// Work may have arrived between the last take and now.
	l.spawnLocked()
	l.mu.Unlock()
}

// criticalQueued reports whether critical jobs wait in the lane.
func (l *lane) criticalQueued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.classes[classIndex(message.Critical)]) > 0
}

// suspend pauses the lane until until.
func (l *lane) suspend(until time.Time, why string) {
	if !l.throttle.suspend(until) {
		return
	}
	l.q.opts.Events.Emit(&event.Event{Type: event.Suspended, Provider: l.key.provider, Source: l.key.source, Until: until, Reason: why})
	l.q.log.Warn("lane suspended", "provider", l.key.provider, "source", l.key.source, "until", until.Format(time.RFC3339), "reason", why)
}

// tick ends an expired suspension and lets a slowed rate recover.
func (l *lane) tick(now time.Time) {
	resumed := l.throttle.tick(now)
	if resumed {
		l.q.opts.Events.Emit(&event.Event{Type: event.Resumed, Provider: l.key.provider, Source: l.key.source})
		l.q.log.Info("lane resumed", "provider", l.key.provider, "source", l.key.source)
	}
	if resumed || l.queuedJobs() > 0 {
		l.wake()
	}
}

// throttleLimits returns the limits whose suspension and recovery settings
// apply to a verdict of scope given at the lane: the lane's own, or for a
// provider-wide verdict the provider's total limits where they set them,
// else the lane's.
func (l *lane) throttleLimits(scope policy.Scope) policy.Limits {
	l.mu.Lock()
	lim := l.limits
	l.mu.Unlock()
	if scope != policy.ScopeProvider {
		return lim
	}
	l.prov.mu.Lock()
	total := l.prov.limits
	l.prov.mu.Unlock()
	if total.SuspendDelay > 0 {
		lim.SuspendDelay = total.SuspendDelay
	}
	if total.RecoveryInterval > 0 {
		lim.RecoveryInterval = total.RecoveryInterval
	}
	if total.RecoveryStep > 0 {
		lim.RecoveryStep = total.RecoveryStep
	}
	return lim
}

func (l *lane) queuedJobs() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.jobs
}

// idleSince returns how long the lane has had nothing to do (0 if busy).
func (l *lane) idleSince(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.jobs > 0 || l.inflight > 0 || l.runners > 0 || l.reserved || l.throttle.suspended(now) {
		return 0
	}
	return now.Sub(l.active)
}

// provider is the state shared by every lane towards one provider.
type provider struct {
	name string

	mu      sync.Mutex
	limits  policy.Limits
	limiter *shape.Limiter
	conns   int
	// reservedConns counts the connections of reserved critical runners,
	// which may exceed the limit by one; shedding counts the connections
	// closing to bring conns back under a lowered limit.
	reservedConns int
	shedding      int
	waiting       map[*lane]bool
	throttle      *throttle
	// clusterFull is when the cluster's connections to the provider were
	// last all held by other nodes (Options.Shared): until connRetry after
	// it, runners without a connection take no rate allowance.
	clusterFull time.Time
}

func (q *Queue) providerLocked(name string) *provider {
	p, ok := q.providers[name]
	if !ok {
		lim := q.shape(name, policy.AllSources, policy.Limits{})
		p = &provider{name: name, limits: lim, limiter: shape.NewLimiter(lim), waiting: map[*lane]bool{}}
		p.limiter.SetShare(q.localShare())
		p.throttle = newThrottle(p.limiter)
		q.providers[name] = p
	}
	return p
}

func (p *provider) refreshLimits(q *Queue) {
	p.mu.Lock()
	prev := p.limits
	p.mu.Unlock()
	lim := q.shape(p.name, policy.AllSources, prev)
	p.mu.Lock()
	p.limiter.SetLimits(lim, q.now())
	p.limits = lim
	p.mu.Unlock()
}

// acquire takes a connection slot for l; the reserved critical runner may
// exceed the provider's cap by one. When no slot is free, l is woken when
// one is released. With Options.Shared, the slot must also be free across
// the cluster; when other nodes hold them all, l asks again shortly.
func (p *provider) acquire(l *lane, reserved bool) bool {
	q := l.q
	p.mu.Lock()
	limit := q.shareOf(p.limits.MaxConnections)
	if limit > 0 && reserved {
		limit++
	}
	if limit > 0 && p.conns >= limit {
		p.waiting[l] = true
		p.mu.Unlock()
		return false
	}
	p.conns++
	if reserved {
		p.reservedConns++
	}
	p.mu.Unlock()
	if limit > 0 && q.opts.Shared != nil && !q.opts.Shared.AcquireConn(p.name, limit) {
		p.mu.Lock()
		p.conns--
		if reserved {
			p.reservedConns--
		}
		p.clusterFull = q.now()
		p.mu.Unlock()
		q.opts.Clock.AfterFunc(connRetry, l.wake)
		return false
	}
	return true
}

// shed reports whether one more connection must close to bring the
// provider back under a lowered limit (or a lowered share of it, when the
// node lost the cluster), and counts it as closing: exactly the excess
// closes, the reserved critical runners' connections aside.
func (p *provider) shed(q *Queue) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := q.shareOf(p.limits.MaxConnections)
	if limit > 0 && p.conns-p.shedding > limit+p.reservedConns {
		p.shedding++
		return true
	}
	return false
}

// release frees a connection slot taken by acquire (reserved as there),
// ending a shed counted by shed, and wakes the lanes waiting for a slot.
func (p *provider) release(shared Shared, reserved, shed bool) {
	p.mu.Lock()
	p.conns--
	if reserved {
		p.reservedConns--
	}
	if shed {
		p.shedding--
	}
	waiting := p.waiting
	p.waiting = map[*lane]bool{}
	p.mu.Unlock()
	if shared != nil {
		shared.ReleaseConn(p.name)
	}
	for l := range waiting {
		l.wake()
	}
}

// suspend pauses every lane of the provider until until.
func (p *provider) suspend(q *Queue, until time.Time, why string) {
	if !p.throttle.suspend(until) {
		return
	}
	q.opts.Events.Emit(&event.Event{Type: event.Suspended, Provider: p.name, Until: until, Reason: why})
	q.log.Warn("provider suspended", "provider", p.name, "until", until.Format(time.RFC3339), "reason", why)
}

// tick ends an expired suspension (waking the provider's lanes through the
// lanes' own ticks) and lets a slowed rate recover. Called with q.mu held.
func (p *provider) tick(q *Queue, now time.Time) {
	if p.throttle.tick(now) {
		q.opts.Events.Emit(&event.Event{Type: event.Resumed, Provider: p.name})
		q.log.Info("provider resumed", "provider", p.name)
	}
}
