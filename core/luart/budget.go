package luart

import (
	"context"
	"math"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// The budgets of a hook call. gopher-lua has no allocator hook, but its VM
// loop asks the call's context for Done() before every instruction, on the
// call's own goroutine. callCtx is that context: its Done is one atomic
// load until the watchdog raises a signal, so a call can be stopped at the
// next instruction boundary, and a memory check runs where inspecting the
// Lua state is safe.
//
// The watchdog is one goroutine for the process. Every tick while calls
// are in progress it reads the runtime's cumulative heap allocation (cheap,
// process-wide), stops the calls past their deadline or abandoned by their
// caller, and asks a call to measure itself when enough was allocated in
// the process since its last measurement. A call also reads the clock
// every clockEvery instructions: when looping calls hold every CPU, the
// watchdog may wait up to the scheduler's 10ms preemption for one. The measurement (meter) walks
// what the call can reach and stops as soon as it passes the limit, so an
// allocation by another goroutine never stops an innocent call: it only
// costs that call a walk.

// watchTick is how often the watchdog looks at the calls in progress: the
// precision of the time budget and the delay before a memory check.
const watchTick = time.Millisecond

// idleTicks is how many ticks without a call in progress the watchdog
// waits before it parks until the next call.
const idleTicks = 1000

// stopCause says why a call was stopped.
type stopCause int32

const (
	notStopped stopCause = iota
	stopTime
	stopMemory
	stopCanceled
)

// Signal bits of a callCtx.
const (
	sigStop    uint32 = 1 << iota // the call must stop: Done is closed
	sigMeasure                    // measure what the call holds at the next instruction
)

// closedDone is the Done channel of a stopped call.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// callCtx is the context of the hook calls of one state; the state reuses
// it for every call, so a call allocates no context or timer.
type callCtx struct {
	st *state

	// Set by the call's goroutine before the call is registered with the
	// watchdog, read by the watchdog while it is registered.
	parent   context.Context
	start    time.Time
	deadline time.Time
	memStep  uint64 // process allocation between two measurements
	memLimit int64  // what the call may hold, state included

	// allocMark and idx belong to the watchdog (under watch.mu).
	allocMark uint64
	idx       int
	// measuredMark is the process allocation when the call's last
	// measurement ended, set by the call's goroutine: what the measurement
	// itself allocated (a walk of a big table boxes every index) must not
	// call for the next one, or measuring would crowd out the call.
	measuredMark atomic.Uint64

	signal atomic.Uint32
	cause  atomic.Int32

	// measured is set, on the call's goroutine, when a measurement ran;
	// instructions counts the instructions the call ran.
	measured     bool
	instructions uint64
}

var _ context.Context = (*callCtx)(nil)

// Deadline returns the end of the call's time budget.
func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// clockEvery is how many instructions run between two readings of the
// clock by the call itself (a power of two): the time budget holds even
// when the watchdog waits for a CPU behind the very calls it should stop.
const clockEvery = 256

// Done returns nil (never ready) while the call may go on, and a closed
// channel once it must stop. It runs before every Lua instruction.
func (c *callCtx) Done() <-chan struct{} {
	if c.signal.Load() != 0 {
		return c.slowDone()
	}
	c.instructions++
	if c.instructions&(clockEvery-1) == 0 && !time.Now().Before(c.deadline) {
		c.stop(stopTime)
		return closedDone
	}
	return nil
}

func (c *callCtx) slowDone() <-chan struct{} {
	s := c.signal.Load()
	if s&sigMeasure != 0 && s&sigStop == 0 {
		c.signal.And(^sigMeasure)
		c.measured = true
		if _, ok := c.st.measure(true, c.memLimit); !ok {
			c.stop(stopMemory)
		}
		c.measuredMark.Store(heapAllocs())
	}
	if c.signal.Load()&sigStop != 0 {
		return closedDone
	}
	return nil
}

// Err says why the call was stopped, or nil.
func (c *callCtx) Err() error {
	switch stopCause(c.cause.Load()) {
	case stopTime:
		return context.DeadlineExceeded
	case stopMemory:
		return ErrMemoryBudget
	case stopCanceled:
		return context.Canceled
	}
	return nil
}

// Value returns the caller's values.
func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

// stop stops the call for cause, unless it was already stopped.
func (c *callCtx) stop(cause stopCause) {
	if c.cause.CompareAndSwap(int32(notStopped), int32(cause)) {
		c.signal.Or(sigStop)
	}
}

// begin prepares c for a call and registers it with the watchdog.
func (c *callCtx) begin(parent context.Context, timeout time.Duration, memLimit int64, memStep uint64) {
	c.parent, c.start = parent, time.Now()
	c.deadline = c.start.Add(timeout)
	c.memLimit, c.memStep = memLimit, memStep
	c.signal.Store(0)
	c.cause.Store(int32(notStopped))
	c.measured, c.instructions = false, 0
	c.measuredMark.Store(0)
	if parent.Err() != nil {
		c.stop(stopCanceled)
	}
	watch.add(c)
}

// freshAfter is the duration from which a call reads the process's
// allocation itself when it ends, rather than the watchdog's last reading,
// which can be a tick old: a shorter call cannot allocate much.
const freshAfter = 50 * time.Microsecond

// end unregisters c and returns why the call was stopped and the process's
// cumulative allocation: as the watchdog last read it, or read now after
// a call longer than freshAfter.
func (c *callCtx) end() (stopCause, uint64) {
	allocs := watch.remove(c)
	c.parent = nil
	if time.Since(c.start) > freshAfter {
		allocs = heapAllocs()
	}
	return stopCause(c.cause.Load()), allocs
}

// heapAllocs reads the process's cumulative heap allocation.
func heapAllocs() uint64 {
	s := [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s[:])
	return s[0].Value.Uint64()
}

// watchdog enforces the budgets of the calls in progress.
type watchdog struct {
	once   sync.Once
	mu     sync.Mutex
	calls  []*callCtx
	allocs uint64 // cumulative heap allocation at the last tick
	parked bool
	wake   chan struct{}
}

// watch is the process's watchdog: the allocation it reads is the
// process's, so one is enough for every engine.
var watch = &watchdog{wake: make(chan struct{}, 1)}

func (w *watchdog) add(c *callCtx) {
	w.once.Do(w.start)
	w.mu.Lock()
	c.idx = len(w.calls)
	c.allocMark = w.allocs
	w.calls = append(w.calls, c)
	if w.parked {
		w.parked = false
		w.wake <- struct{}{}
	}
	w.mu.Unlock()
}

func (w *watchdog) remove(c *callCtx) uint64 {
	w.mu.Lock()
	last := len(w.calls) - 1
	w.calls[c.idx] = w.calls[last]
	w.calls[c.idx].idx = c.idx
	w.calls[last] = nil
	w.calls = w.calls[:last]
	allocs := w.allocs
	w.mu.Unlock()
	return allocs
}

func (w *watchdog) start() {
	w.allocs = heapAllocs()
	go w.run()
}

// run ticks while calls are in progress and parks after idleTicks ticks
// without one.
func (w *watchdog) run() {
	t := time.NewTicker(watchTick)
	idle := 0
	for range t.C {
		allocs := heapAllocs()
		now := time.Now()
		w.mu.Lock()
		w.allocs = allocs
		for _, c := range w.calls {
			switch {
			case c.parent.Err() != nil:
				c.stop(stopCanceled)
			case !now.Before(c.deadline):
				c.stop(stopTime)
			case allocs-max(c.allocMark, c.measuredMark.Load()) >= c.memStep:
				c.allocMark = allocs
				c.signal.Or(sigMeasure)
			}
		}
		if len(w.calls) > 0 {
			idle = 0
		} else if idle++; idle >= idleTicks {
			w.parked = true
			w.mu.Unlock()
			t.Stop()
			<-w.wake
			idle = 0
			allocs := heapAllocs()
			w.mu.Lock()
			w.allocs = allocs
			t.Reset(watchTick)
		}
		w.mu.Unlock()
	}
}

// Estimated sizes of Lua values, in bytes, for the memory budgets: close
// enough to the Go objects behind them to bound what a script holds.
const (
	stringOverhead   = 16
	tableOverhead    = 96
	entrySize        = 40
	functionOverhead = 80
	userDataSize     = 64
	// sharedString is the length from which a string is counted once
	// however many times it is referenced.
	sharedString = 1024
)

// meter sums the estimated size of Lua values, each counted once, and
// stops as soon as the sum passes limit.
type meter struct {
	limit int64
	size  int64
	seen  map[any]struct{}
	work  []lua.LValue
}

func (m *meter) over() bool { return m.size > m.limit }

func (m *meter) add(v lua.LValue) {
	switch v := v.(type) {
	case lua.LString:
		if len(v) >= sharedString {
			p := unsafe.StringData(string(v))
			if _, ok := m.seen[p]; ok {
				return
			}
			m.seen[p] = struct{}{}
		}
		m.size += int64(len(v)) + stringOverhead
	case *lua.LTable, *lua.LFunction, *lua.LUserData:
		if _, ok := m.seen[v]; ok {
			return
		}
		m.seen[v] = struct{}{}
		m.work = append(m.work, v)
	}
}

// run walks everything reachable from the values added so far.
func (m *meter) run() {
	entry := func(k, v lua.LValue) {
		m.size += entrySize
		if !m.over() {
			m.add(k)
			m.add(v)
		}
	}
	for len(m.work) > 0 && !m.over() {
		v := m.work[len(m.work)-1]
		m.work = m.work[:len(m.work)-1]
		switch v := v.(type) {
		case *lua.LTable:
			m.size += tableOverhead
			m.add(v.Metatable)
			v.ForEach(entry)
		case *lua.LFunction:
			m.size += functionOverhead + 8*int64(len(v.Upvalues))
			if v.Env != nil {
				m.add(v.Env)
			}
			for _, uv := range v.Upvalues {
				m.add(uv.Value())
			}
		case *lua.LUserData:
			m.size += userDataSize
			if v.Env != nil {
				m.add(v.Env)
			}
			m.add(v.Metatable)
		}
	}
}

// measure estimates what the state holds: its globals, the scripts'
// environments and upvalues, the loaded modules and, with stack, every
// register of the call in progress. It returns the size and whether it is
// within limit; past the limit it stops counting.
func (st *state) measure(stack bool, limit int64) (int64, bool) {
	L := st.L
	m := &meter{limit: limit, seen: map[any]struct{}{}}
	m.add(L.G.Global)
	m.add(L.G.Registry)
	for _, fn := range st.defaults {
		if fn != nil {
			m.add(fn)
		}
	}
	for _, set := range st.tenants {
		for _, fn := range set {
			if fn != nil {
				m.add(fn)
			}
		}
	}
	m.add(st.msg)
	m.add(st.attempt)
	m.add(st.rcpt)
	m.add(st.report)
	if stack {
		for level := 0; !m.over(); level++ {
			dbg, ok := L.GetStack(level)
			if !ok {
				break
			}
			for n := 1; ; n++ {
				name, v := L.GetLocal(dbg, n)
				if name == "" {
					break
				}
				m.add(v)
			}
			if fn, err := L.GetInfo("f", dbg, lua.LNil); err == nil {
				m.add(fn)
			}
		}
	}
	m.run()
	return m.size, !m.over()
}

// unlimited is the limit of a measurement that must count everything.
const unlimited = math.MaxInt64
