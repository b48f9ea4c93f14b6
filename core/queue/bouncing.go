package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"corriere/core/reply"
)

// An operator's bounce takes the recipients out of delivery at once and
// records the order in the spool; writing their DSNs is background work,
// paced so that it never takes the machine from the mail of other tenants.
// A bulk bounce of 100,000 recipients thus answers in about a second, and
// its DSNs follow at the pace the node can spare.
const (
	bouncesKeyspace = "operator-bounces"
	// bounceBatch is how many recipients one DSN commit settles.
	bounceBatch = 500
	// bounceDuty is the share of the time the DSN writer works while
	// other mail is in flight: it rests four times as long as each batch
	// took.
	bounceDuty = 0.2
)

// bounceOrder is one recipient waiting for its operator's DSN.
type bounceOrder struct {
	ref    ref
	reason string
}

// bounceWork is the operators' bounces waiting for their DSNs.
type bounceWork struct {
	mu      sync.Mutex
	orders  []bounceOrder
	waiting map[EntryID]bool
	wake    chan struct{}
}

func newBounceWork() *bounceWork {
	return &bounceWork{waiting: map[EntryID]bool{}, wake: make(chan struct{}, 1)}
}

// add queues orders and wakes the writer.
func (w *bounceWork) add(orders []bounceOrder) {
	w.mu.Lock()
	for _, o := range orders {
		w.waiting[EntryID{ID: o.ref.id, Index: int(o.ref.idx)}] = true
	}
	w.orders = append(w.orders, orders...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next takes up to n orders of one reason.
func (w *bounceWork) next(n int) []bounceOrder {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.orders) == 0 {
		return nil
	}
	reason := w.orders[0].reason
	k := 0
	for k < len(w.orders) && k < n && w.orders[k].reason == reason {
		k++
	}
	out := w.orders[:k:k]
	w.orders = w.orders[k:]
	if len(w.orders) == 0 {
		w.orders = nil
	}
	return out
}

// done forgets orders whose DSNs are written.
func (w *bounceWork) done(orders []bounceOrder) {
	w.mu.Lock()
	for _, o := range orders {
		delete(w.waiting, EntryID{ID: o.ref.id, Index: int(o.ref.idx)})
	}
	w.mu.Unlock()
}

// has reports whether id waits for its DSN.
func (w *bounceWork) has(id EntryID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting[id]
}

// len returns how many recipients wait for their DSN, the batch being
// written included.
func (w *bounceWork) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}

// orderBounces records the bounces of taken with reason in the spool, the
// last write synced, and hands them to the DSN writer.
func (q *Queue) orderBounces(taken []ref, reason string) error {
	ks := q.opts.Spool.Keyspace(bouncesKeyspace)
	orders := make([]bounceOrder, len(taken))
	for i, r := range taken {
		orders[i] = bounceOrder{ref: r, reason: reason}
		if err := ks.Set(bounceKey(r), []byte(reason), i == len(taken)-1); err != nil {
			return err
		}
	}
	q.bounces.add(orders)
	return nil
}

// bounceKey is the record key of an ordered bounce.
func bounceKey(r ref) string { return r.id + "/" + strconv.Itoa(int(r.idx)) }

// restoreBounces loads the bounces ordered and not yet written; Recover
// leaves their recipients out of the scheduler.
func (q *Queue) restoreBounces() error {
	ks := q.opts.Spool.Keyspace(bouncesKeyspace)
	var orders []bounceOrder
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
		orders = append(orders, bounceOrder{ref: ref{id: id, idx: int32(n)}, reason: string(value)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range settled {
		if err := ks.Delete(key, false); err != nil {
			return err
		}
	}
	if len(orders) > 0 {
		q.bounces.add(orders)
		q.log.Info("operator bounces resumed: their DSNs are being written", "recipients", len(orders))
	}
	return nil
}

// writeBounces writes the DSNs of the operators' bounces until ctx ends,
// resting between batches while other mail is in flight.
func (q *Queue) writeBounces(ctx context.Context) {
	for {
		orders := q.bounces.next(bounceBatch)
		if orders == nil {
			select {
			case <-ctx.Done():
				return
			case <-q.bounces.wake:
				continue
			}
		}
		start := time.Now()
		q.writeBounceBatch(orders)
		if q.slots.inUse() == 0 {
			continue
		}
		rest := time.NewTimer(time.Duration(float64(time.Since(start)) * (1 - bounceDuty) / bounceDuty))
		select {
		case <-ctx.Done():
			rest.Stop()
			return
		case <-rest.C:
		}
	}
}

// writeBounceBatch fails the recipients of orders, which share a reason,
// with their DSNs and events, and removes the orders' records. On a spool
// error they are tried again a minute later.
func (q *Queue) writeBounceBatch(orders []bounceOrder) {
	refs := make([]ref, len(orders))
	for i, o := range orders {
		refs[i] = o.ref
	}
	items := q.sched.load(refs)
	for _, it := range items {
		q.takeAct(it.entry) // the bounce is this recipient's fate
	}
	if err := q.bounceNow(items, operatorReply(orders[0].reason)); err != nil {
		q.log.Error("operator bounce: DSNs not written; trying again in a minute", "recipients", len(items), "err", err)
		time.AfterFunc(time.Minute, func() { q.bounces.add(orders) })
		q.bounces.done(orders)
		return
	}
	q.bounces.done(orders)
	ks := q.opts.Spool.Keyspace(bouncesKeyspace)
	for _, r := range refs {
		if err := ks.Delete(bounceKey(r), false); err != nil {
			q.log.Warn("operator bounce record not removed; the next start removes it", "msg_id", r.id, "err", err)
			return
		}
	}
}

// operatorReply is the reply recorded for an operator's bounce.
func operatorReply(reason string) *reply.Reply {
	return reply.New(550, "5.0.0", "Removed from the queue by the operator: "+reason)
}
