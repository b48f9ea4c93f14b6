package queue

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"corriere/core/spool"
)

// ref is a recipient the scheduler holds until it is due: which spool
// entry, and when. The entry itself stays in the spool until then, so a
// million waiting recipients cost a few tens of megabytes, not gigabytes.
type ref struct {
	due int64 // Unix nanoseconds
	id  string
	idx int32
}

// scheduler holds entries until they are due and hands them to the router,
// loading each from the spool as it comes due, while fewer than
// Options.MaxReady recipients are in memory on their way to delivery.
type scheduler struct {
	q    *Queue
	mu   sync.Mutex
	h    refHeap
	wake chan struct{}
}

func newScheduler(q *Queue) *scheduler {
	return &scheduler{q: q, wake: make(chan struct{}, 1)}
}

// push schedules it at it.entry.Due. The spool must already hold the
// entry as it should be tried: the scheduler keeps only its reference.
func (s *scheduler) push(it *item) {
	s.pushAt(it, it.entry.Due)
}

// pushAt schedules it at due, whatever its entry says.
func (s *scheduler) pushAt(it *item, due time.Time) {
	s.pushRef(ref{due: due.UnixNano(), id: it.entry.MsgID, idx: int32(it.entry.Index)})
}

func (s *scheduler) pushRef(r ref) {
	s.mu.Lock()
	heap.Push(&s.h, r)
	first := s.h[0] == r
	s.mu.Unlock()
	if first {
		s.poke()
	}
}

// poke wakes the scheduler to look at its queue again.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// len returns how many entries wait for their due time.
func (s *scheduler) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h)
}

// maxBatch bounds how many due entries go to the router in one hand-over,
// so a huge backlog coming due at once is routed in slices.
const maxBatch = 4096

// roomWait is how long the scheduler waits before looking again when
// entries are due but MaxReady recipients are already in memory.
const roomWait = 50 * time.Millisecond

func (s *scheduler) run(ctx context.Context) {
	timer := s.q.opts.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := s.q.now()
		room := min(maxBatch, s.q.readyRoom())
		var due []ref
		s.mu.Lock()
		for len(s.h) > 0 && s.h[0].due <= now.UnixNano() && len(due) < room {
			due = append(due, heap.Pop(&s.h).(ref))
		}
		next := time.Hour
		if len(s.h) > 0 {
			next = time.Duration(s.h[0].due - now.UnixNano())
			if next <= 0 {
				next = roomWait // due, but no room: wait for some to settle
			}
		}
		s.mu.Unlock()
		if len(due) > 0 {
			if items := s.q.holdBack(s.load(due)); len(items) > 0 {
				s.q.router.submit(items)
			}
			if len(due) == maxBatch {
				next = 0
			}
		}
		if next > 0 {
			// Reset and Stop drop a fire from before them: the channel
			// never holds a stale one.
			timer.Reset(next)
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-timer.C():
			}
			timer.Stop()
		} else if ctx.Err() != nil {
			return
		}
	}
}

// load reads the entries of due references from the spool, with one
// metadata read per message. An entry gone from the spool (its message
// deleted by an operator) is dropped; one that cannot be read now is
// tried again in a minute.
func (s *scheduler) load(due []ref) []*item {
	q := s.q
	sp := q.opts.Spool
	infos := map[string]*msgInfo{}
	failed := map[string]error{}
	items := make([]*item, 0, len(due))
	for _, r := range due {
		if err := failed[r.id]; err != nil {
			s.loadFailed(r, err)
			continue
		}
		info, ok := infos[r.id]
		if !ok {
			meta, err := sp.Meta(r.id)
			if err != nil {
				failed[r.id] = err
				s.loadFailed(r, err)
				continue
			}
			info = &msgInfo{meta: meta, msg: meta.Message()}
			infos[r.id] = info
		}
		e, err := sp.Entry(r.id, int(r.idx))
		if err != nil {
			s.loadFailed(r, err)
			continue
		}
		items = append(items, &item{entry: e, msg: info})
	}
	return items
}

// loadFailed settles or reschedules a reference whose entry could not be
// read.
func (s *scheduler) loadFailed(r ref, err error) {
	if errors.Is(err, spool.ErrNotFound) {
		s.q.log.Debug("scheduled entry gone from the spool; dropping it", "msg_id", r.id, "index", r.idx)
		s.q.pending.Add(-1)
		return
	}
	s.q.log.Error("cannot read a scheduled entry; trying again in a minute", "msg_id", r.id, "index", r.idx, "err", err)
	r.due = s.q.now().Add(time.Minute).UnixNano()
	s.pushRef(r)
}

// refHeap orders references by due time.
type refHeap []ref

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(ref)) }
func (h *refHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = ref{}
	*h = old[:len(old)-1]
	return r
}
