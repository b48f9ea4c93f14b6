package queue

import (
	"container/heap"
	"fmt"

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

// operatorReply is the reply recorded for an operator's bounce.
func operatorReply(reason string) *reply.Reply {
	return reply.New(550, "5.0.0", "Removed from the queue by the operator: "+reason)
}

// Bounce fails the targets now, as a permanent failure with reason: each
// gets a DSN to its sender (or author) and a bounced event, the reply
// naming the operator. Recipients waiting for their first attempt or a
// retry are bounced at once; for those on their way to delivery the bounce
// waits for the attempt to end, and a delivery wins.
func (q *Queue) Bounce(targets []EntryID, reason string) ActResult {
	taken, busy := q.take(targets)
	rp := operatorReply(reason)
	pending := q.deferAct(busy, pendingAct{bounce: true, reply: rp, reason: reason})
	byMsg := map[string][]*item{}
	var order []string
	for _, it := range q.sched.load(taken) {
		id := it.entry.MsgID
		if _, seen := byMsg[id]; !seen {
			order = append(order, id)
		}
		byMsg[id] = append(byMsg[id], it)
	}
	done := 0
	// One outcome per message: a DSN reports the failed recipients of one
	// message.
	for _, id := range order {
		items := byMsg[id]
		q.outcome(nil, items, outcome{
			verdict: policy.Verdict{Action: policy.Bounce, Category: event.CategoryUndefined, Hard: false},
			reply:   rp,
		})
		done += len(items)
	}
	return ActResult{Done: done, Pending: pending}
}

// Delete removes the targets without a DSN, each with a deleted event; for
// those on their way to delivery it waits for the attempt to end, and a
// delivery wins.
func (q *Queue) Delete(targets []EntryID, reason string) (ActResult, error) {
	taken, busy := q.take(targets)
	pending := q.deferAct(busy, pendingAct{reason: reason})
	items := q.sched.load(taken)
	const perBatch = 1000
	for start := 0; start < len(items); start += perBatch {
		part := items[start:min(start+perBatch, len(items))]
		b := q.opts.Spool.NewBatch()
		for _, it := range part {
			b.Remove(it.entry)
		}
		err := q.commitOutcome(b, true)
		b.Close()
		if err != nil {
			// Nothing of this part changed on disk: schedule it again.
			for _, it := range items[start:] {
				q.sched.push(it)
			}
			return ActResult{Done: start, Pending: pending}, fmt.Errorf("queue: delete: %w", err)
		}
		for _, it := range part {
			q.emit(event.Deleted, it, func(e *event.Event) {
				e.Reason = reason
				e.Attempt = it.entry.Attempts
			})
		}
		q.pending.Add(-int64(len(part)))
	}
	return ActResult{Done: len(items), Pending: pending}, nil
}

// Retry makes the targets waiting for a retry due now; those already on
// their way to delivery need nothing.
func (q *Queue) Retry(targets []EntryID) ActResult {
	taken, _ := q.take(targets)
	now := q.now().UnixNano()
	for _, r := range taken {
		r.due = now
		q.sched.pushRef(r)
	}
	return ActResult{Done: len(taken)}
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
