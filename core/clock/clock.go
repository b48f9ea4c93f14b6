package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has passed.
	NewTimer(d time.Duration) Timer
	// AfterFunc returns a timer that calls f once d has passed. The timer's
	// channel is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single event in the future, as time.Timer with its channel
// behind a method. Stop and Reset follow time.Timer since Go 1.23: after
// either returns, no value from before the call is received.
type Timer interface {
	// C returns the channel the time is sent on (nil for AfterFunc timers).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped
	// the timer (false when it had already fired or been stopped).
	Stop() bool
	// Reset makes the timer fire after d instead; it reports whether the
	// timer was active.
	Reset(d time.Duration) bool
}

// Real is the wall clock, backed by package time.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// AfterFunc returns a timer made by time.AfterFunc: f runs in its own
// goroutine.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

var _ Clock = Real{}
