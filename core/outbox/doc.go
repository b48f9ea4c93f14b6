// Package outbox delivers events to HTTP endpoints (tenants' webhooks, the
// operator's event sink) at least once, through a persistent outbox.
//
// Durability: Add writes the event to a Pebble database of the outbox's
// own and returns once it is synced, sharing the fsync with concurrent
// Adds (Pebble's group commit). An event leaves the outbox only when its
// endpoint has answered 2xx to a request carrying it, or when it is moved
// to the dead-letter list; so a restart, or a kill -9 while a request is
// in flight, loses nothing, and may send again what the endpoint had
// already received. Every event carries an id, its idempotency key, that
// stays the same on every retry, so receivers can drop duplicates.
//
// Delivery: each endpoint (a URL of a tenant) has a worker of its own,
// started on the endpoint's first event or, after a restart, for every
// endpoint with events left. A worker posts up to Options.BatchSize events
// at a time as {"events": [...]}, signed with HMAC-SHA256 over
// "<timestamp>.<body>" under the endpoint's secret (see Sign), each request
// bounded by Options.Timeout. After a failure it waits with exponential
// backoff (Options.MinBackoff doubling up to Options.MaxBackoff); events
// older than Options.MaxAge that still fail go to the dead-letter list
// (so do those of an endpoint no longer configured, which fails until then),
// and so do events beyond Options.MaxPending of one endpoint, so a dead
// endpoint holds a bounded part of the disk. Workers share nothing but the
// database: a slow or dead endpoint delays only its own events, and Add
// never waits for an endpoint.
//
// Metrics: the outbox is a prometheus.Collector of events pending, the
// age of the oldest pending event (lag), events delivered, failed requests
// and dead letters, per tenant.
package outbox
