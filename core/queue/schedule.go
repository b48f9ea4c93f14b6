package queue

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler holds entries until they are due and hands them to the router.
type scheduler struct {
	q    *Queue
	mu   sync.Mutex
	h    dueHeap
	wake chan struct{}
}

func newScheduler(q *Queue) *scheduler {
	return &scheduler{q: q, wake: make(chan struct{}, 1)}
}

// push schedules it at it.entry.Due.
func (s *scheduler) push(it *item) {
	s.mu.Lock()
	heap.Push(&s.h, it)
	first := s.h[0] == it
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
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

func (s *scheduler) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := s.q.opts.Now()
		var due []*item
		s.mu.Lock()
		for len(s.h) > 0 && !s.h[0].entry.Due.After(now) && len(due) < maxBatch {
			due = append(due, heap.Pop(&s.h).(*item))
		}
		next := time.Hour
		if len(s.h) > 0 {
			next = s.h[0].entry.Due.Sub(now)
		}
		s.mu.Unlock()
		if len(due) > 0 {
			s.q.router.submit(due)
			if len(due) == maxBatch {
				next = 0
			}
		}
		if next > 0 {
			timer.Reset(next)
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-timer.C:
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		} else if ctx.Err() != nil {
			return
		}
	}
}

// dueHeap orders items by due time.
type dueHeap []*item

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].entry.Due.Before(h[j].entry.Due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*item)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
