// Package node assembles a running Corriere: spool, DNS, Lua policy,
// queue, delivery, ingest, events and plugins, from one Config. cmd/corriere
// serve and the demo start a node; tests start one in-process.
//
// Start fills the configuration's defaults and validates it before it
// opens anything. Then, in steps, it opens the spool (recording the
// effective configuration in the spool's OPTIONS file and in the log),
// starts the plugins, loads the policy (refusing to start on a broken
// one), recovers the spool and starts delivery, and listens. A step that
// fails leaves nothing open: what the earlier steps opened is closed, last
// first.
//
// Shutdown reverses it: stop accepting, let in-flight SMTP transactions end,
// stop the queue (in-flight deliveries finish or abort at the deadline),
// flush the event log and close the spool.
package node
