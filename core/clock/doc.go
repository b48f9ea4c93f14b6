// Package clock is the time source of the parts of Corriere that wait:
// what time it is, and timers that fire after a while. Real is the wall
// clock; Fake is a clock for tests that moves only when the test says so.
//
// A component that takes a Clock reads the time and arms all its timers
// through it, so that a test can run an hour of retries, suspensions and
// recoveries in a few milliseconds, deterministically: Fake.Advance fires
// every timer that comes due, in order of due time, before it returns.
// Deadlines of network and script calls stay on the wall clock: a fake
// hour must not let a real SMTP dialogue time out.
package clock
