package luart

import (
	"context"
	"testing"

	"corriere/core/message"
)

// TestRouteTakesTheReboundPool checks the shipped route.lua sends a
// recipient an operator rebound from the given pool, the next recipient
// (the pooled Lua table reused) from its class's pool again, and that the
// engine lists the pools of rules/pools.lua.
func TestRouteTakesTheReboundPool(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{Sources: threeSources})
	m := loadMessage(t, "transactional.eml", "example")
	m.Class = message.Transactional
	ctx := context.Background()
	for _, tc := range []struct{ pool, want string }{{"bulk", "bulk"}, {"", "transactional"}, {"bulk", "bulk"}} {
		d := delivery(m, "a@gmail.com", "gmail")
		d.Pool = tc.pool
		rt, err := e.Route(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if rt.Pool != tc.want {
			t.Errorf("rebound to %q: routed from pool %q, want %q", tc.pool, rt.Pool, tc.want)
		}
	}
	if pools := e.Status().Pools; len(pools) == 0 || pools[0] != "bulk" {
		t.Errorf("Status().Pools = %v", pools)
	}
}
