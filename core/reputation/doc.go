// Package reputation keeps the delivery reputation deliverability engineers
// steer by: what each source IP, tenant and class sent to each provider and
// how it fared (delivered, deferred, bounced by category, complained,
// opened, clicked), over the last hour, day and week, and the suspensions
// in force with their reasons.
//
// A Tracker is an event.Sink: it is fed from the node's event stream and
// never asked by the queue. Counts live in buckets of five minutes (for
// the hour) and of one hour (for the day and the week), in memory and in
// the spool's "reputation" keyspace, so that a restart keeps them. Buckets
// changed since the last write are written every Options.FlushInterval
// without a sync and at Close with one: a crash forgets at most the last
// interval's counts, never invents any. Open restores the buckets of the
// last seven days and deletes older ones.
//
// Suspensions are followed from the suspended and resumed events and kept
// in memory only, as the queue keeps them.
//
// What counts as sent is an attempt that reached a provider: a delivery, a
// deferral after an attempt (warm-up postponements are not attempts) or a
// bounce during delivery. Expired recipients and asynchronous bounces are
// counted as bounces without counting as sent again. Opens and clicks that
// the tracking plugin flags as made by machines (image proxies, security
// scanners) are counted apart from the human ones.
package reputation
