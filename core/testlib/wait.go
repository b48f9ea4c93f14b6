package testlib

import (
	"testing"
	"time"
)

// DefaultTimeout is how long WaitFor waits: long enough for a loaded
// 2-core CI machine, short enough that a hung test fails well inside the
// suite's time budget.
const DefaultTimeout = 10 * time.Second

// pollEvery is how often WaitFor checks its condition.
const pollEvery = 5 * time.Millisecond

// WaitFor polls cond until it holds and returns how long that took. It
// fails the test, naming what, when cond does not hold within
// DefaultTimeout.
func WaitFor(tb testing.TB, what string, cond func() bool) time.Duration {
	tb.Helper()
	return WaitForWithin(tb, DefaultTimeout, what, cond)
}

// WaitForWithin is WaitFor with its own timeout.
func WaitForWithin(tb testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
	return time.Since(start)
}
