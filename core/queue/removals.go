package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"corriere/core/reply"
)

// An operator's bounce or delete takes the recipients out of delivery at
// once and records the order in the spool; settling them (removing their
// entries, writing the DSNs of a bounce, emitting the events) is background
// work, paced so that it never takes the machine from the mail of other
// tenants. A bulk action over 100,000 recipients thus answers in about a
// second, and its settlement follows at the pace the node can spare.
const (
	removalsKeyspace = "operator-removals"
	// removalBatch is how many recipients one synced commit settles.
	removalBatch = 500
	// removalDuty is the share of the time the settling works while
	// other mail is in flight: it rests nine times as long as each batch
	// took.
	removalDuty = 0.1
)

// Kinds of removal, the first byte of a record's value.
const (
	removeBounce byte = 'b'
	removeDelete byte = 'd'
)

// removalOrder is one recipient an operator bounced or deleted, waiting to
// be settled.
type removalOrder struct {
	ref    ref
	kind   byte
	reason string
}

// removalWork is the operators' removals waiting to be settled.
type removalWork struct {
	mu      sync.Mutex
	orders  []removalOrder
	waiting map[EntryID]bool
	wake    chan struct{}
}

func newRemovalWork() *removalWork {
	return &removalWork{waiting: map[EntryID]bool{}, wake: make(chan struct{}, 1)}
}

// add queues orders and wakes the writer.
func (w *removalWork) add(orders []removalOrder) {
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

// next takes up to n orders of one kind and reason.
func (w *removalWork) next(n int) []removalOrder {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.orders) == 0 {
		return nil
	}
	first := w.orders[0]
	k := 0
	for k < len(w.orders) && k < n && w.orders[k].reason == first.reason && w.orders[k].kind == first.kind {
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
func (w *removalWork) done(orders []removalOrder) {
	w.mu.Lock()
	for _, o := range orders {
		delete(w.waiting, EntryID{ID: o.ref.id, Index: int(o.ref.idx)})
	}
	w.mu.Unlock()
}

// has reports whether id waits for its DSN.
func (w *removalWork) has(id EntryID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting[id]
}

// len returns how many recipients wait to be settled, the batch being
// settled included.
func (w *removalWork) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}

// orderRemovals records the removal of taken, of kind with reason, in the
// spool, the last write synced, and hands them to the settling.
func (q *Queue) orderRemovals(taken []ref, kind byte, reason string) error {
	orders := make([]removalOrder, len(taken))
	keys := make([]string, len(taken))
	for i, r := range taken {
		orders[i] = removalOrder{ref: r, kind: kind, reason: reason}
		keys[i] = removalKey(r)
	}
	if err := q.opts.Spool.Keyspace(removalsKeyspace).SetAll(keys, append([]byte{kind}, reason...), true); err != nil {
		return err
	}
	q.removals.add(orders)
	return nil
}

// removalKey is the record key of an ordered removal.
func removalKey(r ref) string { return r.id + "/" + strconv.Itoa(int(r.idx)) }

// restoreRemovals loads the removals ordered and not yet settled; Recover
// leaves their recipients out of the scheduler.
func (q *Queue) restoreRemovals() error {
	ks := q.opts.Spool.Keyspace(removalsKeyspace)
	var orders []removalOrder
	var settled []string
	err := ks.Scan("", func(key string, value []byte) error {
		id, idx, ok := strings.Cut(key, "/")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || len(value) == 0 {
			settled = append(settled, key)
			return nil
		}
		if _, err := q.opts.Spool.Entry(id, n); err != nil {
			settled = append(settled, key)
			return nil
		}
		orders = append(orders, removalOrder{ref: ref{id: id, idx: int32(n)}, kind: value[0], reason: string(value[1:])})
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
		q.removals.add(orders)
		q.log.Info("operator bounces and deletes resumed: the recipients are being settled", "recipients", len(orders))
	}
	return nil
}

// settleRemovals settles the operators' bounces and deletes until ctx
// ends, resting between batches while other mail is in flight.
func (q *Queue) settleRemovals(ctx context.Context) {
	for {
		orders := q.removals.next(removalBatch)
		if orders == nil {
			select {
			case <-ctx.Done():
				return
			case <-q.removals.wake:
				continue
			}
		}
		start := time.Now()
		q.settleBatch(orders)
		if q.slots.inUse() == 0 {
			continue
		}
		rest := time.NewTimer(time.Duration(float64(time.Since(start)) * (1 - removalDuty) / removalDuty))
		select {
		case <-ctx.Done():
			rest.Stop()
			return
		case <-rest.C:
		}
	}
}

// settleBatch settles the recipients of orders, which share a kind and a
// reason: a bounce's with their DSNs and events, a delete's with their
// events; then it removes the orders' records. On a spool error they are
// tried again a minute later.
func (q *Queue) settleBatch(orders []removalOrder) {
	refs := make([]ref, len(orders))
	for i, o := range orders {
		refs[i] = o.ref
	}
	items := q.sched.load(refs)
	for _, it := range items {
		q.takeAct(it.entry) // the operator's order is this recipient's fate
	}
	var err error
	if orders[0].kind == removeDelete {
		err = q.deleteNow(items, orders[0].reason)
	} else {
		err = q.bounceNow(items, operatorReply(orders[0].reason))
	}
	q.removals.done(orders)
	if err != nil {
		q.log.Error("operator bounce or delete not settled; trying again in a minute", "recipients", len(items), "err", err)
		time.AfterFunc(time.Minute, func() { q.removals.add(orders) })
		return
	}
	ks := q.opts.Spool.Keyspace(removalsKeyspace)
	for _, r := range refs {
		if err := ks.Delete(removalKey(r), false); err != nil {
			q.log.Warn("operator removal record not removed; the next start removes it", "msg_id", r.id, "err", err)
			return
		}
	}
}

// operatorReply is the reply recorded for an operator's bounce.
func operatorReply(reason string) *reply.Reply {
	return reply.New(550, "5.0.0", "Removed from the queue by the operator: "+reason)
}
