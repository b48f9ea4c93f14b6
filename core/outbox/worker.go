package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// errNotConfigured is the failure of an endpoint Options.Secrets does not
// know.
var errNotConfigured = errors.New("the endpoint is not configured")

// worker sends the events of one endpoint, in order, one batch at a time.
type worker struct {
	o     *Outbox
	ep    Endpoint
	key   string
	kick  chan struct{}
	stats stats

	// oldest is the creation time of the oldest pending event, for the
	// lag; zero when none is known.
	mu     sync.Mutex
	oldest time.Time
}

// stats are a worker's counters, read by the metrics.
type stats struct {
	pending, delivered, failures, dead atomic.Int64
}

func (o *Outbox) newWorker(ep Endpoint) *worker {
	return &worker{o: o, ep: ep, key: ep.key(), kick: make(chan struct{}, 1)}
}

// wake tells the worker there are new events, without waiting.
func (w *worker) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *worker) noteOldest(t time.Time) {
	w.mu.Lock()
	if w.oldest.IsZero() || t.Before(w.oldest) {
		w.oldest = t
	}
	w.mu.Unlock()
}

// lag returns the age of the oldest pending event.
func (w *worker) lag(now time.Time) time.Duration {
	if w.stats.pending.Load() == 0 {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.oldest.IsZero() {
		return 0
	}
	return now.Sub(w.oldest)
}

// run sends batches until ctx ends.
func (w *worker) run(ctx context.Context) {
	o := w.o
	select {
	case <-ctx.Done():
		return
	case <-o.released:
	}
	backoff := time.Duration(0)
	for {
		batch, keys, err := w.load()
		if err != nil {
			o.log.Error("outbox: read events", "outbox", o.opts.Name, "tenant", w.ep.Tenant, "err", err)
			batch = nil
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
				continue
			}
		}
		// An endpoint without a secret is not configured (any more, or
		// not yet while the policy loads): its events wait like those of
		// a failing endpoint, and are given up after MaxAge.
		secret, ok := o.opts.Secrets(w.ep)
		err = errNotConfigured
		if ok {
			err = o.post(ctx, w.ep, secret, events(batch))
		}
		if ctx.Err() != nil {
			return // shutting down: the batch stays for the next run
		}
		if err == nil {
			w.settle(batch, keys)
			backoff = 0
			continue
		}
		w.stats.failures.Add(1)
		backoff = min(max(2*backoff, o.opts.MinBackoff), o.opts.MaxBackoff)
		o.log.Warn("outbox: endpoint failed; retrying", "outbox", o.opts.Name, "tenant", w.ep.Tenant, "url", w.ep.URL,
			"events", len(batch), "err", err, "retry_in", backoff)
		w.expire(batch, keys)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// load reads the oldest events of the endpoint, up to a batch.
func (w *worker) load() ([]record, [][]byte, error) {
	p := endpointPrefix(prefixPending, w.key)
	it, err := w.o.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	var (
		batch []record
		keys  [][]byte
	)
	for it.First(); it.Valid() && len(batch) < w.o.opts.BatchSize; it.Next() {
		var r record
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, nil, fmt.Errorf("decode %x: %w", it.Key(), err)
		}
		batch = append(batch, r)
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if len(batch) > 0 {
		w.mu.Lock()
		w.oldest = batch[0].Created
		w.mu.Unlock()
	}
	return batch, keys, it.Error()
}

// settle removes delivered events. The removal is not synced: losing it in
// a crash sends them again, which their ids make harmless.
func (w *worker) settle(batch []record, keys [][]byte) {
	b := w.o.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		_ = b.Delete(k, nil)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		w.o.log.Error("outbox: remove delivered events", "outbox", w.o.opts.Name, "err", err)
		return
	}
	w.stats.pending.Add(-int64(len(keys)))
	w.stats.delivered.Add(int64(len(batch)))
}

// expire moves the events of a failed batch that are older than MaxAge to
// the dead letters.
func (w *worker) expire(batch []record, keys [][]byte) {
	cutoff := w.o.opts.Now().Add(-w.o.opts.MaxAge)
	var (
		old     []record
		oldKeys [][]byte
	)
	for i, r := range batch {
		if r.Created.Before(cutoff) {
			old, oldKeys = append(old, r), append(oldKeys, keys[i])
		}
	}
	if len(old) > 0 {
		w.bury(old, oldKeys, fmt.Sprintf("not delivered within %v", w.o.opts.MaxAge))
	}
}

// bury moves events to the dead letters, in one synced batch.
func (w *worker) bury(batch []record, keys [][]byte, reason string) {
	b := w.o.db.NewBatch()
	defer b.Close()
	for i, r := range batch {
		r.Reason = reason
		v, err := json.Marshal(&r)
		if err != nil {
			w.o.log.Error("outbox: encode dead letter", "err", err)
			return
		}
		_ = b.Delete(keys[i], nil)
		dk := append([]byte{prefixDead}, keys[i][1:]...)
		_ = b.Set(dk, v, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		w.o.log.Error("outbox: move events to the dead letters", "outbox", w.o.opts.Name, "err", err)
		return
	}
	w.stats.pending.Add(-int64(len(batch)))
	w.stats.dead.Add(int64(len(batch)))
	w.o.log.Warn("outbox: events given up", "outbox", w.o.opts.Name, "tenant", w.ep.Tenant, "url", w.ep.URL,
		"events", len(batch), "reason", reason)
}

// events returns the events of records.
func events(batch []record) []Event {
	out := make([]Event, len(batch))
	for i, r := range batch {
		out[i] = Event{ID: r.ID, Payload: r.Payload}
	}
	return out
}
