// Package inspect finds and explains queued recipients for operators:
// `corriere queue list` and `queue show`, and their admin API endpoints.
//
// It reads the spool, never the queue's own structures, so a listing
// neither locks nor slows delivery: a tenant's messages are read through
// the spool's tenant index, and other selectors filter what the spool
// returns. What only the running queue knows (a transaction in flight, a
// suspended lane) comes from a Live source when a node runs.
//
// A recipient's state is one of ready (due now), deferred (waiting for a
// retry after a failed attempt), scheduled (due later without an attempt
// yet), inflight and suspended (from Live). Its provider is the one that
// operates the MX host of its last attempt, as the policy names it; a
// recipient never attempted has none yet.
package inspect
