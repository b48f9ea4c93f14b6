package main

import (
	"testing"

	"corriere/core/policy"
	"corriere/core/queue"
)

func TestLimitsText(t *testing.T) {
	tests := []struct {
		limits policy.Limits
		want   string
	}{
		{policy.Limits{}, "-"},
		{policy.Limits{MaxConnections: 2, PerSecond: 20}, "2conn 20/s"},
		{policy.Limits{MaxConnections: 2, PerMinute: 60, PerHour: 100, CriticalReserve: 0.1}, "2conn 60/min 100/h 10%critical"},
		{policy.Limits{PerDay: 5000, CriticalReserve: 0.25}, "5000/day 25%critical"},
		// The reserve concerns hourly and daily volumes only.
		{policy.Limits{PerSecond: 5, CriticalReserve: 0.1}, "5/s"},
		{policy.Limits{PerHour: 100}, "100/h"},
	}
	for _, tt := range tests {
		if got := limitsText(queue.LaneStatus{Limits: tt.limits}); got != tt.want {
			t.Errorf("limitsText(%+v) = %q, want %q", tt.limits, got, tt.want)
		}
	}
}
