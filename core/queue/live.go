package queue

// States of a recipient that only the running queue knows, for
// LiveState.
const (
	LiveInFlight  = "inflight"
	LiveSuspended = "suspended"
	LiveRemoving  = "removing"
)

// markInFlight records that the recipients of j are in a transaction (on)
// or no longer are.
func (q *Queue) markInFlight(j *job, on bool) {
	q.inflightMu.Lock()
	defer q.inflightMu.Unlock()
	for _, it := range j.items {
		id := EntryID{ID: it.entry.MsgID, Index: it.entry.Index}
		if on {
			q.inflight[id] = struct{}{}
		} else {
			delete(q.inflight, id)
		}
	}
}

// LiveState returns LiveInFlight for a recipient in a transaction now,
// LiveRemoving for one an operator bounced or deleted that is still to
// be settled, and LiveSuspended for one whose provider, or the lane from provider's source
// source, is suspended now; "" otherwise. provider and source are those of
// the recipient's last attempt ("" when it has had none).
func (q *Queue) LiveState(id string, index int, provider, source string) string {
	q.inflightMu.Lock()
	_, busy := q.inflight[EntryID{ID: id, Index: index}]
	q.inflightMu.Unlock()
	if busy {
		return LiveInFlight
	}
	if q.removals.has(EntryID{ID: id, Index: index}) {
		return LiveRemoving
	}
	if provider == "" {
		return ""
	}
	now := q.now()
	q.mu.Lock()
	p := q.providers[provider]
	l := q.lanes[laneKey{source: source, provider: provider}]
	q.mu.Unlock()
	if p != nil && p.throttle.suspended(now) || l != nil && l.isSuspended(now) {
		return LiveSuspended
	}
	return ""
}
