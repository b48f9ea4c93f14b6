package queue

import (
	"errors"
	"fmt"
	"time"

	"corriere/core/dsn"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/spool"
)

// result is the decided outcome of one recipient's attempt.
type result struct {
	it      *item
	verdict policy.Verdict
	reply   *reply.Reply
	stage   policy.Stage
}

// outcome is a single outcome applied to a set of items outside a
// transaction (DNS failures, routing failures).
type outcome struct {
	verdict policy.Verdict
	reply   *reply.Reply
}

// outcome applies one outcome to items that were never sent.
func (q *Queue) outcome(l *lane, items []*item, o outcome) {
	results := make([]result, len(items))
	for i, it := range items {
		results[i] = result{it: it, verdict: o.verdict, reply: o.reply, stage: policy.StageConnect}
	}
	var j *job
	if len(items) > 0 {
		j = &job{msg: items[0].msg, domain: items[0].entry.Domain(), items: items}
	}
	q.outcomes(attemptFacts{l: l, j: j}, results)
}

// settled is what happened to one recipient, for events after the commit.
type settled struct {
	r     result
	typ   event.Type
	until time.Time
}

// outcomes applies results: spool first (one batch, synced when it carries
// a DSN), then the in-memory queue, then events.
func (q *Queue) outcomes(f attemptFacts, results []result) {
	now := q.now()
	b := q.opts.Spool.NewBatch()
	defer b.Close()

	var failed, delayed, relayed []result
	var resched []*item
	done := make([]settled, 0, len(results))
	for _, r := range results {
		e := r.it.entry
		attempts := e.Attempts + 1
		if act, ok := q.takeAct(e); ok && r.verdict.Action != policy.Deliver {
			if !act.bounce {
				b.RemoveOf(e, r.it.msg.meta.Tenant)
				e.Attempts = attempts
				r.verdict.Category = ""
				r.reply = operatorReply(act.reason)
				done = append(done, settled{r: r, typ: event.Deleted})
				continue
			}
			r.verdict = policy.Verdict{Action: policy.Bounce, Category: event.CategoryUndefined}
			r.reply = act.reply
		}
		switch r.verdict.Action {
		case policy.Deliver:
			b.RemoveOf(e, r.it.msg.meta.Tenant)
			e.Attempts = attempts
			done = append(done, settled{r: r, typ: event.Delivered})
			if e.Rcpt.Notify&message.NotifySuccess != 0 && e.Rcpt.Notify&message.NotifyNever == 0 && !f.dsn {
				relayed = append(relayed, r)
			}
		case policy.Bounce:
			b.RemoveOf(e, r.it.msg.meta.Tenant)
			e.Attempts = attempts
			done = append(done, settled{r: r, typ: event.Bounced})
			failed = append(failed, r)
		default: // Retry and Suspend
			delay := r.verdict.Delay
			if delay <= 0 {
				delay = q.retryDelay(e.Attempts)
			}
			next := now.Add(delay)
			if next.After(r.it.msg.meta.Received.Add(q.opts.MaxAge)) {
				b.RemoveOf(e, r.it.msg.meta.Tenant)
				e.Attempts = attempts
				r.verdict.Category = event.CategoryExpired
				done = append(done, settled{r: r, typ: event.Expired})
				failed = append(failed, r)
				continue
			}
			e.Attempts = attempts
			e.Due = next
			e.LastAttempt = now
			e.LastReply = r.reply.String()
			if f.j != nil {
				e.LastSource = f.j.route.Source
			}
			e.LastMX = f.mx
			if e.Rcpt.Notify&message.NotifyDelay != 0 && e.Rcpt.Notify&message.NotifyNever == 0 && !e.DelayNotified && now.Sub(r.it.msg.meta.Received) >= q.opts.DelayNotice {
				e.DelayNotified = true
				delayed = append(delayed, r)
			}
			if err := b.Update(e); err != nil {
				q.log.Error("cannot record deferral", "msg_id", e.MsgID, "rcpt", e.Rcpt.Addr, "err", err)
			}
			resched = append(resched, r.it)
			done = append(done, settled{r: r, typ: event.Deferred, until: next})
		}
	}

	var notices []*message.Message
	if f.j != nil {
		for _, group := range []struct {
			rs     []result
			action string
		}{{failed, dsn.Failed}, {delayed, dsn.Delayed}, {relayed, dsn.Relayed}} {
			if len(group.rs) == 0 {
				continue
			}
			if m := q.notice(f, group.rs, group.action, now); m != nil {
				notices = append(notices, m)
			}
		}
	}
	var added []*spool.Meta
	var addedEntries [][]*spool.Entry
	for _, m := range notices {
		meta, entries, err := b.Put(m, now)
		if err != nil {
			q.log.Error("cannot spool DSN", "msg_id", f.j.msg.meta.ID, "err", err)
			continue
		}
		added = append(added, meta)
		addedEntries = append(addedEntries, entries)
	}
	if err := q.commitOutcome(b, len(added) > 0); err != nil {
		// Nothing changed on disk: keep every recipient and try again.
		q.log.Error("spool commit failed; retrying the recipients in a minute", "err", err)
		for _, r := range results {
			r.it.entry.Due = now.Add(time.Minute)
			q.sched.push(r.it)
		}
		return
	}
	for i, meta := range added {
		q.Add(meta, addedEntries[i])
		q.emitDSN(meta, f)
	}
	for _, it := range resched {
		q.sched.push(it)
	}
	// Events first: whoever sees the queue empty has seen them.
	for _, s := range done {
		if s.typ != event.Deferred {
			q.forgetRebind(s.r.it.entry)
		}
	}
	q.settle(f, done)
	q.pending.Add(-int64(len(results) - len(resched)))
}

// commitOutcome commits the batch of an attempt's outcome. A commit refused
// because the disk is full is tried again, backing off to every 5 s, until
// it succeeds or the queue aborts in-flight work: the recipients were
// delivered or failed, and trying them again instead would deliver them
// twice. Meanwhile the runner holds its slot, which slows delivery while
// outcomes cannot be recorded.
func (q *Queue) commitOutcome(b *spool.Batch, sync bool) error {
	wait := 50 * time.Millisecond
	for waited := false; ; waited = true {
		err := b.Commit(sync)
		if err == nil {
			if waited {
				q.log.Info("spool has room again; outcome recorded")
			}
			return nil
		}
		if !errors.Is(err, spool.ErrNoSpace) {
			return err
		}
		if !waited {
			q.log.Warn("spool full; the outcome waits for room before it is recorded", "err", err)
		}
		t := q.opts.Clock.NewTimer(wait)
		select {
		case <-q.sendCtx.Done():
			t.Stop()
			return err
		case <-t.C():
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// retryDelay returns the wait after the given number of finished attempts.
func (q *Queue) retryDelay(attempts int) time.Duration {
	if attempts >= len(q.opts.Retry) {
		return q.opts.Retry[len(q.opts.Retry)-1]
	}
	return q.opts.Retry[attempts]
}

// notice builds the DSN for some recipients of one message, or returns nil
// when none may be sent (null sender, NOTIFY).
func (q *Queue) notice(f attemptFacts, rs []result, action string, now time.Time) *message.Message {
	meta := f.j.msg.meta
	to := meta.Author
	if to == "" {
		to = meta.Sender
	}
	if to == "" {
		q.log.Info("no DSN for a message from the null sender", "msg_id", meta.ID, "action", action)
		return nil
	}
	kind := message.NotifyFailure
	switch action {
	case dsn.Delayed:
		kind = message.NotifyDelay
	case dsn.Relayed:
		kind = message.NotifySuccess
	}
	rep := &dsn.Report{
		ReportingMTA: q.opts.Hostname, To: to, EnvID: meta.EnvID, Arrival: meta.Received,
		Ret: meta.Ret, Forwarded: meta.Author != "", Now: now,
	}
	for _, r := range rs {
		e := r.it.entry
		if !e.Rcpt.Notify.Wants(kind) {
			continue
		}
		rc := dsn.Recipient{Addr: e.Rcpt.Addr, ORCPT: e.Rcpt.ORCPT, Action: action, LastAttempt: now, RemoteMTA: f.mx}
		if action == dsn.Failed && r.verdict.Category == event.CategoryExpired {
			rc.Status = reply.Status{Class: 4, Subject: 4, Detail: 7} // RFC 3463 X.4.7, delivery time expired
			rc.Reason = fmt.Sprintf("Delivery was tried for %s without success; the last attempt said: %s",
				q.opts.MaxAge.Round(time.Hour), r.reply.String())
		} else {
			rc.Diagnostic = r.reply
			if r.stage == policy.StageConnect && !r.reply.Success() && f.mx == "" {
				rc.Diagnostic, rc.Reason = nil, r.reply.String()
				rc.Status = r.reply.EffectiveStatus()
			}
		}
		if action == dsn.Delayed {
			rc.WillRetryUntil = meta.Received.Add(q.opts.MaxAge)
		}
		rep.Recipients = append(rep.Recipients, rc)
	}
	if len(rep.Recipients) == 0 {
		return nil
	}
	content, err := q.opts.Spool.Content(meta.ID)
	if err != nil {
		q.log.Error("cannot read the original for a DSN; sending it without", "msg_id", meta.ID, "err", err)
	}
	rep.Original = content
	raw, err := dsn.Build(rep)
	if err != nil {
		q.log.Error("cannot build DSN", "msg_id", meta.ID, "err", err)
		return nil
	}
	h, body, err := message.Parse(raw)
	if err != nil {
		q.log.Error("cannot parse own DSN", "msg_id", meta.ID, "err", err)
		return nil
	}
	return &message.Message{
		Envelope: message.Envelope{Recipients: []message.Recipient{{Addr: to, Notify: message.NotifyNever}}},
		Header:   h, Body: body,
		Tenant: meta.Tenant, Class: message.Transactional, Received: now,
	}
}

func (q *Queue) emitDSN(dsnMeta *spool.Meta, f attemptFacts) {
	q.opts.Events.Emit(&event.Event{
		Type: event.DSNQueued, MsgID: f.j.msg.meta.ID, Tenant: f.j.msg.meta.Tenant,
		Reason: "delivery status notification queued as " + dsnMeta.ID,
	})
}

// settle emits events and logs for settled recipients, and applies
// suspensions and slow-downs.
func (q *Queue) settle(f attemptFacts, done []settled) {
	now := q.now()
	suspendedLane, suspendedProv, slowedLane, slowedProv := false, false, false, false
	for _, s := range done {
		r := s.r
		q.emit(s.typ, r.it, func(e *event.Event) {
			if f.j != nil {
				e.Provider, e.Source, e.Pool = f.j.provider, f.j.route.Source, f.j.route.Pool
			}
			e.MX = f.mx
			e.Attempt = r.it.entry.Attempts
			e.Reply = r.reply.String()
			e.Category = r.verdict.Category
			e.Hard = s.typ == event.Bounced && r.verdict.Hard
			e.DurationMs = float64(f.duration) / float64(time.Millisecond)
			e.Until = s.until
		})
		if !f.operator {
			q.logAttempt(f, s)
		}
		if f.l == nil {
			continue
		}
		v := r.verdict
		if v.Action != policy.Suspend && (v.RateFactor <= 0 || v.RateFactor >= 1) {
			continue // nothing to throttle
		}
		lim := f.l.throttleLimits(v.Scope)
		// The slow-down first: whoever sees the suspension sees the cut rate.
		if v.RateFactor > 0 && v.RateFactor < 1 {
			switch {
			case v.Scope == policy.ScopeProvider && !slowedProv:
				f.l.prov.throttle.slowDown(v.RateFactor, now, lim)
				q.publishThrottle(Throttle{Provider: f.l.key.provider, Factor: v.RateFactor, Reason: r.reply.String()})
				slowedProv = true
			case v.Scope != policy.ScopeProvider && !slowedLane:
				f.l.throttle.slowDown(v.RateFactor, now, lim)
				q.publishThrottle(Throttle{Provider: f.l.key.provider, Source: f.l.key.source, Factor: v.RateFactor, Reason: r.reply.String()})
				slowedLane = true
			}
		}
		if v.Action == policy.Suspend {
			delay := v.Delay
			if delay <= 0 {
				delay = lim.Suspension()
			}
			why := r.reply.String()
			switch {
			case v.Scope == policy.ScopeProvider && !suspendedProv:
				f.l.prov.suspend(q, now.Add(delay), why)
				q.publishThrottle(Throttle{Provider: f.l.key.provider, Until: now.Add(delay), Reason: why})
				suspendedProv = true
			case v.Scope == policy.ScopeSource && !suspendedLane:
				f.l.suspend(now.Add(delay), why)
				q.publishThrottle(Throttle{Provider: f.l.key.provider, Source: f.l.key.source, Until: now.Add(delay), Reason: why})
				suspendedLane = true
			}
		}
	}
}
