// Package spool is Corriere's durable message store, on Pebble.
//
// A message is stored once: its metadata (envelope, tenant, class, DSN
// parameters) under one key and its content under another, plus one delivery
// entry per recipient holding that recipient's attempts, next due time, last
// reply and DSN parameters.
//
// A content larger than Options.FileThreshold (512 KiB) is a file of its
// own in the content subdirectory, written from the message without a copy
// and synced (with its directory) before the batch that names it commits;
// it is deleted once the batch removing the message's last entry commits,
// and Scan deletes the files no message owns (a crash in between).
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
// Disk space: Pebble treats a failed WAL or MANIFEST write as fatal, so the
// spool never lets its filesystem fill up. It reads the free space (statfs)
// every second and keeps three levels. Put refuses a message, with
// ErrNoSpace and nothing written, when it would leave less than
// Options.MinFree; Room gives ingest the same answer at MAIL FROM.
// Settlements (batches, Update, Remove, Keyspace writes) go on under that
// reserve, so delivering continues and frees space; they are refused only
// under a floor of an eighth of the reserve, and a refused batch may be
// committed again. A ballast file of a quarter of the reserve is kept in the
// directory while space allows: when something else fills the disk below
// the floor, the spool deletes it, which gives settlements and Pebble's
// flushes room, and it makes it again once the reserve and the ballast fit.
// Pebble's memtable is a quarter of the reserve, so a flush fits in it.
//
// Other subsystems persist small records (warm-up counters, suppression
// lists) in their own Keyspace of the same database.
package spool
