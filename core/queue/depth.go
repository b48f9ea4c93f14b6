package queue

// Depth is a cheap snapshot of how much the queue holds, for metrics
// scraped every few seconds: unlike Status it asks nothing of the policy
// and formats nothing.
type Depth struct {
	// Pending counts every recipient the queue holds.
	Pending int64
	// Scheduled counts recipients waiting for their next attempt; their
	// provider is known only once they come due, so they are not in
	// Lanes.
	Scheduled int
	// Connections counts the outbound connections open across lanes.
	Connections int
	// SessionsOpened counts the outbound connections opened since the
	// queue started, and DialFailures the attempts to open one that
	// failed (no MX answered, a refused connection, a 4xx/5xx greeting).
	SessionsOpened, DialFailures int64
	// RemovalsWaiting counts the recipients an operator bounced or deleted
	// that are still to be settled (entries removed, DSNs written).
	RemovalsWaiting int
	// Lanes holds one entry per lane.
	Lanes []LaneDepth
}

// LaneDepth is one lane's share of a Depth.
type LaneDepth struct {
	Provider string
	Source   string
	// Ready counts the recipients waiting in the lane, per class in the
	// order of message.Classes.
	Ready [4]int
	// InFlight counts recipients in transactions right now.
	InFlight int
	// Suspended is true while the lane or its provider is suspended.
	Suspended bool
}

// Depth returns the snapshot. Its cost grows with the lanes and the jobs
// waiting in them, which Options.MaxReady bounds, not with the recipients
// scheduled for later.
func (q *Queue) Depth() Depth {
	d := Depth{Pending: q.pending.Load(), Scheduled: q.sched.len(), Connections: q.slots.inUse(),
		SessionsOpened: q.sessionsOut.Load(), DialFailures: q.dialFailures.Load(),
		RemovalsWaiting: q.removals.len()}
	now := q.now()
	q.mu.Lock()
	lanes := make([]*lane, 0, len(q.lanes))
	for _, l := range q.lanes {
		lanes = append(lanes, l)
	}
	q.mu.Unlock()
	d.Lanes = make([]LaneDepth, 0, len(lanes))
	for _, l := range lanes {
		ld := LaneDepth{Provider: l.key.provider, Source: l.key.source}
		l.mu.Lock()
		for ci, jobs := range l.classes {
			for _, j := range jobs {
				ld.Ready[ci] += len(j.items)
			}
		}
		ld.InFlight = l.inflight
		l.mu.Unlock()
		ld.Suspended = l.isSuspended(now)
		d.Lanes = append(d.Lanes, ld)
	}
	return d
}
