// Package spool is Corriere's durable message store, on Pebble.
//
// A message is stored once: its metadata (envelope, tenant, class, DSN
// parameters) under one key and its content under another, plus one delivery
// entry per recipient holding that recipient's attempts, next due time, last
// reply and DSN parameters.
//
// Durability: Put returns only after the message and all its entries are
// synced to disk, so ingest may answer 250 afterwards. Concurrent Puts share
// fsyncs: Pebble's commit pipeline groups every batch waiting for the WAL
// into one sync (group commit), so durability does not serialise ingest.
// Updates of delivery entries after a deferral are written without waiting
// for a sync: losing one in a crash only means an earlier retry. A delivery
// entry is removed when its recipient is delivered, bounced or expired; the
// message goes in the same batch as its last entry. Removals are not synced
// either, so after a crash a recipient may be delivered twice (at-least-once)
// but never lost.
//
// Recovery: Scan walks every stored message with its remaining entries, so
// the scheduler can rebuild its queues at start. A message whose entries are
// all gone (a crash between the removals) is deleted by Scan.
//
// Other subsystems persist small records (warm-up counters, suppression
// lists) in their own Keyspace of the same database.
package spool
