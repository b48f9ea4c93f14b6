package stats

import (
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/policy"
)

func TestCountersWindows(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := New(func() time.Time { return now })
	emit := func(at time.Duration, typ event.Type, src, prov, class string) {
		c.Emit(&event.Event{Time: now.Add(at), Type: typ, Source: src, Provider: prov, Class: class})
	}
	emit(-time.Minute, event.Delivered, "10.0.0.1", "gmail", "newsletter")
	emit(-2*time.Minute, event.Deferred, "10.0.0.1", "gmail", "newsletter")
	emit(-30*time.Minute, event.Bounced, "10.0.0.1", "gmail", "transactional")
	emit(-3*time.Hour, event.Delivered, "10.0.0.2", "gmail", "newsletter")
	emit(-30*time.Hour, event.Delivered, "10.0.0.2", "gmail", "newsletter")
	emit(-time.Minute, event.Received, "10.0.0.1", "gmail", "newsletter")

	tests := []struct {
		src, prov, class string
		window           time.Duration
		want             policy.Counts
	}{
		{"10.0.0.1", "gmail", "newsletter", 5 * time.Minute, policy.Counts{Attempted: 2, Delivered: 1, Deferred: 1}},
		{"10.0.0.1", "gmail", "", 5 * time.Minute, policy.Counts{Attempted: 2, Delivered: 1, Deferred: 1}},
		{"10.0.0.1", "gmail", "", time.Hour, policy.Counts{Attempted: 3, Delivered: 1, Deferred: 1, Bounced: 1}},
		{"", "gmail", "", 24 * time.Hour, policy.Counts{Attempted: 4, Delivered: 2, Deferred: 1, Bounced: 1}},
		{"", "", "newsletter", 24 * time.Hour, policy.Counts{Attempted: 3, Delivered: 2, Deferred: 1}},
		{"10.0.0.3", "", "", 24 * time.Hour, policy.Counts{}},
		{"", "gmail", "", 10 * time.Minute, policy.Counts{Attempted: 3, Delivered: 1, Deferred: 1, Bounced: 1}},
	}
	for _, tt := range tests {
		if got := c.Counts(tt.src, tt.prov, tt.class, tt.window); got != tt.want {
			t.Errorf("Counts(%q,%q,%q,%v) = %+v, want %+v", tt.src, tt.prov, tt.class, tt.window, got, tt.want)
		}
	}
}

func BenchmarkEmit(b *testing.B) {
	c := New(nil)
	e := &event.Event{Type: event.Delivered, Source: "10.0.0.1", Provider: "gmail", Class: "newsletter", Time: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Emit(e)
	}
}

func BenchmarkCounts(b *testing.B) {
	c := New(nil)
	c.Emit(&event.Event{Type: event.Delivered, Source: "10.0.0.1", Provider: "gmail", Class: "newsletter"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Counts("10.0.0.1", "gmail", "", 5*time.Minute)
	}
}
