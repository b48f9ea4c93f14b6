package queue

import (
	"errors"
	"time"
)

// Scope names what an operator suspends: a provider, a source IP's lanes
// to every provider, or one (provider, source) lane; or a tenant's mail,
// or one campaign of it.
type Scope struct {
	Provider string `json:"provider,omitempty"`
	Source   string `json:"source,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Campaign string `json:"campaign,omitempty"`
}

// check reports a scope that names nothing or mixes the two kinds.
func (s Scope) check() error {
	bySender := s.Tenant != "" || s.Campaign != ""
	byRoute := s.Provider != "" || s.Source != ""
	switch {
	case bySender && byRoute:
		return errors.New("queue: suspend: name a provider and/or source, or a tenant and/or campaign, not both kinds")
	case !bySender && !byRoute:
		return errors.New("queue: suspend: name a provider, a source IP, a tenant or a campaign")
	case s.Campaign != "" && s.Tenant == "":
		return errors.New("queue: suspend: a campaign belongs to a tenant: name the tenant too")
	}
	return nil
}

// Suspend holds back the deliveries of scope until until, as an operator's
// action; mail waits in the queue meanwhile. A suspension of a source IP
// covers its lanes created later too. The suspension is recorded in the
// spool first, synced, so that it outlives a restart; it returns how many
// providers, lanes or tenants it covers now; each new or longer suspension
// emits a suspended event naming reason.
func (q *Queue) Suspend(scope Scope, until time.Time, reason string) (int, error) {
	if err := scope.check(); err != nil {
		return 0, err
	}
	order := standingSuspension{Scope: scope, Until: until, Reason: reason}
	if err := q.recordSuspension(order); err != nil {
		return 0, err
	}
	why := "operator: " + reason
	switch {
	case scope.Tenant != "":
		q.hold(scope.Tenant, scope.Campaign, until, why)
		return 1, nil
	case scope.Source == "":
		q.mu.Lock()
		p := q.providerLocked(scope.Provider)
		q.mu.Unlock()
		p.suspend(q, until, why)
		return 1, nil
	}
	q.orderLanes(order)
	n := 0
	for _, l := range q.lanesOf(scope.Provider, scope.Source) {
		l.suspend(until, why)
		n++
	}
	return n, nil
}

// Resume ends the suspensions Suspend would set for scope, whoever set
// them (an operator, or the policy after a provider's reply): a lane or
// provider within a second, held mail at once; and forgets the recorded
// one. It returns how many it ended.
func (q *Queue) Resume(scope Scope) (int, error) {
	if err := scope.check(); err != nil {
		return 0, err
	}
	if err := q.forgetSuspension(scope); err != nil {
		return 0, err
	}
	if scope.Tenant != "" {
		if q.release(scope.Tenant, scope.Campaign) {
			return 1, nil
		}
		return 0, nil
	}
	now := q.now()
	n := 0
	if scope.Source == "" {
		q.mu.Lock()
		p := q.providers[scope.Provider]
		q.mu.Unlock()
		if p != nil && p.throttle.resume(now) {
			n++
		}
	} else {
		q.mu.Lock()
		before := len(q.laneOrders)
		q.laneOrders = q.dropLaneOrderLocked(scope)
		dropped := before - len(q.laneOrders)
		q.mu.Unlock()
		if dropped > 0 && len(q.lanesOf(scope.Provider, scope.Source)) == 0 {
			n++ // an order for lanes not created yet
		}
	}
	for _, l := range q.lanesOf(scope.Provider, scope.Source) {
		if l.throttle.resume(now) {
			n++
		}
	}
	return n, nil
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
