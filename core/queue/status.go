package queue

import (
	"sort"
	"time"

	"corriere/core/message"
	"corriere/core/policy"
)

// LaneStatus describes one lane for operators.
type LaneStatus struct {
	Source   string `json:"source"`
	Provider string `json:"provider"`
	// Queued counts recipients waiting, per class.
	Queued map[message.Class]int `json:"queued"`
	// InFlight counts recipients in transactions right now.
	InFlight int `json:"in_flight"`
	// Connections counts runners (each holds at most one connection).
	Connections int `json:"connections"`
	// Limits are the shaping limits in force.
	Limits policy.Limits `json:"limits"`
	// RateFactor is the slow-down multiplier (1 is full speed).
	RateFactor float64 `json:"rate_factor"`
	// SuspendedUntil is set while the lane or its provider is suspended.
	SuspendedUntil time.Time `json:"suspended_until,omitzero"`
	// Warmup is set while the source is warming up.
	Warmup *WarmupStatus `json:"warmup,omitempty"`
}

// WarmupStatus is where a warming-up source stands today at a provider.
type WarmupStatus struct {
	// Day is the day of the schedule, from 1.
	Day int `json:"day"`
	// Cap is today's cap; Sent what went out against it.
	Cap  int   `json:"cap"`
	Sent int64 `json:"sent"`
}

// Status is a snapshot of the queue.
type Status struct {
	// Pending counts every recipient the queue holds.
	Pending int64 `json:"pending"`
	// Scheduled counts recipients waiting for their retry time.
	Scheduled int `json:"scheduled"`
	// Connections counts the outbound connections open across lanes, and
	// MaxConnections is their cap (Options.MaxConnections).
	Connections    int `json:"connections"`
	MaxConnections int `json:"max_connections"`
	// Lanes lists the lanes, busiest first.
	Lanes []LaneStatus `json:"lanes"`
}

// Status returns a snapshot for the status command and the admin API.
func (q *Queue) Status() Status {
	st := Status{Pending: q.pending.Load(), Scheduled: q.sched.len(),
		Connections: q.slots.inUse(), MaxConnections: q.opts.MaxConnections}
	now := q.now()
	q.mu.Lock()
	lanes := make([]*lane, 0, len(q.lanes))
	for _, l := range q.lanes {
		lanes = append(lanes, l)
	}
	q.mu.Unlock()
	for _, l := range lanes {
		l.mu.Lock()
		ls := LaneStatus{
			Source: l.key.source, Provider: l.key.provider, Queued: map[message.Class]int{},
			InFlight: l.inflight, Connections: l.runners, Limits: l.limits,
		}
		if l.reserved {
			ls.Connections++
		}
		for ci, jobs := range l.classes {
			for _, j := range jobs {
				ls.Queued[message.Classes[ci]] += len(j.items)
			}
		}
		l.mu.Unlock()
		until := l.throttle.suspendedUntil()
		if pu := l.prov.throttle.suspendedUntil(); pu.After(until) {
			until = pu
		}
		if until.After(now) {
			ls.SuspendedUntil = until
		}
		ls.RateFactor = l.throttle.factor()
		ls.Warmup = q.warmupStatus(l.key.source, l.key.provider)
		st.Lanes = append(st.Lanes, ls)
	}
	sort.Slice(st.Lanes, func(i, j int) bool {
		a, b := st.Lanes[i], st.Lanes[j]
		if qa, qb := total(a.Queued)+a.InFlight, total(b.Queued)+b.InFlight; qa != qb {
			return qa > qb
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Source < b.Source
	})
	return st
}

func total(m map[message.Class]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (q *Queue) warmupStatus(source, provider string) *WarmupStatus {
	wp, ok := q.opts.Policy.(policy.WarmupPolicy)
	if !ok || q.opts.Warmup == nil || source == "" {
		return nil
	}
	w, ok := wp.Warmups()[source]
	if !ok {
		return nil
	}
	limit, day, warming := w.Cap(q.now())
	if !warming {
		return nil
	}
	return &WarmupStatus{Day: day, Cap: limit, Sent: q.opts.Warmup.Sent(source, provider)}
}
