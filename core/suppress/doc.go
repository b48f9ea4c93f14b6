// Package suppress keeps the per-tenant suppression list: the addresses a
// tenant must not send to any more, because they bounced hard (the mailbox
// or the domain does not exist) or because their owner complained through
// a feedback loop.
//
// The list lives in the spool's Pebble database (keyspace "suppression"),
// one record per (tenant, address); every write is synced to disk before it
// returns, so an address suppressed is suppressed across a crash. Addresses
// are stored lower-cased, with the domain in its ASCII (A-label) form,
// exactly as ingest hands recipients over. The tenant "" is the tenant of
// mail relayed without AUTH from relay networks. A List is safe for
// concurrent use.
//
// Three parts use the list:
//
//   - Checker implements extension.RecipientCheck: a suppressed recipient is
//     refused at RCPT with 550 5.1.1 and a sentence naming the reason and
//     the date, or, for tenants whose SuppressionMode is "drop", accepted
//     and not delivered (extension.Drop). Both emit an event.Suppressed.
//   - Recorder is an event.Sink that adds addresses on hard bounces and
//     complaints, off the emitting goroutine.
//   - AdminHandlers serve list, add, remove, import and export over the
//     admin API, for `corriere suppression`.
//
// CSV files (import and export) have the header
// tenant,address,category,reason,source,added, with added in RFC 3339;
// import validates every row before writing any, reports errors with the
// file's line numbers, and is idempotent.
package suppress
