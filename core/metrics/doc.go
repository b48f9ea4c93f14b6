// Package metrics exposes a node's counters and gauges to Prometheus, and
// its liveness and readiness, over HTTP.
//
// Metrics is an event.Sink: the counters of mail (received, delivered,
// deferred, bounced, expired, complained) and of suspensions are fed by the
// event bus, one event at a time, at the cost of a map lookup and an atomic
// add. Hook and spool-commit latencies arrive through the observers of
// luart.Engine and spool.Spool, inbound SMTP sessions through a wrapped
// listener. Gauges of the queue (depth by provider and class, recipients
// in flight and scheduled, suspended lanes, outbound connections) are read
// from queue.Depth when Prometheus scrapes, and so are the events the
// event log dropped: an idle endpoint costs nothing.
//
// Cardinality is bounded whatever the traffic: no label carries a
// recipient, a message, a campaign or an IP. Tenants and providers come
// from the policy, which an operator can grow without limit, so each has a
// cap (Options.MaxTenants, Options.MaxProviders): the first values seen
// get their own series, later ones share the value "other". Classes are
// the four of message.Classes, with "other" for anything else; an empty
// tenant, class or provider (a relayed message without tenant, a received
// message not routed yet) is "none". Hooks are luart's six. The README
// lists every metric with its labels.
//
// Handlers serves GET /metrics, /healthz (the process answers) and /readyz
// (the node is ready: spool recovered, policy loaded, not shutting down),
// none of which needs the admin token; Listen serves them on an address of
// their own.
package metrics
