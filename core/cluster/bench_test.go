package cluster

import (
	"log/slog"
	"testing"
	"time"

	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/shape"
	"corriere/core/testlib"
)

// BenchmarkReserve measures what one message's rate check costs: the
// node's own limiters alone (no --redis), with the cluster-wide check
// through a real redis-server (batched, as the node runs it, and one round
// trip per message), and in fallback. The rates are high enough never to
// make a message wait.
func BenchmarkReserve(b *testing.B) {
	lim := policy.Limits{PerSecond: 1e9, Burst: 1e9}
	req := queue.SharedRate{Provider: "example", Source: "192.0.2.1", Lane: lim, Prov: lim, LaneFactor: 1, ProvFactor: 1}
	local := func(b *testing.B, shared func() time.Duration) {
		lane, prov := shape.NewLimiter(lim), shape.NewLimiter(lim)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			now := time.Now()
			if lane.Reserve(now, false) != 0 || prov.Reserve(now, false) != 0 {
				b.Fatal("the local limiters made a message wait")
			}
			if shared != nil && shared() != 0 {
				b.Fatal("the shared limit made a message wait")
			}
		}
	}
	b.Run("local", func(b *testing.B) { local(b, nil) })
	quiet := slog.New(slog.DiscardHandler)
	srv := testlib.Redis(b)
	for _, bc := range []struct {
		name  string
		batch time.Duration
	}{{"redis-batched", 0}, {"redis-unbatched", time.Nanosecond}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := Open(Options{Addr: srv.Addr, NodeID: "bench", BatchSpan: bc.batch, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			local(b, func() time.Duration { return c.Reserve(req) })
			b.ReportMetric(float64(c.rateCalls())/float64(b.N), "roundtrips/op")
		})
	}
	b.Run("fallback", func(b *testing.B) {
		c, err := Open(Options{Addr: "127.0.0.1:1", NodeID: "bench", Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		local(b, func() time.Duration { return c.Reserve(req) })
	})
}
