package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"corriere/core/event"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/spool"
	"corriere/core/suppress"
	"corriere/core/testlib"
	"corriere/core/warmup"
)

// recorder is a Target and an event sink that remembers what it was told.
type recorder struct {
	mu        sync.Mutex
	share     float64
	throttles []queue.Throttle
	events    []event.Event
}

func (r *recorder) SetShare(s float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.share = s
}

func (r *recorder) ApplyThrottle(t queue.Throttle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttles = append(r.throttles, t)
}

func (r *recorder) Emit(e *event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, *e)
}

func (r *recorder) Share() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.share
}

// count returns how many events of category cat were emitted.
func (r *recorder) count(cat event.Category) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Type == event.Cluster && e.Category == cat {
			n++
		}
	}
	return n
}

func (r *recorder) throttled() []queue.Throttle {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]queue.Throttle(nil), r.throttles...)
}

// testOptions returns fast options for node id on the Redis at addr.
func testOptions(addr, id string, rec *recorder) Options {
	return Options{
		Addr: addr, NodeID: id, Heartbeat: 50 * time.Millisecond, NodeTTL: time.Second,
		LeaseTTL: 300 * time.Millisecond, Events: rec,
	}
}

// join opens a cluster member attached to a fresh recorder.
func join(t *testing.T, addr, id string) (*Cluster, *recorder) {
	t.Helper()
	rec := &recorder{}
	c, err := Open(testOptions(addr, id, rec))
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(rec)
	t.Cleanup(func() { c.Close() })
	return c, rec
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"valid", Options{Addr: "127.0.0.1:6379", NodeID: "a"}, true},
		{"no address", Options{NodeID: "a"}, false},
		{"no node id", Options{Addr: "127.0.0.1:6379"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.EnsureDefaults()
			if err := tc.opts.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestRateSharedAcrossNodes checks that two nodes together get no more of
// a burst than one limit allows, and that batching saves round trips.
func TestRateSharedAcrossNodes(t *testing.T) {
	srv := testlib.Redis(t)
	a, _ := join(t, srv.Addr, "a")
	b, _ := join(t, srv.Addr, "b")
	// 60 a minute with a burst of 20: about 20 at once, then one a second.
	lim := policy.Limits{PerMinute: 60, Burst: 20}
	req := queue.SharedRate{Provider: "example", Source: "192.0.2.1", Lane: lim, LaneFactor: 1, ProvFactor: 1}
	granted := 0
	start := time.Now()
	for range 100 {
		for _, c := range []*Cluster{a, b} {
			if c.Reserve(req) == 0 {
				granted++
			}
		}
	}
	elapsed := time.Since(start)
	// The burst, plus what the rate refilled meanwhile.
	if most := 20 + int(elapsed.Seconds()) + 1; granted < 20 || granted > most {
		t.Fatalf("granted %d messages in %v, want 20..%d", granted, elapsed, most)
	}
	if !a.Up() || !b.Up() {
		t.Fatal("a node fell back")
	}
}

// TestRateBatching checks that a node makes fewer round trips than it
// sends messages when the rate is high.
func TestRateBatching(t *testing.T) {
	srv := testlib.Redis(t)
	a, _ := join(t, srv.Addr, "a")
	req := queue.SharedRate{Provider: "example", Lane: policy.Limits{PerSecond: 1000, Burst: 100}, LaneFactor: 1, ProvFactor: 1}
	sent := 0
	for range 100 {
		if a.Reserve(req) == 0 {
			sent++
		}
	}
	calls := a.rateCalls()
	if sent != 100 || calls > 15 {
		t.Fatalf("sent %d of 100 in %d round trips, want 100 in at most 15 (batches of 16)", sent, calls)
	}
}

// TestRateWaitsWhenSpent checks that a spent rate says how long to wait.
func TestRateWaitsWhenSpent(t *testing.T) {
	srv := testlib.Redis(t)
	a, _ := join(t, srv.Addr, "a")
	b, _ := join(t, srv.Addr, "b")
	req := queue.SharedRate{Provider: "example", Prov: policy.Limits{PerMinute: 1}, LaneFactor: 1, ProvFactor: 1}
	if w := a.Reserve(req); w != 0 {
		t.Fatalf("first message waits %v", w)
	}
	w := b.Reserve(req)
	if w < 50*time.Second || w > time.Minute {
		t.Fatalf("second message on the other node waits %v, want about a minute", w)
	}
}

// TestConnectionLeases checks the cluster-wide connection cap and that
// the leases of a node that died expire.
func TestConnectionLeases(t *testing.T) {
	srv := testlib.Redis(t)
	a, _ := join(t, srv.Addr, "a")
	b, _ := join(t, srv.Addr, "b")
	for i, c := range []*Cluster{a, a, b} {
		if !c.AcquireConn("example", 3) {
			t.Fatalf("lease %d refused under the limit", i+1)
		}
	}
	if b.AcquireConn("example", 3) {
		t.Fatal("a fourth lease granted over a limit of 3")
	}
	b.ReleaseConn("example")
	if !b.AcquireConn("example", 3) {
		t.Fatal("a released lease was not given back")
	}
	// a dies without giving its leases back: they expire (LeaseTTL).
	a.die()
	testlib.WaitFor(t, "the dead node's leases to expire", func() bool { return b.AcquireConn("example", 3) })
	testlib.WaitFor(t, "the second lease", func() bool { return b.AcquireConn("example", 3) })
	if b.AcquireConn("example", 3) {
		t.Fatal("a fourth lease granted over a limit of 3 after the expiry")
	}
}

// rateCalls returns how many round trips the rates took.
func (c *Cluster) rateCalls() int {
	var m dto.Metric
	if err := c.metrics.calls.Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// die stops the heartbeat as a crash would: the leases are not given back.
func (c *Cluster) die() {
	close(c.stop)
	c.done.Wait()
	c.stop = make(chan struct{})
}

// TestFallbackAndReconcile kills Redis: the nodes keep to their share,
// once, and go back to the shared counts with their leases when it
// returns.
func TestFallbackAndReconcile(t *testing.T) {
	srv := testlib.Redis(t)
	a, recA := join(t, srv.Addr, "a")
	join(t, srv.Addr, "b")
	testlib.WaitFor(t, "two live nodes", func() bool { return a.LiveNodes() == 2 })
	if !a.AcquireConn("example", 1) {
		t.Fatal("lease refused")
	}
	srv.Kill()
	req := queue.SharedRate{Provider: "example", Prov: policy.Limits{PerMinute: 1}, LaneFactor: 1, ProvFactor: 1}
	for range 5 {
		if w := a.Reserve(req); w != 0 {
			t.Fatalf("in fallback a message waits %v for Redis", w)
		}
	}
	testlib.WaitFor(t, "fallback", func() bool { return !a.Up() })
	if got := recA.Share(); got != 0.5 {
		t.Fatalf("share in fallback = %v, want 0.5 (two live nodes)", got)
	}
	if a.AcquireConn("example", 1) {
		t.Fatal("a connection opened at once in fallback, before the other nodes could close theirs")
	}
	testlib.WaitFor(t, "a connection in fallback after two heartbeats", func() bool { return a.AcquireConn("example", 1) })
	srv.Start()
	testlib.WaitFor(t, "reconciliation", func() bool { return a.Up() })
	testlib.WaitFor(t, "the whole limit after two heartbeats", func() bool { return recA.Share() == 1 })
	if n := recA.count(event.ClusterFallback); n != 1 {
		t.Fatalf("%d fallback events, want 1", n)
	}
	if n := recA.count(event.ClusterReconciled); n != 1 {
		t.Fatalf("%d reconciled events, want 1", n)
	}
	// Both leases taken are registered again: the limit is reached.
	b2, _ := join(t, srv.Addr, "c")
	testlib.WaitFor(t, "the leases to be registered again", func() bool { return leases(t, b2, "example") == 2 })
	if b2.AcquireConn("example", 2) {
		t.Fatal("a lease granted while a node holds the limit")
	}
}

// leases counts the live leases of provider.
func leases(t *testing.T, c *Cluster, provider string) int64 {
	t.Helper()
	n, err := c.rdb.ZCard(context.Background(), c.key("conns", provider)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStartWithoutRedis checks that a node starts in fallback when Redis
// is down and joins when it comes.
func TestStartWithoutRedis(t *testing.T) {
	srv := testlib.Redis(t)
	srv.Kill()
	a, rec := join(t, srv.Addr, "a")
	if a.Up() {
		t.Fatal("up without Redis")
	}
	if n := rec.count(event.ClusterFallback); n != 1 {
		t.Fatalf("%d fallback events, want 1", n)
	}
	srv.Start()
	testlib.WaitFor(t, "the node to join", a.Up)
}

// TestThrottleShared checks that a throttle decided on one node reaches
// the others, and not itself.
func TestThrottleShared(t *testing.T) {
	srv := testlib.Redis(t)
	a, recA := join(t, srv.Addr, "a")
	_, recB := join(t, srv.Addr, "b")
	_, recC := join(t, srv.Addr, "c")
	want := queue.Throttle{Provider: "example", Factor: 0.5, Until: time.Now().Add(time.Minute).UTC().Truncate(time.Second), Reason: "421 4.7.28 slow down"}
	// The subscriptions start in the background; publish until both hear.
	testlib.WaitFor(t, "the throttle on the other nodes", func() bool {
		a.Throttled(want)
		return len(recB.throttled()) > 0 && len(recC.throttled()) > 0
	})
	got := recB.throttled()[0]
	if got.Provider != want.Provider || got.Factor != want.Factor || !got.Until.Equal(want.Until) || got.Reason != want.Reason {
		t.Fatalf("node b got %+v, want %+v", got, want)
	}
	if n := len(recA.throttled()); n != 0 {
		t.Fatalf("the deciding node applied its own throttle %d times again", n)
	}
	// A node that joins later starts suspended, without the slow-down
	// (each node's rate recovers on its own schedule).
	_, recD := join(t, srv.Addr, "d")
	late := recD.throttled()
	if len(late) != 1 || late[0].Provider != "example" || !late[0].Until.Equal(want.Until) || late[0].Factor != 0 {
		t.Fatalf("the late node got %+v, want the suspension of example until %v", late, want.Until)
	}
}

// openSpool opens a spool in a new directory.
func openSpool(t *testing.T) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// TestSuppressionShared checks that a suppression added on one node is on
// every node's list within a second, and that entries added while Redis
// was down meet after it returns.
func TestSuppressionShared(t *testing.T) {
	srv := testlib.Redis(t)
	// The lists first: the nodes stop before them.
	la, lb := suppress.New(openSpool(t), nil), suppress.New(openSpool(t), nil)
	a, _ := join(t, srv.Addr, "a")
	b, _ := join(t, srv.Addr, "b")
	if _, err := la.Add(suppress.Entry{Tenant: "acme", Address: "old@example.com", Source: suppress.SourceManual}); err != nil {
		t.Fatal(err)
	}
	a.AttachSuppression(la)
	b.AttachSuppression(lb)
	suppressed := func(l *suppress.List, addr string) func() bool {
		return func() bool {
			_, ok, err := l.Lookup("acme", addr)
			return err == nil && ok
		}
	}
	testlib.WaitForWithin(t, time.Second, "the entry a had before joining, on b", suppressed(lb, "old@example.com"))

	// b subscribes in the background: wait until a change reaches it.
	if _, err := la.Add(suppress.Entry{Tenant: "acme", Address: "probe@example.com"}); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "b to subscribe", suppressed(lb, "probe@example.com"))
	if _, err := la.Add(suppress.Entry{Tenant: "acme", Address: "new@example.com", Source: suppress.SourceManual}); err != nil {
		t.Fatal(err)
	}
	testlib.WaitForWithin(t, time.Second, "the new entry on b", suppressed(lb, "new@example.com"))
	if _, err := lb.Remove("acme", "new@example.com"); err != nil {
		t.Fatal(err)
	}
	testlib.WaitForWithin(t, time.Second, "the removal on a", func() bool { return !suppressed(la, "new@example.com")() })

	srv.Kill()
	if _, err := lb.Add(suppress.Entry{Tenant: "acme", Address: "offline@example.com"}); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "fallback", func() bool { return !b.Up() })
	srv.Start()
	testlib.WaitFor(t, "the entry added in the outage, on a", suppressed(la, "offline@example.com"))
}

// TestWarmupShared checks that two nodes share one day's warm-up cap, and
// keep to their share of what is left while Redis is down.
func TestWarmupShared(t *testing.T) {
	srv := testlib.Redis(t)
	tracker := func() *warmup.Tracker {
		tr, err := warmup.Open(openSpool(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	// The trackers first: the nodes stop before them.
	ta, tb := tracker(), tracker()
	a, _ := join(t, srv.Addr, "a")
	b, _ := join(t, srv.Addr, "b")
	testlib.WaitFor(t, "two live nodes", func() bool { return a.LiveNodes() == 2 })
	wa, wb := a.Warmup(ta), b.Warmup(tb)
	if n, err := wa.Reserve("192.0.2.1", "example", 100, 60); n != 60 || err != nil {
		t.Fatalf("a took %d, %v; want 60", n, err)
	}
	if n, err := wb.Reserve("192.0.2.1", "example", 100, 60); n != 40 || err != nil {
		t.Fatalf("b took %d, %v; want the 40 left", n, err)
	}
	if got := wb.Sent("192.0.2.1", "example"); got != 100 {
		t.Fatalf("b sees %d sent, want 100", got)
	}
	if n, _ := wa.Reserve("192.0.2.2", "example", 100, 20); n != 20 {
		t.Fatalf("a took %d from a second IP, want 20", n)
	}
	srv.Kill()
	// 80 left when Redis went away, two nodes: a may take 40 more alone.
	if n, _ := wa.Reserve("192.0.2.2", "example", 100, 60); n != 40 {
		t.Fatalf("a took %d in fallback, want its share, 40", n)
	}
	srv.Start()
	testlib.WaitFor(t, "reconciliation", func() bool { return a.Up() && b.Up() })
	if n, _ := wb.Reserve("192.0.2.2", "example", 100, 60); n != 40 {
		t.Fatalf("b took %d after the outage, want the 40 left", n)
	}
}

// TestStatus checks what cluster status reads.
func TestStatus(t *testing.T) {
	srv := testlib.Redis(t)
	rec := &recorder{}
	opts := testOptions(srv.Addr, "a", rec)
	opts.Info = func() NodeInfo { return NodeInfo{Generation: 3, PolicyHash: "abc"} }
	a, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	join(t, srv.Addr, "b")
	a.Reserve(queue.SharedRate{Provider: "example", Prov: policy.Limits{PerSecond: 10}, LaneFactor: 1, ProvFactor: 1})
	a.AcquireConn("example", 5)
	st, err := ReadStatus(context.Background(), Options{Addr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[0].ID != "a" || st.Nodes[0].Generation != 3 || st.Nodes[0].PolicyHash != "abc" || st.Nodes[1].ID != "b" {
		t.Fatalf("nodes %+v, want a (generation 3, hash abc) and b", st.Nodes)
	}
	if len(st.Providers) != 1 || st.Providers[0].Name != "example" || st.Providers[0].Connections != 1 || st.Providers[0].Sent < 1 || st.Providers[0].LastMinute < 1 {
		t.Fatalf("providers %+v, want example with 1 connection and messages sent", st.Providers)
	}
}
