// Package webhook pushes Corriere's events to HTTP endpoints through a
// persistent outbox (core/outbox): at least once, signed, batched, each
// endpoint with a worker of its own. It registers two plugins at the
// event-sink extension point:
//
//   - "webhook": the webhooks of each tenant, from the webhooks field of
//     rules/tenants/<tenant>.lua: { { url =, events = {...}, secret = } }.
//     A tenant's delivered, deferred, bounced (with its category),
//     expired, complained and suppressed events (opened and clicked once
//     tracking emits them) go to every webhook of the tenant that asks
//     for the type (events; all of them when it is left out). Its outbox
//     is SPOOL/outbox/webhook.
//   - "eventsink": the operator's sink, every event of every tenant to one
//     URL, from rules/eventsink.lua: return { url =, secret =, events = {...} }
//     (events: all types when left out). Without the file it sends
//     nothing. Its outbox is SPOOL/outbox/eventsink.
//
// Emit writes the event to the outbox, synced, and returns: a delivery
// worker, not the producer, waits for the endpoint. Each request is
// POST {"events": [{"id": ..., "type": ..., ...}]} with the headers
// X-Corriere-Timestamp (Unix seconds) and X-Corriere-Signature
// ("v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>" under the secret);
// the id of an event is its idempotency key, the same on every retry.
// Configuration changes (a new secret, a removed webhook) apply with the
// policy, at the next request.
package webhook
