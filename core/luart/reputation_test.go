package luart

import (
	"context"
	"testing"
	"time"

	"corriere/core/policy"
)

// fixedReputation answers every question with counts derived from the
// question, so that a test sees which row and window a script asked for.
type fixedReputation struct{}

func (fixedReputation) Reputation(kind, name, provider string, window time.Duration) policy.ReputationCounts {
	if kind != "ip" || name != "192.0.2.10" || provider != "gmail" {
		return policy.ReputationCounts{}
	}
	return policy.ReputationCounts{Sent: int64(window / time.Hour), Delivered: 7, Clicked: 3}
}

// TestCoreReputation: a script reads the persistent reputation of a row
// over a window with core.reputation, 24 hours by default.
func TestCoreReputation(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{"scripts/shape.lua": `
local core = require "core"
function shape(provider, source)
  local week = core.reputation("ip", source, provider, "168h")
  local day = core.reputation("ip", source, provider)
  local other = core.reputation("tenant", "shop", provider, "1h")
  return { per_minute = week.sent, per_hour = day.sent, per_day = week.delivered * 10 + week.clicked, connections = 1 + other.sent }
end`})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Reputation: fixedReputation{}})
	l, err := e.Shape(context.Background(), "gmail", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	if l.PerMinute != 168 || l.PerHour != 24 || l.PerDay != 73 || l.MaxConnections != 1 {
		t.Errorf("Shape = %+v, want per_minute 168 (7d), per_hour 24 (default 24h), per_day 73, connections 1", l)
	}
}
