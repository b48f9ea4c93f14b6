package stats

import (
	"time"

	"corriere/core/policy"
)

// Per-tenant counters sit beside the (source, provider, class) ones: a
// tenant's complaint rate is what its customers' recipients think of its
// mail wherever it left from, and an operator reads it to decide whom to
// slow down or stop. They are fed by the same events (the event's Tenant)
// and kept in the same sliding windows; events without a tenant (the
// platform's own DSNs) are not counted here.

// addTenant counts add for tenant at t. Call it with c.mu held.
func (c *Counters) addTenant(tenant string, t time.Time, add policy.Counts) {
	if tenant == "" {
		return
	}
	if c.tenants == nil {
		c.tenants = map[string]*series{}
	}
	s, ok := c.tenants[tenant]
	if !ok {
		s = newSeries()
		c.tenants[tenant] = s
	}
	s.add(t, add)
}

// TenantCounts returns what tenant's mail did over window (rounded up to
// 5m, 1h or 24h, as in Counts): attempts, deliveries, deferrals, bounces
// and complaints. Scripts read it with core.tenant_counts.
func (c *Counters) TenantCounts(tenant string, window time.Duration) policy.Counts {
	ti := len(tiers) - 1
	for i, t := range tiers {
		if window <= t.window {
			ti = i
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.tenants[tenant]
	if !ok {
		return policy.Counts{}
	}
	return s[ti].sum(tiers[ti], c.now())
}
