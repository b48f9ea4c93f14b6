package stats

import (
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/policy"
)

// TestComplaintRates: a complaint counts for its tenant, its source IP and
// its provider, each read on its own, in the same windows as deliveries.
func TestComplaintRates(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := New(func() time.Time { return now })
	emit := func(at time.Duration, typ event.Type, tenant, src, prov string) {
		c.Emit(&event.Event{Time: now.Add(at), Type: typ, Tenant: tenant, Source: src, Provider: prov, Class: "newsletter"})
	}
	for range 4 {
		emit(-time.Minute, event.Delivered, "negozio", "10.0.0.1", "gmail")
	}
	emit(-time.Minute, event.Delivered, "ricette", "10.0.0.2", "yahoo")
	emit(-2*time.Minute, event.Complained, "negozio", "10.0.0.1", "gmail")
	emit(-3*time.Hour, event.Complained, "negozio", "10.0.0.2", "yahoo")
	emit(-time.Minute, event.Complained, "", "10.0.0.2", "yahoo") // the platform's own mail

	for _, tc := range []struct {
		name string
		got  policy.Counts
		want policy.Counts
	}{
		{"tenant, 5m", c.TenantCounts("negozio", 5*time.Minute), policy.Counts{Attempted: 4, Delivered: 4, Complained: 1}},
		{"tenant, 24h", c.TenantCounts("negozio", 24*time.Hour), policy.Counts{Attempted: 4, Delivered: 4, Complained: 2}},
		{"other tenant", c.TenantCounts("ricette", time.Hour), policy.Counts{Attempted: 1, Delivered: 1}},
		{"unknown tenant", c.TenantCounts("nobody", time.Hour), policy.Counts{}},
		{"source IP", c.Counts("10.0.0.1", "", "", 5*time.Minute), policy.Counts{Attempted: 4, Delivered: 4, Complained: 1}},
		{"provider, 24h", c.Counts("", "yahoo", "", 24*time.Hour), policy.Counts{Attempted: 1, Delivered: 1, Complained: 2}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
}

// TestEventWithoutFieldsCountsOnce: an event that names no source, provider
// or class (a complaint about the platform's own mail) counts once under
// the wildcards, not once per empty field.
func TestEventWithoutFieldsCountsOnce(t *testing.T) {
	c := New(nil)
	c.Emit(&event.Event{Type: event.Complained, Provider: "gmail"})
	for _, tc := range []struct {
		source, provider, class string
		want                    int64
	}{
		{"", "", "", 1},
		{"", "gmail", "", 1},
		{"", "yahoo", "", 0},
	} {
		if got := c.Counts(tc.source, tc.provider, tc.class, time.Hour).Complained; got != tc.want {
			t.Errorf("Counts(%q, %q, %q) complained = %d, want %d", tc.source, tc.provider, tc.class, got, tc.want)
		}
	}
}
