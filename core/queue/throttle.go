package queue

import (
	"sync"
	"time"

	"corriere/core/policy"
	"corriere/core/shape"
)

// throttle holds a lane or a provider back after a receiver complained: a
// suspension (no new transaction before a time) and a slow-down (a factor
// on its limiter's rates) that recovers step by step once no new
// slow-down has come for a while. Lanes and providers each have one.
type throttle struct {
	limiter *shape.Limiter

	mu       sync.Mutex
	until    time.Time // suspended before this; zero when not suspended
	slowedAt time.Time // last slow-down or recovery step
	// interval and step are the recovery settings of the last slow-down
	// (policy.Limits.Recovery).
	interval time.Duration
	step     float64
}

// newThrottle returns a throttle, neither suspended nor slowed, acting on
// limiter's rates.
func newThrottle(limiter *shape.Limiter) *throttle {
	t := &throttle{limiter: limiter}
	t.interval, t.step = policy.Limits{}.Recovery()
	return t
}

// suspend extends the suspension to until. It reports whether it did:
// false when the throttle was already suspended at least as long.
func (t *throttle) suspend(until time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !until.After(t.until) {
		return false
	}
	t.until = until
	return true
}

// suspended reports whether the throttle holds transactions back at now.
func (t *throttle) suspended(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Before(t.until)
}

// suspendedUntil returns the end of the suspension, zero when there is
// none (an expired one stays until tick ends it).
func (t *throttle) suspendedUntil() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.until
}

// slowDown multiplies the rates by factor at now; the rates then recover
// as lim's recovery settings say.
func (t *throttle) slowDown(factor float64, now time.Time, lim policy.Limits) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.limiter.SetFactor(t.limiter.Factor() * factor)
	t.slowedAt = now
	t.interval, t.step = lim.Recovery()
}

// tick ends a suspension that is over at now, reporting it, and lets a
// slowed rate recover one step when the recovery interval has passed
// since the last slow-down or step.
func (t *throttle) tick(now time.Time) (resumed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	resumed = !t.until.IsZero() && !now.Before(t.until)
	if resumed {
		t.until = time.Time{}
	}
	if now.Sub(t.slowedAt) >= t.interval {
		t.slowedAt = now
		if f := t.limiter.Factor(); f < 1 {
			t.limiter.SetFactor(f * t.step)
		}
	}
	return resumed
}

// factor returns the slow-down multiplier of the rates (1 is full speed).
func (t *throttle) factor() float64 { return t.limiter.Factor() }

// resume ends a suspension early: the next tick at or after now reports it
// resumed. It reports whether there was a suspension to end.
func (t *throttle) resume(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !now.Before(t.until) {
		return false
	}
	t.until = now
	return true
}
