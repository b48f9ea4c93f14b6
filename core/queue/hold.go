package queue

import (
	"time"

	"corriere/core/event"
)

// holdKey names what an operator holds back by sender: a tenant's mail, or
// one campaign of it.
type holdKey struct {
	tenant, campaign string
}

// hold suspends the delivery of tenant's mail (campaign "": all of it)
// until until.
func (q *Queue) hold(tenant, campaign string, until time.Time, reason string) {
	q.holdsMu.Lock()
	q.holds[holdKey{tenant, campaign}] = until
	q.holdsMu.Unlock()
	q.opts.Events.Emit(&event.Event{Type: event.Suspended, Tenant: tenant, Campaign: campaign, Until: until, Reason: reason})
	q.log.Warn("tenant mail held", "tenant", tenant, "campaign", campaign, "until", until.Format(time.RFC3339), "reason", reason)
}

// release ends a hold, and makes the recipients it held due now; it
// reports whether there was one.
func (q *Queue) release(tenant, campaign string) bool {
	key := holdKey{tenant, campaign}
	q.holdsMu.Lock()
	_, ok := q.holds[key]
	delete(q.holds, key)
	ids := q.heldIDs[key]
	delete(q.heldIDs, key)
	q.holdsMu.Unlock()
	if len(ids) > 0 {
		taken, _ := q.take(ids)
		now := q.now().UnixNano()
		for _, r := range taken {
			r.due = now
			q.sched.pushRef(r)
		}
	}
	if ok {
		q.opts.Events.Emit(&event.Event{Type: event.Resumed, Tenant: tenant, Campaign: campaign})
		q.log.Info("tenant mail released", "tenant", tenant, "campaign", campaign)
	}
	return ok
}

// heldUntil returns when the hold on a message of tenant and campaign ends,
// and which hold it is, or zero when none holds it at now.
func (q *Queue) heldUntil(tenant, campaign string, now time.Time) (time.Time, holdKey) {
	q.holdsMu.Lock()
	defer q.holdsMu.Unlock()
	var until time.Time
	var by holdKey
	if len(q.holds) == 0 {
		return until, by
	}
	for _, k := range []holdKey{{tenant, ""}, {tenant, campaign}} {
		u, ok := q.holds[k]
		switch {
		case !ok:
		case !now.Before(u):
			delete(q.holds, k) // over
			delete(q.heldIDs, k)
		case u.After(until):
			until, by = u, k
		}
	}
	return until, by
}

// putOnHold schedules items again at the end of the hold by, and notes
// them so that a release makes them due at once.
func (q *Queue) putOnHold(items []*item, until time.Time, by holdKey) {
	q.holdsMu.Lock()
	for _, it := range items {
		q.heldIDs[by] = append(q.heldIDs[by], EntryID{ID: it.entry.MsgID, Index: it.entry.Index})
	}
	q.holdsMu.Unlock()
	for _, it := range items {
		q.sched.pushAt(it, until)
	}
}

// holdBack returns the items no hold holds at now, and puts the others on
// hold.
func (q *Queue) holdBack(items []*item) []*item {
	q.holdsMu.Lock()
	none := len(q.holds) == 0
	q.holdsMu.Unlock()
	if none {
		return items // the usual case: one lock per batch, not per recipient
	}
	now := q.now()
	kept := items[:0]
	for _, it := range items {
		until, by := q.heldUntil(it.msg.meta.Tenant, it.msg.meta.Campaign, now)
		if until.IsZero() {
			kept = append(kept, it)
			continue
		}
		q.putOnHold([]*item{it}, until, by)
	}
	return kept
}

// held reports whether a hold now covers job j, which a runner of l took
// from the lane after it was routed; if so it puts the job's recipients on
// hold.
func (q *Queue) held(l *lane, j *job, now time.Time) bool {
	until, by := q.heldUntil(j.msg.meta.Tenant, j.msg.meta.Campaign, now)
	if until.IsZero() {
		return false
	}
	l.finish(j)
	q.putOnHold(j.items, until, by)
	return true
}
