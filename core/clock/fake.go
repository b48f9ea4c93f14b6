package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a clock for tests: its time moves only through Advance, which
// fires the timers that come due. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // armed timers
	seq    uint64       // arming order, to fire timers due together in order
}

// NewFake returns a fake clock showing start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d; one
// with d <= 0 fires at the next Advance, Advance(0) included. Like
// time.Timer, its channel holds one value; a fire that finds it full is
// dropped.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc returns a timer that calls f when the fake time reaches now+d.
// Unlike time.AfterFunc, fn runs on the goroutine that calls Advance,
// before Advance returns, which keeps tests deterministic.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	t.Reset(d)
	return t
}

// Advance moves the time forward by d (a negative d is treated as zero),
// then fires every timer due by the new time, in order of due time (in the
// order they were armed when due together): a channel timer receives its
// due time, an AfterFunc function runs before Advance returns. A timer
// armed meanwhile, by such a function or by a goroutine woken by a
// channel, counts from the new time and waits for the next Advance, so
// that one Advance does a bounded amount of work whatever the code under
// test does; to step through time, advance in steps.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(max(d, 0))
	var funcs []func()
	for len(f.timers) > 0 && !f.timers[0].when.After(f.now) {
		t := f.timers[0]
		f.timers = f.timers[1:]
		t.armed = false
		if t.fn != nil {
			funcs = append(funcs, t.fn)
			continue
		}
		// Under the lock: a Stop or Reset after this drops the value.
		select {
		case t.c <- t.when:
		default:
		}
	}
	f.mu.Unlock()
	for _, fn := range funcs {
		fn()
	}
}

// Armed reports whether a timer is armed to fire at exactly at. Code under
// test arms its timers on its own goroutines: a test waits until the
// timer it is about to advance past is armed, so that the advance does not
// race with the arming (a timer armed after Advance counts from the new
// time).
func (f *Fake) Armed(at time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.timers {
		if t.when.Equal(at) {
			return true
		}
	}
	return false
}

// arm schedules t at now+d, in due order. Called with f.mu held.
func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	f.seq++
	t.when, t.seq, t.armed = f.now.Add(d), f.seq, true
	i := sort.Search(len(f.timers), func(i int) bool {
		o := f.timers[i]
		return o.when.After(t.when) || (o.when.Equal(t.when) && o.seq > t.seq)
	})
	f.timers = append(f.timers, nil)
	copy(f.timers[i+1:], f.timers[i:])
	f.timers[i] = t
}

// disarm removes t from the armed timers; it reports whether t was armed.
// Called with f.mu held.
func (f *Fake) disarm(t *fakeTimer) bool {
	if !t.armed {
		return false
	}
	for i, o := range f.timers {
		if o == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			break
		}
	}
	t.armed = false
	return true
}

type fakeTimer struct {
	f     *Fake
	c     chan time.Time
	fn    func()
	when  time.Time
	seq   uint64
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	return t.f.disarm(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	active := t.f.disarm(t)
	t.f.arm(t, d)
	return active
}

// drain empties the channel of a fire from before a Stop or Reset, as Go
// 1.23 timers do. Called with f.mu held.
func (t *fakeTimer) drain() {
	if t.c == nil {
		return
	}
	select {
	case <-t.c:
	default:
	}
}

var _ Clock = (*Fake)(nil)
