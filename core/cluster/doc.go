// Package cluster lets several Corriere nodes share one policy through
// Redis: cluster-wide rate limits per provider and per (provider, source
// IP), connection leases against each provider's connection limit, warm-up
// daily counters, the suspensions and slow-downs on_response decides, and
// the per-tenant suppression list. Each node keeps its own spool: Redis is
// never in the durability path of a message, and a node that cannot reach
// it goes on accepting and delivering.
//
// Rates. Each check is one Lua script, atomic in Redis, over the GCRA
// state of the per-second and per-minute rates and the sliding-window
// counts of the per-hour and per-day volumes of both the lane and the
// provider; the script reads Redis's clock, so the nodes' clocks need not
// agree. A node reserves a small batch of messages at a time (about a
// tenth of a second's worth, at most 16) and spends it locally, so it does
// not make a round trip per message; a batch not spent within twice that
// time is dropped rather than sent late in a burst.
//
// Connections. Each provider connection holds a lease in a sorted set,
// scored by its expiry; the node renews its leases at every heartbeat, so
// the leases of a node that died expire within Options.LeaseTTL.
//
// Nodes. Every node registers itself at every heartbeat (Options.Heartbeat)
// with its policy generation and file hash; a node not seen for
// Options.NodeTTL is no longer live.
//
// Fallback. When a Redis call fails, the node stops asking Redis, keeps to
// its share of each limit (limit ÷ the live nodes it last saw), logs it
// once, emits a Cluster event (category fallback) and sets the
// corriere_cluster_redis_up gauge to 0. The heartbeat keeps trying; when
// Redis answers again the node re-registers its connection leases, adds
// the warm-up counts and the suppressions it recorded meanwhile, takes the
// suppressions added elsewhere, then goes back to the shared counts
// (category reconciled). Rate state lost with a Redis restart starts
// afresh: the local limiters still hold each node to the full limit.
//
// Suppression and throttles travel by pub/sub: a suppression added on one
// node is written to a Redis hash and published, and every other node adds
// it to its own list, where the RCPT check finds it without a Redis call.
// Removals travel the same way but are not replayed after an outage.
package cluster
