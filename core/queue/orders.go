package queue

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// An operator's suspensions and rebinds are standing orders: they are
// recorded in the spool, so that a restart neither resumes mail an operator
// held back nor forgets the pool it was moved to, and so that the CLI can
// give them to a stopped node, which follows them when it starts.
const (
	suspensionsKeyspace = "operator-suspensions"
	rebindsKeyspace     = "operator-rebinds"
)

// standingSuspension is an operator's suspension as recorded.
type standingSuspension struct {
	Scope
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// scopeKey is the record key of a scope.
func scopeKey(s Scope) string {
	return strings.Join([]string{s.Provider, s.Source, s.Tenant, s.Campaign}, "\x1f")
}

// recordSuspension writes an operator's suspension, synced: the operator is
// told it holds only once it would survive a crash.
func (q *Queue) recordSuspension(s standingSuspension) error {
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("queue: suspend: %w", err)
	}
	if err := q.opts.Spool.Keyspace(suspensionsKeyspace).Set(scopeKey(s.Scope), v, true); err != nil {
		return fmt.Errorf("queue: suspend: not recorded: %w", err)
	}
	return nil
}

// forgetSuspension removes the record of scope, if any.
func (q *Queue) forgetSuspension(scope Scope) error {
	if err := q.opts.Spool.Keyspace(suspensionsKeyspace).Delete(scopeKey(scope), true); err != nil {
		return fmt.Errorf("queue: resume: %w", err)
	}
	return nil
}

// orderLanes keeps a suspension of a source IP's lanes for the lanes
// created after it, which it covers as well.
func (q *Queue) orderLanes(s standingSuspension) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.laneOrders = append(q.dropLaneOrderLocked(s.Scope), s)
}

// dropLaneOrderLocked returns the lane orders without scope's.
func (q *Queue) dropLaneOrderLocked(scope Scope) []standingSuspension {
	kept := q.laneOrders[:0]
	for _, o := range q.laneOrders {
		if o.Scope != scope {
			kept = append(kept, o)
		}
	}
	return kept
}

// applyLaneOrdersLocked suspends a new lane as the standing orders that
// cover it say. Called with q.mu held.
func (q *Queue) applyLaneOrdersLocked(l *lane) {
	now := q.now()
	for _, o := range q.laneOrders {
		if (o.Provider == "" || o.Provider == l.key.provider) && o.Source == l.key.source && o.Until.After(now) {
			l.suspend(o.Until, "operator: "+o.Reason)
		}
	}
}

// restoreOrders follows the standing orders recorded in the spool: the
// suspensions still running, and the rebinds of recipients still queued.
// Expired and settled records are removed.
func (q *Queue) restoreOrders() error {
	now := q.now()
	ks := q.opts.Spool.Keyspace(suspensionsKeyspace)
	var expired []string
	err := ks.Scan("", func(key string, value []byte) error {
		var s standingSuspension
		if err := json.Unmarshal(value, &s); err != nil || !s.Until.After(now) {
			expired = append(expired, key)
			return nil
		}
		why := "operator: " + s.Reason
		switch {
		case s.Tenant != "":
			q.holdsMu.Lock()
			q.holds[holdKey{s.Tenant, s.Campaign}] = s.Until
			q.holdsMu.Unlock()
			q.log.Info("tenant mail held, as recorded", "tenant", s.Tenant, "campaign", s.Campaign, "until", s.Until.Format(time.RFC3339), "reason", why)
		case s.Source == "":
			q.mu.Lock()
			p := q.providerLocked(s.Provider)
			q.mu.Unlock()
			p.suspend(q, s.Until, why)
		default:
			q.orderLanes(s)
			q.log.Info("lanes suspended, as recorded", "provider", s.Provider, "source", s.Source, "until", s.Until.Format(time.RFC3339), "reason", why)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: operator suspensions: %w", err)
	}
	for _, key := range expired {
		if err := ks.Delete(key, false); err != nil {
			return fmt.Errorf("queue: operator suspensions: %w", err)
		}
	}
	if err := q.restoreRebinds(); err != nil {
		return err
	}
	if err := q.restoreRemovals(); err != nil {
		return fmt.Errorf("queue: operator bounces and deletes: %w", err)
	}
	return nil
}

// rebindKey is the record key of a rebound recipient.
func rebindKey(id EntryID) string { return id.ID + "/" + strconv.Itoa(id.Index) }

// restoreRebinds loads the rebinds of recipients still in the spool.
func (q *Queue) restoreRebinds() error {
	ks := q.opts.Spool.Keyspace(rebindsKeyspace)
	var settled []string
	err := ks.Scan("", func(key string, value []byte) error {
		id, idx, ok := strings.Cut(key, "/")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil {
			settled = append(settled, key)
			return nil
		}
		if _, err := q.opts.Spool.Entry(id, n); err != nil {
			settled = append(settled, key)
			return nil
		}
		q.rebindsMu.Lock()
		q.rebinds[EntryID{ID: id, Index: n}] = string(value)
		q.rebindsMu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: operator rebinds: %w", err)
	}
	for _, key := range settled {
		if err := ks.Delete(key, false); err != nil {
			return fmt.Errorf("queue: operator rebinds: %w", err)
		}
	}
	return nil
}

// recordRebinds writes the rebinds of ids to pool, the last write synced.
func (q *Queue) recordRebinds(ids []EntryID, pool string) error {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = rebindKey(id)
	}
	if err := q.opts.Spool.Keyspace(rebindsKeyspace).SetAll(keys, []byte(pool), true); err != nil {
		return fmt.Errorf("queue: rebind: not recorded: %w", err)
	}
	return nil
}

// persistDue records the new due time of the recipients taken, in batches
// of removalBatch, so that a retry made on a stopped node, or before a
// restart, holds.
func (q *Queue) persistDue(taken []ref, due time.Time) error {
	for start := 0; start < len(taken); start += removalBatch {
		b := q.opts.Spool.NewBatch()
		for _, r := range taken[start:min(start+removalBatch, len(taken))] {
			e, err := q.opts.Spool.Entry(r.id, int(r.idx))
			if err != nil {
				continue // settled meanwhile
			}
			e.Due = due
			if err := b.Update(e); err != nil {
				b.Close()
				return fmt.Errorf("queue: retry: %w", err)
			}
		}
		err := b.Commit(false)
		b.Close()
		if err != nil {
			return fmt.Errorf("queue: retry: %w", err)
		}
	}
	return nil
}
