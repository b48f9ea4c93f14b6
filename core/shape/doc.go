// Package shape enforces sending limits: the per-second and per-minute rates
// providers expect to be smooth, and the per-hour and per-day volumes they
// cap, plus a multiplicative slow-down that the delivery engine applies after
// throttling replies and lifts gradually.
//
// Per-second and per-minute limits are GCRA (the generic cell rate
// algorithm, equivalent to a token bucket): with Burst b, at most b messages
// go back to back, then they are spaced by window/limit. Per-hour and per-day
// limits are sliding-window counters: a burst may use the whole volume at
// once, but no window of that length ever carries more than the limit (the
// previous window's count is weighted by its overlap, as in common
// sliding-window rate limiters).
//
// Only critical mail may use the Limits.CriticalReserve share of the
// per-hour and per-day volumes. SetLimits keeps what has been used, so a
// policy reload never grants a fresh burst.
//
// A Limiter is safe for concurrent use and never sleeps: Reserve says when
// the next message may go, and the caller waits as it sees fit.
package shape
