package queue

import (
	"context"
	"errors"
	"slices"
	"time"

	"corriere/core/dns"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/smtpclient"
	"corriere/core/spool"
)

// longWait is the rate-limit wait beyond which a runner closes its
// connection instead of holding it idle.
const longWait = 10 * time.Second

// runner is the state of one lane runner: its connection and how many
// transactions it has carried.
type runner struct {
	l        *lane
	reserved bool
	conn     Conn
	sent     int
	// release gives back the queue-wide connection slot the runner holds
	// (with or without a connection yet); nil when it holds none.
	release func()
	// onReserve marks a slot of the critical reserve: its connection
	// carries critical mail only.
	onReserve bool
	// shed marks a runner leaving because its lane's connection limit was
	// lowered (counted in lane.shedding); connShed a connection closing
	// because the provider's was (counted in provider.shedding).
	shed, connShed bool
}

// closeConn closes the runner's connection, if any, and gives back its
// slots.
func (r *runner) closeConn() {
	if r.conn != nil {
		_ = r.conn.Close() // QUIT is a courtesy; the transactions are settled
		r.conn = nil
		r.l.prov.release(r.l.q.opts.Shared, r.reserved, r.connShed)
		r.connShed = false
	}
	r.releaseSlot()
}

// shedLocked reports whether the runner must stop because a reload lowered
// its lane's or its provider's connection limit below what is open, and
// counts it as leaving, so that exactly the excess leaves. The reserved
// critical runner, which may exceed the limit by one, never sheds. Called
// with r.l.mu held.
func (r *runner) shedLocked() bool {
	l := r.l
	if r.reserved || r.shed {
		return r.shed
	}
	if l.runners-l.shedding > l.maxConnections() {
		l.shedding++
		r.shed = true
		return true
	}
	if r.conn != nil && !r.connShed && l.prov.shed(l.q) {
		r.connShed = true
		return true
	}
	return false
}

// releaseSlot gives back the queue-wide slot the runner holds, if any.
func (r *runner) releaseSlot() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	r.onReserve = false
}

// deliver performs one job. It returns false when the runner should stop
// (the queue is stopping, or no connection slot is free); the job is then
// back in its lane.
func (r *runner) deliver(j *job) bool {
	l, q := r.l, r.l.q
	if q.held(l, j, q.now()) {
		return true
	}
	if !r.waitRate(j.msg.meta.Class == message.Critical) {
		l.requeue(j)
		return false
	}
	if !r.reserveWarmup(j) {
		l.finish(j)
		return true
	}
	q.markInFlight(j, true)
	defer q.markInFlight(j, false)
	critical := j.msg.meta.Class == message.Critical
	target := Target{Domain: j.domain, MX: j.mx, Source: j.route.Source, Helo: j.route.Helo, TLS: j.route.TLS}
	if r.conn != nil && (r.conn.Broken() || !servesHost(j, r.conn.Host()) || r.connectionSpent() || (r.onReserve && !critical) || !r.conn.Serves(q.sendCtx, target)) {
		r.closeConn()
	}
	if r.conn == nil {
		if r.onReserve && !critical {
			r.releaseSlot() // the reserve is for critical mail only
		}
		if r.release == nil {
			wantReserve := r.reserved || critical
			release, fromReserve := q.slots.tryAcquire(wantReserve)
			if release == nil {
				// Wait for a slot without holding the job, so that a runner
				// of this lane that has a connection can take it meanwhile.
				l.requeue(j)
				if release, fromReserve = q.slots.acquire(q.ctx, wantReserve); release == nil {
					return false
				}
				r.release, r.onReserve = release, fromReserve
				return true
			}
			r.release, r.onReserve = release, fromReserve
		}
		if !l.prov.acquire(l, r.reserved) {
			// The message does not go now: its rate allowance goes back,
			// for the runners that hold a connection.
			q.cancelRate(l)
			l.requeue(j)
			return false
		}
		start := q.now()
		c, err := q.opts.Transport.Dial(q.sendCtx, target)
		if err != nil {
			q.dialFailures.Add(1)
			l.prov.release(q.opts.Shared, r.reserved, false)
			r.releaseSlot()
			q.dialFailed(l, j, err, q.now().Sub(start))
			l.finish(j)
			return true
		}
		q.sessionsOut.Add(1)
		r.conn, r.sent = c, 0
	}

	content, err := q.opts.Spool.Content(j.msg.meta.ID)
	if err != nil {
		q.contentMissing(l, j, err)
		l.finish(j)
		return true
	}
	start := q.now()
	res, err := r.conn.Send(q.sendCtx, q.envelope(j, content), content)
	r.sent++
	q.sendFinished(l, j, r.conn, res, err, q.now().Sub(start))
	l.finish(j)
	if err != nil || r.conn.Broken() {
		r.closeConn()
	}
	return true
}

// reserveWarmup takes today's warm-up allowance for the job's recipients
// when its source is warming up. Recipients over the cap go back to the
// router, which offers them to the policy with this source marked capped.
// It returns false when nothing is left to send.
func (r *runner) reserveWarmup(j *job) bool {
	q := r.l.q
	limit, warming := q.warmupCap(j.route.Source)
	if !warming {
		return true
	}
	n, err := q.opts.Warmup.Reserve(j.route.Source, j.provider, limit, len(j.items))
	if err != nil {
		q.log.Error("warm-up count not persisted", "source", j.route.Source, "err", err)
	}
	if n == len(j.items) {
		return true
	}
	over := j.items[n:]
	j.items = j.items[:n]
	r.l.mu.Lock()
	r.l.inflight -= len(over)
	r.l.mu.Unlock()
	q.log.Info("warm-up cap reached; rerouting", "source", j.route.Source, "provider", j.provider, "cap", limit, "rerouted", len(over))
	q.router.submit(over)
	return n > 0
}

// connectionSpent reports whether the connection has carried as many
// transactions as the lane allows.
func (r *runner) connectionSpent() bool {
	r.l.mu.Lock()
	n := r.l.limits.MaxMessagesPerConnection
	r.l.mu.Unlock()
	return n > 0 && r.sent >= n
}

// waitRate waits until the lane and the provider allow one more message
// (of critical mail, which may use the critical reserve). It returns false
// when the queue stops, the lane is suspended, or a reload lowered the
// connection limit below what the lane holds and this runner must leave.
func (r *runner) waitRate(critical bool) bool {
	l, q := r.l, r.l.q
	for {
		l.mu.Lock()
		reload := l.reload
		stop := l.isSuspended(q.now()) || r.shedLocked()
		l.mu.Unlock()
		if stop {
			return false
		}
		now := q.now()
		w := time.Duration(0)
		if r.conn == nil {
			w = l.prov.clusterFullFor(now)
		}
		if w == 0 {
			w = l.limiter.Reserve(now, critical)
		}
		if w == 0 {
			if w = l.prov.limiter.Reserve(now, critical); w == 0 {
				if w = q.reserveShared(l, critical); w == 0 {
					return true
				}
				l.prov.limiter.Cancel(now)
			}
			l.limiter.Cancel(now)
		}
		if w > longWait {
			r.closeConn()
		}
		t := q.opts.Clock.NewTimer(w)
		select {
		case <-q.ctx.Done():
			t.Stop()
			return false
		case <-reload:
			t.Stop()
		case <-t.C():
		}
	}
}

// finish marks a job's recipients as no longer in flight.
func (l *lane) finish(j *job) {
	l.mu.Lock()
	l.inflight -= len(j.items)
	l.active = l.q.now()
	l.mu.Unlock()
}

// servesHost reports whether host is one of the job's MX hosts.
func servesHost(j *job, host string) bool {
	return slices.ContainsFunc(j.mx.Hosts, func(m dns.MX) bool { return m.Host == host })
}

// perRecipient reports whether the recipients of a message each get their
// own VERP envelope sender, and so their own transaction.
func (q *Queue) perRecipient(m *spool.Meta) bool {
	return q.opts.VERP != nil && m.Author != "" && m.Sender != ""
}

// envelope builds the SMTP envelope of a job.
func (q *Queue) envelope(j *job, content []byte) smtpclient.Envelope {
	m := j.msg.meta
	from := m.Sender
	if q.perRecipient(m) && len(j.items) == 1 {
		from = q.opts.VERP.Address(m.Sender, m.ID, j.items[0].entry.Index)
	}
	header := q.reference(j)
	env := smtpclient.Envelope{
		From: from, Header: header, Size: int64(len(header) + len(content)), Ret: string(m.Ret), EnvID: m.EnvID,
		UTF8: m.UTF8, EightBit: has8bit(content),
		Rcpts: make([]smtpclient.Rcpt, len(j.items)),
	}
	for i, it := range j.items {
		env.Rcpts[i] = smtpclient.Rcpt{Addr: it.entry.Rcpt.Addr, Notify: it.entry.Rcpt.Notify.String(), ORCPT: it.entry.Rcpt.ORCPT}
	}
	return env
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// attemptFacts are the facts of one transaction shared by its recipients.
type attemptFacts struct {
	l        *lane
	j        *job
	mx       string
	duration time.Duration
	dsn      bool // the server advertised DSN
	// operator marks an operator's action rather than an attempt: it is
	// logged once for all its recipients, not once per recipient.
	operator bool
}

// dialFailed applies a failed connection to every recipient of the job.
func (q *Queue) dialFailed(l *lane, j *job, err error, d time.Duration) {
	f := attemptFacts{l: l, j: j, duration: d}
	stage, rp, network := policy.StageConnect, networkReply(err), true
	var ce *smtpclient.Error
	if errors.As(err, &ce) {
		if ce.Reply != nil {
			rp, network = ce.Reply, false
		}
		stage = clientStage(ce.Stage)
	}
	f.mx = j.mx.Hosts[0].Host
	var he interface{ MXHost() string }
	if errors.As(err, &he) {
		f.mx = he.MXHost()
	}
	v := q.interpret(f, nil, stage, rp, network)
	results := make([]result, len(j.items))
	for i, it := range j.items {
		results[i] = result{it: it, verdict: v, reply: rp, stage: stage}
	}
	q.outcomes(f, results)
}

// sendFinished applies a transaction's replies to its recipients.
func (q *Queue) sendFinished(l *lane, j *job, c Conn, res *smtpclient.Result, err error, d time.Duration) {
	_, dsnExt := c.Extension("DSN")
	f := attemptFacts{l: l, j: j, mx: c.Host(), duration: d, dsn: dsnExt}
	// One transaction-level reply (MAIL, DATA) concerns every recipient;
	// interpret it once.
	verdicts := map[*reply.Reply]policy.Verdict{}
	results := make([]result, len(j.items))
	for i, it := range j.items {
		stage, rp, network := replyFor(res, err, i)
		shared := stage != policy.StageRcpt
		v, seen := verdicts[rp]
		if !seen || !shared {
			var target *item
			if !shared {
				target = it
			}
			v = q.interpret(f, target, stage, rp, network)
			if shared {
				verdicts[rp] = v
			}
		}
		results[i] = result{it: it, verdict: v, reply: rp, stage: stage}
	}
	q.outcomes(f, results)
}

// replyFor finds the reply that decides recipient i of a transaction.
func replyFor(res *smtpclient.Result, err error, i int) (policy.Stage, *reply.Reply, bool) {
	switch {
	case res == nil || res.Mail == nil:
		return policy.StageMail, networkReply(err), true
	case !res.Mail.Success():
		return policy.StageMail, res.Mail, false
	case i >= len(res.Rcpts) || res.Rcpts[i] == nil:
		return policy.StageRcpt, networkReply(err), true
	case !res.Rcpts[i].Success():
		return policy.StageRcpt, res.Rcpts[i], false
	case res.Data == nil:
		return policy.StageData, networkReply(err), true
	default:
		return policy.StageData, res.Data, false
	}
}

// networkReply turns a failure without a server reply into a synthetic
// temporary reply that says what happened.
func networkReply(err error) *reply.Reply {
	if r := reply.From(err); r != nil {
		return r
	}
	text := "connection failed"
	if err != nil {
		text = err.Error()
	}
	return reply.New(451, "4.4.2", text)
}

func clientStage(s string) policy.Stage {
	switch s {
	case smtpclient.StageHelo:
		return policy.StageHelo
	case smtpclient.StageStartTLS:
		return policy.StageTLS
	case smtpclient.StageMail:
		return policy.StageMail
	case smtpclient.StageRcpt:
		return policy.StageRcpt
	case smtpclient.StageData:
		return policy.StageData
	}
	return policy.StageConnect
}

// interpret asks the policy what a reply means. it is the recipient for
// per-recipient replies, nil for transaction-level ones. A failing policy
// means retry.
func (q *Queue) interpret(f attemptFacts, it *item, stage policy.Stage, rp *reply.Reply, network bool) policy.Verdict {
	sample := it
	if sample == nil {
		sample = f.j.items[0]
	}
	a := &policy.Attempt{
		Stage: stage, Reply: rp, Network: network,
		Tenant: f.j.msg.meta.Tenant, Class: f.j.msg.meta.Class, Provider: f.j.provider,
		MXHost: f.mx, Source: f.j.route.Source, Attempts: sample.entry.Attempts,
		Age: q.now().Sub(f.j.msg.meta.Received),
	}
	if it != nil {
		a.Recipient = it.entry.Rcpt.Addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.PolicyTimeout)
	defer cancel()
	v, err := q.opts.Policy.OnResponse(ctx, a)
	if err != nil {
		q.log.Error("on_response hook failed; retrying", "msg_id", f.j.msg.meta.ID, "reply", rp.String(), "err", err)
		return policy.Verdict{Action: policy.Retry, Category: event.CategorySystemError}
	}
	switch v.Action {
	case policy.Deliver, policy.Retry, policy.Bounce, policy.Suspend:
	default:
		q.log.Error("on_response returned an unknown action; retrying", "msg_id", f.j.msg.meta.ID, "action", v.Action)
		v.Action = policy.Retry
	}
	if v.Action == policy.Deliver && !rp.Success() {
		// A policy may not turn a refusal into a delivery: the message
		// would be lost.
		q.log.Error("on_response said deliver for a failure reply; retrying", "msg_id", f.j.msg.meta.ID, "reply", rp.String())
		v.Action = policy.Retry
	}
	return v
}

// contentMissing handles a job whose message content cannot be read.
func (q *Queue) contentMissing(l *lane, j *job, err error) {
	if errors.Is(err, spool.ErrNotFound) {
		// The message was finished by someone else (an operator delete):
		// the entries are stale.
		q.log.Warn("message gone from the spool; dropping its queued recipients", "msg_id", j.msg.meta.ID)
		q.pending.Add(-int64(len(j.items)))
		return
	}
	q.log.Error("cannot read message content; retrying", "msg_id", j.msg.meta.ID, "err", err)
	results := make([]result, len(j.items))
	rp := reply.New(451, "4.3.0", "local spool read error")
	for i, it := range j.items {
		results[i] = result{it: it, verdict: policy.Verdict{Action: policy.Retry, Delay: time.Minute, Category: event.CategorySystemError}, reply: rp, stage: policy.StageConnect}
	}
	q.outcomes(attemptFacts{l: l, j: j}, results)
}
