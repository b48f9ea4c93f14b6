// Package queue schedules and performs deliveries: it keeps track of every
// pending recipient (rebuilt from the spool at start), decides when each is
// tried, groups recipients into SMTP transactions, and applies the policy's
// verdict on every reply.
//
// Structure. Entries not yet due wait in a scheduled queue ordered by due
// time, as references only (due time, message ID, index): the entry and its
// message's metadata are read back from the spool when it comes due, while
// fewer than Options.MaxReady recipients are on their way to delivery, so
// the queue's memory does not grow with its length. A lane keeps at most
// Options.MaxLaneBacklog recipients; the router sends the others back to the
// scheduler, due when the lane should have sent those ahead of them. When an entry is due, a router resolves its domain's MX hosts, asks
// the policy which provider they belong to (Provider) and which egress to use
// (Route), and puts the entry into a lane: the ready queue of one (source IP,
// provider) pair, split by class. Recipients of one message to one domain
// that leave from the same source travel together, as one transaction with
// several RCPT TO (up to the lane's recipients-per-transaction limit).
//
// Lanes. A lane runs up to MaxConnections runners, each holding one
// connection to the provider's MX, reused for up to MaxMessagesPerConnection
// transactions and kept open for a short linger when the lane runs dry.
// Runners always take critical mail first, then transactional and personal,
// then newsletters; when every connection slot is busy, one extra slot is
// reserved for critical mail so it never waits behind a newsletter backlog.
// Rates (per second/minute/hour/day) are enforced per lane and per provider;
// a share of the hourly and daily volumes (Limits.CriticalReserve) is left
// to critical mail, so newsletters never use up what it needs. One slow or
// suspended lane never delays another.
//
// Reloads. PolicyChanged applies new limits to the running lanes: limits
// that did not change keep their limiter state, changed rates keep the
// allowance already used, and when a connection limit is lowered exactly
// the excess runners leave after their transaction in flight (those waiting
// for work or for the rate are roused at once); the reserved critical
// runner may still exceed the limit by one.
//
// Outcomes. Each reply (connect-time, RCPT, after DATA, or a network failure
// turned into a synthetic 4xx) goes through policy.OnResponse: deliver
// removes the recipient; retry reschedules it on the retry schedule (or the
// verdict's delay), or expires it past the maximum age; bounce removes it and
// sends a DSN to the envelope sender (or the author of a re-enveloped
// message), honouring NOTIFY and never to the null sender; suspend also
// pauses the lane or the whole provider, and a rate factor slows it, both
// lifted gradually. Every change is an event on the bus and is written to the
// spool before the in-memory state moves on.
//
// Time. Every wait of the queue (due times, retries, lingering runners,
// rate waits, suspensions and the recovery of slowed-down rates) runs on
// Options.Clock, so a test can move through hours with a fake clock;
// deadlines of network and policy calls stay on the wall clock. A lane and
// a provider each have a throttle: its suspension, and a slow-down that
// recovers by Limits.RecoveryStep every Limits.RecoveryInterval without a
// new complaint.
//
// Durability. The queue never drops an entry it has not removed from the
// spool in the same step; if a policy call fails, the entry is retried later.
package queue
