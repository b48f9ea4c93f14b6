package queue

import (
	"container/heap"
	"fmt"

	"corriere/core/dsn"
	"corriere/core/event"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/spool"
)

// EntryID names one queued recipient: a message and the recipient's index
// in its envelope.
type EntryID struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
}

// ActResult says what an operator's action did.
type ActResult struct {
	// Done counts the recipients acted on at once.
	Done int `json:"done"`
	// Pending counts recipients that were on their way to delivery (ready
	// in a lane, or in a transaction): the action applies when their
	// attempt ends, unless it delivers them.
	Pending int `json:"pending"`
}

// pendingAct is an operator's bounce or delete waiting for a recipient's
// attempt to end.
type pendingAct struct {
	bounce bool
	reply  *reply.Reply
	reason string
}

// deferAct registers act for the busy targets that are still in the spool.
func (q *Queue) deferAct(busy []EntryID, act pendingAct) int {
	n := 0
	q.actsMu.Lock()
	defer q.actsMu.Unlock()
	for _, id := range busy {
		if _, err := q.opts.Spool.Entry(id.ID, id.Index); err != nil {
			continue // settled meanwhile
		}
		q.acts[id] = act
		n++
	}
	return n
}

// takeAct returns and forgets the action waiting for entry e, if any.
func (q *Queue) takeAct(e *spool.Entry) (pendingAct, bool) {
	q.actsMu.Lock()
	defer q.actsMu.Unlock()
	if len(q.acts) == 0 {
		return pendingAct{}, false
	}
	id := EntryID{ID: e.MsgID, Index: e.Index}
	act, ok := q.acts[id]
	delete(q.acts, id)
	return act, ok
}

// Bounce fails the targets as a permanent failure with reason: each gets
// a DSN to its sender (or author) and a bounced event, the reply naming
// the operator. Recipients waiting for their first attempt or a retry are
// taken out of delivery at once, and the order is recorded in the spool;
// their DSNs are written in the background, paced while other mail flows
// (see settleRemovals), and after a restart if need be. For those on their
// way to delivery the bounce waits for the attempt to end, and a delivery
// wins.
func (q *Queue) Bounce(targets []EntryID, reason string) (ActResult, error) {
	taken, busy := q.take(targets)
	pending := q.deferAct(busy, pendingAct{bounce: true, reply: operatorReply(reason), reason: reason})
	if err := q.orderRemovals(taken, removeBounce, reason); err != nil {
		for _, r := range taken {
			q.sched.pushRef(r)
		}
		return ActResult{Pending: pending}, fmt.Errorf("queue: bounce: not recorded; the recipients stay queued: %w", err)
	}
	q.log.Info("operator bounce", "recipients", len(taken), "pending_until_their_attempt_ends", pending, "reason", reason)
	return ActResult{Done: len(taken), Pending: pending}, nil
}

// bounceNow fails items with rp in one spool batch: their entries go and
// one DSN per message comes, in one synced commit; then the DSNs are
// queued and the events emitted.
func (q *Queue) bounceNow(items []*item, rp *reply.Reply) error {
	now := q.now()
	b := q.opts.Spool.NewBatch()
	defer b.Close()
	type group struct {
		f       attemptFacts
		results []result
		done    []settled
	}
	var groups []*group
	byMsg := map[string]*group{}
	for _, it := range items {
		g, ok := byMsg[it.entry.MsgID]
		if !ok {
			g = &group{f: attemptFacts{j: &job{msg: it.msg, domain: it.entry.Domain()}, operator: true}}
			byMsg[it.entry.MsgID] = g
			groups = append(groups, g)
		}
		g.f.j.items = append(g.f.j.items, it)
		b.RemoveOf(it.entry, it.msg.meta.Tenant)
		it.entry.Attempts++
		r := result{it: it, verdict: policy.Verdict{Action: policy.Bounce, Category: event.CategoryUndefined}, reply: rp, stage: policy.StageConnect}
		g.results = append(g.results, r)
		g.done = append(g.done, settled{r: r, typ: event.Bounced})
	}
	type notice struct {
		g     *group
		meta  *spool.Meta
		items []*spool.Entry
	}
	var notices []notice
	for _, g := range groups {
		m := q.notice(g.f, g.results, dsn.Failed, now)
		if m == nil {
			continue
		}
		meta, entries, err := b.Put(m, now)
		if err != nil {
			return fmt.Errorf("queue: bounce: DSN for %s: %w", g.f.j.msg.meta.ID, err)
		}
		notices = append(notices, notice{g: g, meta: meta, items: entries})
	}
	if err := q.commitOutcome(b, true); err != nil {
		return fmt.Errorf("queue: bounce: %w", err)
	}
	for _, n := range notices {
		q.Add(n.meta, n.items)
		q.emitDSN(n.meta, n.g.f)
	}
	for _, g := range groups {
		q.settle(g.f, g.done)
	}
	q.pending.Add(-int64(len(items)))
	return nil
}

// Delete removes the targets without a DSN, each with a deleted event.
// Like a bounce, it takes those waiting for an attempt out of delivery at
// once and records the order, and the entries are removed in the
// background; for those on their way to delivery it waits for the attempt
// to end, and a delivery wins.
func (q *Queue) Delete(targets []EntryID, reason string) (ActResult, error) {
	taken, busy := q.take(targets)
	pending := q.deferAct(busy, pendingAct{reason: reason})
	if err := q.orderRemovals(taken, removeDelete, reason); err != nil {
		for _, r := range taken {
			q.sched.pushRef(r)
		}
		return ActResult{Pending: pending}, fmt.Errorf("queue: delete: not recorded; the recipients stay queued: %w", err)
	}
	q.log.Info("operator delete", "recipients", len(taken), "pending_until_their_attempt_ends", pending, "reason", reason)
	return ActResult{Done: len(taken), Pending: pending}, nil
}

// deleteNow removes items in one synced commit, with their events.
func (q *Queue) deleteNow(items []*item, reason string) error {
	b := q.opts.Spool.NewBatch()
	defer b.Close()
	for _, it := range items {
		b.RemoveOf(it.entry, it.msg.meta.Tenant)
	}
	if err := q.commitOutcome(b, true); err != nil {
		return fmt.Errorf("queue: delete: %w", err)
	}
	for _, it := range items {
		q.emit(event.Deleted, it, func(e *event.Event) {
			e.Reason = reason
			e.Attempt = it.entry.Attempts
		})
	}
	q.pending.Add(-int64(len(items)))
	return nil
}

// Retry makes the targets waiting for a retry due now, in the spool too;
// those already on their way to delivery need nothing.
func (q *Queue) Retry(targets []EntryID) (ActResult, error) {
	taken, _ := q.take(targets)
	now := q.now()
	err := q.persistDue(taken, now)
	for _, r := range taken {
		r.due = now.UnixNano()
		q.sched.pushRef(r)
	}
	if err != nil {
		return ActResult{}, err
	}
	return ActResult{Done: len(taken)}, nil
}

// take removes the targets from the scheduler, in one pass over it, and
// returns their references and the targets it does not hold (in a lane or
// a transaction, or already settled).
func (q *Queue) take(targets []EntryID) (taken []ref, busy []EntryID) {
	want := make(map[EntryID]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	s := q.sched
	s.mu.Lock()
	kept := s.h[:0]
	for _, r := range s.h {
		if want[EntryID{ID: r.id, Index: int(r.idx)}] {
			taken = append(taken, r)
			continue
		}
		kept = append(kept, r)
	}
	for i := len(kept); i < len(s.h); i++ {
		s.h[i] = ref{}
	}
	s.h = kept
	heap.Init(&s.h)
	s.mu.Unlock()
	for _, r := range taken {
		delete(want, EntryID{ID: r.id, Index: int(r.idx)})
	}
	for id := range want {
		busy = append(busy, id)
	}
	return taken, busy
}

// EntryIDs returns the EntryIDs of spool entries.
func EntryIDs(entries []*spool.Entry) []EntryID {
	out := make([]EntryID, len(entries))
	for i, e := range entries {
		out[i] = EntryID{ID: e.MsgID, Index: e.Index}
	}
	return out
}

// Rebind sends the targets from pool from now on: the route hook is given
// the pool (policy.Delivery.Pool) at every routing of theirs until they
// settle. Those waiting for a retry are routed again at once; the others
// take the pool at their next routing. The binding is recorded in the
// spool first, so that it outlives a restart.
func (q *Queue) Rebind(targets []EntryID, pool string) (ActResult, error) {
	if err := q.recordRebinds(targets, pool); err != nil {
		return ActResult{}, err
	}
	q.rebindsMu.Lock()
	for _, id := range targets {
		q.rebinds[id] = pool
	}
	q.rebindsMu.Unlock()
	taken, busy := q.take(targets)
	now := q.now().UnixNano()
	for _, r := range taken {
		r.due = now
		q.sched.pushRef(r)
	}
	q.log.Info("operator rebind", "recipients", len(targets), "pool", pool)
	return ActResult{Done: len(taken), Pending: len(busy)}, nil
}

// reboundPool returns the pool an operator bound entry e to, or "".
func (q *Queue) reboundPool(e *spool.Entry) string {
	q.rebindsMu.Lock()
	defer q.rebindsMu.Unlock()
	if len(q.rebinds) == 0 {
		return ""
	}
	return q.rebinds[EntryID{ID: e.MsgID, Index: e.Index}]
}

// forgetRebind drops the binding of a settled entry, and its record.
func (q *Queue) forgetRebind(e *spool.Entry) {
	id := EntryID{ID: e.MsgID, Index: e.Index}
	q.rebindsMu.Lock()
	_, bound := q.rebinds[id]
	delete(q.rebinds, id)
	q.rebindsMu.Unlock()
	if !bound {
		return
	}
	if err := q.opts.Spool.Keyspace(rebindsKeyspace).Delete(rebindKey(id), false); err != nil {
		q.log.Warn("rebind record not removed; the next start removes it", "msg_id", e.MsgID, "err", err)
	}
}
