package queue

import (
	"errors"
	"time"
)

// Suspend holds back, until until, the provider's deliveries (source
// empty), a source IP's deliveries to every provider (provider empty), or
// one (provider, source) lane, as an operator's action. A lane not used
// yet cannot be suspended; a provider can. It returns how many provider or
// lanes it covered; each new or longer suspension emits a suspended event
// naming reason.
func (q *Queue) Suspend(provider, source string, until time.Time, reason string) (int, error) {
	if provider == "" && source == "" {
		return 0, errors.New("queue: suspend: name a provider, a source IP, or both")
	}
	why := "operator: " + reason
	if source == "" {
		q.mu.Lock()
		p := q.providerLocked(provider)
		q.mu.Unlock()
		p.suspend(q, until, why)
		return 1, nil
	}
	n := 0
	for _, l := range q.lanesOf(provider, source) {
		l.suspend(until, why)
		n++
	}
	return n, nil
}

// Resume ends, within a second, the suspensions Suspend would set for the
// same provider and source, whoever set them (an operator or a
// provider's reply). It returns how many it ended.
func (q *Queue) Resume(provider, source string) int {
	now := q.now()
	n := 0
	if source == "" && provider != "" {
		q.mu.Lock()
		p := q.providers[provider]
		q.mu.Unlock()
		if p != nil && p.throttle.resume(now) {
			n++
		}
	}
	for _, l := range q.lanesOf(provider, source) {
		if l.throttle.resume(now) {
			n++
		}
	}
	return n
}

// lanesOf returns the lanes of provider and source; an empty one matches
// any.
func (q *Queue) lanesOf(provider, source string) []*lane {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*lane
	for k, l := range q.lanes {
		if (provider == "" || k.provider == provider) && (source == "" || k.source == source) {
			out = append(out, l)
		}
	}
	return out
}
