package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"corriere/core/clock"
	"corriere/core/dns"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/smtpclient"
	"corriere/core/spool"
)

// Resolver finds the MX hosts of a domain; *dns.Resolver implements it.
type Resolver interface {
	LookupMX(ctx context.Context, domain string) (*dns.MXResult, error)
}

// Target is where a transaction goes.
type Target struct {
	// Domain is the recipients' domain.
	Domain string
	// MX lists the domain's mail hosts in preference order.
	MX *dns.MXResult
	// Source is the IP to bind ("" lets the system choose).
	Source string
	// Helo is the EHLO name for Source.
	Helo string
	// TLS is the route's TLS policy; "" means policy.TLSAuto.
	TLS policy.TLSPolicy
}

// Transport opens connections to MX hosts; core/deliver implements it.
type Transport interface {
	// Dial connects to the first reachable host of t.MX, trying the next
	// one when a host refuses or times out.
	Dial(ctx context.Context, t Target) (Conn, error)
}

// Conn is an open SMTP session with an MX host.
type Conn interface {
	// Host is the MX host name connected to.
	Host() string
	// Extension reports whether the server advertised an EHLO keyword.
	Extension(name string) (string, bool)
	// Send performs one transaction.
	Send(ctx context.Context, env smtpclient.Envelope, content []byte) (*smtpclient.Result, error)
	// Broken reports whether the connection can no longer be used.
	Broken() bool
	// Serves reports whether the session may carry mail for t, whose MX
	// hosts include Host: its TLS protection must satisfy t's TLS policy,
	// or mail for a domain with a stricter policy would leave over a
	// session opened for one without.
	Serves(ctx context.Context, t Target) bool
	// Close ends the session politely (QUIT) and closes it.
	Close() error
}

// DefaultRetry is the default retry schedule: soon at first, so greylisting
// passes within minutes, then backing off; the last step repeats.
var DefaultRetry = []time.Duration{
	time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour,
}

// Options configure a Queue.
type Options struct {
	// Spool stores messages and delivery entries. Required.
	Spool *spool.Spool
	// Policy makes every decision. Required.
	Policy policy.Policy
	// Resolver looks up MX hosts. Required.
	Resolver Resolver
	// Transport connects to MX hosts. Required.
	Transport Transport
	// Events receives every state change. May be nil.
	Events *event.Bus
	// Logger logs what happens and why. The default value is slog.Default().
	Logger *slog.Logger
	// Hostname names this node in DSNs. The default value is os.Hostname().
	Hostname string
	// Retry is the retry schedule; the last step repeats. The default value
	// is DefaultRetry.
	Retry []time.Duration
	// MaxAge is how long a recipient is retried before it expires. The
	// default value is 5 days.
	MaxAge time.Duration
	// Linger is how long an idle runner keeps its connection open waiting
	// for more mail. The default value is 2s.
	Linger time.Duration
	// RouterWorkers is how many goroutines resolve and route due entries
	// concurrently. The default value is 8.
	RouterWorkers int
	// Warmup counts what warming-up IPs send, when the policy implements
	// policy.WarmupPolicy: a *warmup.Tracker, or core/cluster's counts
	// shared by several nodes. May be nil (no warm-up caps).
	Warmup WarmupCounter
	// Shared, when set, holds the limits that several nodes share (see
	// Shared). May be nil: the limits are the node's own.
	Shared Shared
	// VERP, when set, gives every recipient of a re-enveloped message (one
	// with an Author) its own signed envelope sender, so that a bounce
	// says which recipient failed and for whom; each such recipient then
	// travels in a transaction of its own. May be nil (the envelope sender
	// is used as it is).
	VERP VERP
	// Reference, when set, seals a reference header on top of every
	// message that leaves (withReference). May be nil (no header).
	Reference Referencer
	// MaxConnections bounds the outbound connections open at once across
	// all lanes; runners wait for a free one. Critical mail has a tenth
	// more of its own. The default value is 1000.
	MaxConnections int
	// MaxReady bounds the recipients the scheduler loads from the spool
	// while earlier ones are still on their way (being routed, waiting in
	// a lane, in a transaction); waiting recipients cost only a small
	// reference each, so the queue's memory stays bounded however many
	// are queued. New messages are never held back by it. The default
	// value is 50,000.
	MaxReady int
	// MaxLaneBacklog bounds the recipients waiting in one lane. Recipients
	// beyond it are not tried yet: they wait in the scheduler for the time
	// the lane should take to send those ahead of them, at its limits, so
	// a throttled provider holds no more than this in memory. Critical
	// mail is never held back. The default value is 5,000.
	MaxLaneBacklog int
	// MaxLaneConnections bounds the connections of a lane whose policy
	// sets no connection limit (Limits.MaxConnections is zero). The default
	// value is 100.
	MaxLaneConnections int
	// DelayNotice is how long a recipient that asked NOTIFY=DELAY waits
	// before its sender is told the message is delayed. The default value
	// is DefaultDelayNotice.
	DelayNotice time.Duration
	// PolicyTimeout bounds each policy call on the delivery path (shape,
	// on_response); a call that takes longer fails, which keeps the
	// previous limits or retries the recipient. The default value is 5s.
	PolicyTimeout time.Duration
	// Clock tells the time and runs every timer of the queue: the
	// scheduler's, retries, lingering runners, rate waits, suspensions and
	// recoveries. Deadlines of network and policy calls stay on the wall
	// clock. The default value is clock.Real{}.
	Clock clock.Clock
}

// DefaultDelayNotice is the default Options.DelayNotice: a recipient
// still not delivered after 4 hours is worth a word to its sender.
const DefaultDelayNotice = 4 * time.Hour

// VERP makes per-recipient envelope senders; *verp.Signer implements it.
type VERP interface {
	Address(base, msgID string, index int) string
}

// EnsureDefaults fills unset fields with their documented defaults.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
		if o.Hostname == "" {
			o.Hostname = "localhost"
		}
	}
	if len(o.Retry) == 0 {
		o.Retry = DefaultRetry
	}
	if o.MaxAge == 0 {
		o.MaxAge = 5 * 24 * time.Hour
	}
	if o.Linger == 0 {
		o.Linger = 2 * time.Second
	}
	if o.RouterWorkers == 0 {
		o.RouterWorkers = 8
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 1000
	}
	if o.MaxReady == 0 {
		o.MaxReady = 50_000
	}
	if o.MaxLaneBacklog == 0 {
		o.MaxLaneBacklog = 5_000
	}
	if o.MaxLaneConnections == 0 {
		o.MaxLaneConnections = 100
	}
	if o.DelayNotice == 0 {
		o.DelayNotice = DefaultDelayNotice
	}
	if o.PolicyTimeout == 0 {
		o.PolicyTimeout = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
}

// Validate reports missing required fields.
func (o *Options) Validate() error {
	switch {
	case o.Spool == nil:
		return errors.New("queue: no spool")
	case o.Policy == nil:
		return errors.New("queue: no policy")
	case o.Resolver == nil:
		return errors.New("queue: no resolver")
	case o.Transport == nil:
		return errors.New("queue: no transport")
	case o.MaxReady < 0 || o.MaxLaneBacklog < 0:
		return fmt.Errorf("queue: MaxReady %d, MaxLaneBacklog %d: want positive numbers", o.MaxReady, o.MaxLaneBacklog)
	case o.MaxConnections < 0 || o.MaxLaneConnections < 0:
		return fmt.Errorf("queue: MaxConnections %d, MaxLaneConnections %d: want positive numbers", o.MaxConnections, o.MaxLaneConnections)
	case o.DelayNotice < 0 || o.PolicyTimeout < 0:
		return fmt.Errorf("queue: DelayNotice %s, PolicyTimeout %s: want positive durations", o.DelayNotice, o.PolicyTimeout)
	}
	return nil
}

// msgInfo is what the queue keeps in memory about a message: its metadata
// and an envelope-only message for policy calls.
type msgInfo struct {
	meta *spool.Meta
	msg  *message.Message
}

// item is one pending recipient.
type item struct {
	entry *spool.Entry
	msg   *msgInfo
}

// Queue is the delivery scheduler. Create it with New, fill it with
// Recover, and start it with Start.
type Queue struct {
	opts Options
	log  *slog.Logger

	sched      *scheduler
	scheduling sync.WaitGroup // the scheduler's and the removals' goroutines
	router     *router

	mu        sync.Mutex
	lanes     map[laneKey]*lane
	providers map[string]*provider

	ctx       context.Context // ends when the queue stops taking new work
	cancel    context.CancelFunc
	sendCtx   context.Context // ends when in-flight transactions must abort
	abort     context.CancelFunc
	runnersMu sync.Mutex // orders runner starts against Stop
	runners   sync.WaitGroup
	stopping  atomic.Bool

	pending atomic.Int64 // recipients held by the queue
	// sessionsOut and dialFailures count the outbound connections opened
	// and the attempts to open one that failed, since the queue started.
	sessionsOut, dialFailures atomic.Int64
	slots                     *connSlots // outbound connections across lanes

	actsMu sync.Mutex
	acts   map[EntryID]pendingAct // operators' actions waiting for an attempt to end

	inflightMu sync.Mutex
	inflight   map[EntryID]struct{} // recipients in a transaction now

	holdsMu sync.Mutex
	holds   map[holdKey]time.Time // operators' holds by tenant or campaign, until when
	heldIDs map[holdKey][]EntryID // the recipients each hold put back in the scheduler

	rebindsMu sync.Mutex
	rebinds   map[EntryID]string // pools operators bound recipients to

	// removals are the operators' bounces and deletes waiting to be
	// settled.
	removals *removalWork

	// laneOrders are operators' suspensions of source IPs, applied to the
	// lanes created while they run; guarded by mu.
	laneOrders []standingSuspension

	// share is the node's share of every limit (SetShare), as the bits
	// of a float64: the connection caps read it under a provider's lock.
	share atomic.Uint64
}

// WarmupCounter counts what warming-up IPs send per provider and day;
// *warmup.Tracker implements it.
type WarmupCounter interface {
	// Sent returns how many recipients source has sent to provider today.
	Sent(source, provider string) int64
	// Reserve takes up to n recipients of today's allowance of limit and
	// returns how many it took.
	Reserve(source, provider string, limit, n int) (int, error)
	// NextDay returns the start of the next UTC day, when caps reset.
	NextDay() time.Time
}

// New returns a queue; it does nothing until Start.
func New(opts Options) (*Queue, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	q := &Queue{
		opts:      opts,
		log:       opts.Logger,
		lanes:     map[laneKey]*lane{},
		providers: map[string]*provider{},
		acts:      map[EntryID]pendingAct{},
		inflight:  map[EntryID]struct{}{},
		holds:     map[holdKey]time.Time{},
		heldIDs:   map[holdKey][]EntryID{},
		rebinds:   map[EntryID]string{},
		removals:  newRemovalWork(),
	}
	q.share.Store(math.Float64bits(1))
	q.ctx, q.cancel = context.WithCancel(context.Background())
	q.sendCtx, q.abort = context.WithCancel(context.Background())
	q.slots = newConnSlots(opts.MaxConnections)
	q.sched = newScheduler(q)
	q.router = newRouter(q)
	return q, nil
}

// Recover schedules every pending entry of the spool at its recorded due
// time, and follows the operators' suspensions and rebinds recorded there.
// It keeps only a reference to each entry: entries are read again from the
// spool as they come due. Call it once, before Start.
func (q *Queue) Recover() (messages, recipients int, err error) {
	if err := q.restoreOrders(); err != nil {
		return 0, 0, err
	}
	last := ""
	err = q.opts.Spool.Recover(func(p spool.Pending) error {
		if p.MsgID != last {
			messages++
			last = p.MsgID
		}
		recipients++
		q.pending.Add(1)
		if q.removals.has(EntryID{ID: p.MsgID, Index: p.Index}) {
			return nil // an operator's bounce or delete is still to settle it
		}
		q.sched.pushRef(ref{due: p.Due.UnixNano(), id: p.MsgID, idx: int32(p.Index)})
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("queue: recover: %w", err)
	}
	return messages, recipients, nil
}

// readyRoom returns how many more recipients the scheduler may load for
// delivery: MaxReady less those already in memory between the scheduler
// and their outcome (routing, waiting in a lane, in a transaction).
func (q *Queue) readyRoom() int {
	inMemory := int(q.pending.Load()) - q.sched.len()
	return max(0, q.opts.MaxReady-inMemory)
}

// Start runs the scheduler and the routers.
func (q *Queue) Start() {
	q.scheduling.Add(1)
	go func() {
		defer q.scheduling.Done()
		q.sched.run(q.ctx)
	}()
	q.scheduling.Add(1)
	go func() {
		defer q.scheduling.Done()
		q.settleRemovals(q.ctx)
	}()
	q.router.start(q.ctx, q.opts.RouterWorkers)
	go q.maintain(q.ctx)
}

// Add schedules the recipients of a message just written to the spool.
func (q *Queue) Add(meta *spool.Meta, entries []*spool.Entry) {
	info := &msgInfo{meta: meta, msg: meta.Message()}
	now := q.now()
	items := make([]*item, 0, len(entries))
	for _, e := range entries {
		q.pending.Add(1)
		it := &item{entry: e, msg: info}
		if e.Due.After(now) {
			q.sched.push(it)
		} else {
			items = append(items, it)
		}
	}
	if len(items) > 0 {
		q.router.submit(items)
	}
}

// now returns the time on the queue's clock.
func (q *Queue) now() time.Time { return q.opts.Clock.Now() }

// Pending returns the number of recipients the queue holds.
func (q *Queue) Pending() int64 { return q.pending.Load() }

// Stop stops taking work, lets in-flight transactions finish until ctx
// ends, then aborts them. Entries stay in the spool for the next start.
func (q *Queue) Stop(ctx context.Context) error {
	q.runnersMu.Lock()
	q.stopping.Store(true)
	q.runnersMu.Unlock()
	q.cancel()
	// The scheduler reads the spool as entries come due: it must be done
	// before the caller closes the spool.
	q.scheduling.Wait()
	q.router.running.Wait()
	q.mu.Lock()
	for _, l := range q.lanes {
		l.wake()
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.runners.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.abort()
		return nil
	case <-ctx.Done():
		q.abort()
		<-done
		return fmt.Errorf("queue: stop: in-flight transactions aborted: %w", ctx.Err())
	}
}

// PolicyChanged makes every lane ask the policy for its limits again; call
// it after a policy reload. Limits that did not change keep their state
// (the burst and volume used); runners over a lowered connection limit
// leave after their transaction in flight.
func (q *Queue) PolicyChanged() {
	q.mu.Lock()
	lanes := make([]*lane, 0, len(q.lanes))
	for _, l := range q.lanes {
		lanes = append(lanes, l)
	}
	provs := make([]*provider, 0, len(q.providers))
	for _, p := range q.providers {
		provs = append(provs, p)
	}
	q.mu.Unlock()
	for _, p := range provs {
		p.refreshLimits(q)
	}
	for _, l := range lanes {
		l.refreshLimits()
	}
}

// maintainEvery is how often maintain runs.
const maintainEvery = time.Second

// maintain periodically restores slowed-down rates, ends suspensions and
// removes lanes that have been idle for a while.
func (q *Queue) maintain(ctx context.Context) {
	t := q.opts.Clock.NewTimer(maintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		t.Reset(maintainEvery)
		now := q.now()
		q.mu.Lock()
		for k, l := range q.lanes {
			if l.idleSince(now) > 10*time.Minute {
				delete(q.lanes, k)
				continue
			}
			l.tick(now)
		}
		for _, p := range q.providers {
			p.tick(q, now)
		}
		q.mu.Unlock()
	}
}

// warmupCap returns today's cap for source towards any provider, and
// whether source is warming up at all.
func (q *Queue) warmupCap(source string) (int, bool) {
	wp, ok := q.opts.Policy.(policy.WarmupPolicy)
	if !ok || q.opts.Warmup == nil || source == "" {
		return 0, false
	}
	w, ok := wp.Warmups()[source]
	if !ok {
		return 0, false
	}
	limit, _, warming := w.Cap(q.now())
	return limit, warming
}

// cappedSources lists the warming sources that reached today's cap
// towards provider.
func (q *Queue) cappedSources(provider string) []string {
	wp, ok := q.opts.Policy.(policy.WarmupPolicy)
	if !ok || q.opts.Warmup == nil {
		return nil
	}
	var out []string
	now := q.now()
	for ip, w := range wp.Warmups() {
		if limit, _, warming := w.Cap(now); warming && q.opts.Warmup.Sent(ip, provider) >= int64(limit) {
			out = append(out, ip)
		}
	}
	return out
}

// postpone reschedules items to until without counting an attempt: they
// were not tried (a warm-up cap held them back).
func (q *Queue) postpone(items []*item, until time.Time, provider, source, reason string) {
	b := q.opts.Spool.NewBatch()
	defer b.Close()
	for _, it := range items {
		it.entry.Due = until
		if err := b.Update(it.entry); err != nil {
			q.log.Error("cannot record postponement", "msg_id", it.msg.meta.ID, "err", err)
		}
	}
	if err := b.Commit(false); err != nil {
		q.log.Error("cannot record postponement", "err", err)
	}
	for _, it := range items {
		q.sched.push(it)
		q.emit(event.Deferred, it, func(e *event.Event) {
			e.Provider, e.Source, e.Category, e.Reason, e.Until = provider, source, event.CategoryWarmup, reason, until
		})
	}
}

// emit sends an event about an item.
func (q *Queue) emit(t event.Type, it *item, f func(e *event.Event)) {
	if q.opts.Events == nil {
		return
	}
	m := it.msg.meta
	e := event.Event{
		Type: t, MsgID: m.ID, Recipient: it.entry.Rcpt.Addr, Sender: m.Sender,
		Tenant: m.Tenant, Class: string(m.Class), Campaign: m.Campaign,
		AgeMs: float64(q.now().Sub(m.Received)) / float64(time.Millisecond),
	}
	if f != nil {
		f(&e)
	}
	q.opts.Events.Emit(&e)
}
