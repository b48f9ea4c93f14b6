package shape

import (
	"testing"
	"time"

	"corriere/core/policy"
)

// sent simulates a sender that asks Reserve as often as it may over span,
// starting at t0, and returns the send times.
func sent(l *Limiter, t0 time.Time, span time.Duration) []time.Time {
	var out []time.Time
	now := t0
	for now.Before(t0.Add(span)) {
		if wait := l.Reserve(now, false); wait > 0 {
			now = now.Add(wait)
			continue
		}
		out = append(out, now)
	}
	return out
}

// maxInWindow returns the most sends in any window of length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestLimiterRates(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		limits policy.Limits
		span   time.Duration
		window time.Duration
		max    int // most sends allowed in any window
		total  int // sends expected over span (±1)
	}{
		{"per second smooth", policy.Limits{PerSecond: 10}, 10 * time.Second, time.Second, 10, 100},
		{"per second burst", policy.Limits{PerSecond: 10, Burst: 5}, 10 * time.Second, time.Second, 14, 104},
		{"per minute", policy.Limits{PerMinute: 120}, 3 * time.Minute, time.Minute, 120, 360},
		{"per hour volume", policy.Limits{PerHour: 100}, 3 * time.Hour, time.Hour, 100, 300},
		{"per day volume", policy.Limits{PerDay: 500}, 72 * time.Hour, 24 * time.Hour, 500, 1500},
		{"combined", policy.Limits{PerSecond: 50, PerHour: 1000}, 2 * time.Hour, time.Hour, 1000, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := sent(NewLimiter(tt.limits), t0, tt.span)
			if got := maxInWindow(ts, tt.window); got > tt.max {
				t.Errorf("%d sends in one %v window, limit %d", got, tt.window, tt.max)
			}
			if d := len(ts) - tt.total; d < -2 || d > 2 {
				t.Errorf("sent %d over %v, want about %d", len(ts), tt.span, tt.total)
			}
		})
	}
}

func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(policy.Limits{})
	for i := 0; i < 1000; i++ {
		if w := l.Reserve(time.Unix(0, 0), false); w != 0 {
			t.Fatalf("unlimited limiter asked to wait %v", w)
		}
	}
}

func TestLimiterFactorAndReload(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	l := NewLimiter(policy.Limits{PerSecond: 10, PerHour: 100})
	if n := len(sent(l, t0, 2*time.Second)); n < 19 || n > 21 {
		t.Fatalf("full speed: %d in 2s", n)
	}
	l.SetFactor(0.5)
	if n := len(sent(l, t0.Add(2*time.Second), 2*time.Second)); n < 9 || n > 11 {
		t.Fatalf("half speed: %d in 2s", n)
	}
	// A reload keeps the hour's volume: 30 sent, 70 left.
	l.SetFactor(1)
	l.SetLimits(policy.Limits{PerSecond: 1000, PerHour: 100}, t0.Add(4*time.Second))
	if n := len(sent(l, t0.Add(4*time.Second), time.Minute)); n < 69 || n > 71 {
		t.Fatalf("after reload: %d more in the hour, want 70", n)
	}
}

// TestLimiterReloadKeepsBurst: a sender at full speed with a burst of 20
// reloads its limits every 2 seconds. Equal limits must not grant a fresh
// burst; changed ones carry the used allowance over, so no reload ever
// lets more through than the new limits would have.
func TestLimiterReloadKeepsBurst(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	base := policy.Limits{PerSecond: 20, PerMinute: 1200, Burst: 20}
	tests := []struct {
		name   string
		reload func(i int) policy.Limits // limits set at the i-th reload
		max    int                       // most sends in 20s: burst + 20/s
	}{
		{"equal limits", func(int) policy.Limits { return base }, 20 + 400},
		{"other field changes", func(i int) policy.Limits {
			l := base
			l.MaxConnections = 2 + i%2
			return l
		}, 20 + 400},
		{"rate changes", func(i int) policy.Limits {
			l := base
			l.PerSecond = 20 + float64(i%2) // 20 and 21 in turn
			return l
		}, 20 + 420},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(base)
			total := 0
			for i := range 10 {
				at := t0.Add(time.Duration(i) * 2 * time.Second)
				if i > 0 {
					l.SetLimits(tt.reload(i), at)
				}
				total += len(sent(l, at, 2*time.Second))
			}
			if total > tt.max {
				t.Errorf("%d sent in 20s with a reload every 2s, want at most %d", total, tt.max)
			}
			if total < 400 {
				t.Errorf("%d sent in 20s at 20/s: the reloads held traffic back", total)
			}
		})
	}
}

// TestLimiterCriticalReserve: bulk mail stops at 90% of the hour's volume,
// critical mail may use the rest, and the reserve does not slow per-second
// sending.
func TestLimiterCriticalReserve(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	l := NewLimiter(policy.Limits{PerHour: 100, PerDay: 1000, CriticalReserve: 0.1})
	if n := len(sent(l, t0, time.Minute)); n != 90 {
		t.Fatalf("bulk sent %d in the first minute, want 90 of 100", n)
	}
	now := t0.Add(time.Minute)
	for i := range 10 {
		if w := l.Reserve(now, true); w != 0 {
			t.Fatalf("critical message %d waits %v with the reserve unused", i+1, w)
		}
	}
	if w := l.Reserve(now, true); w < 58*time.Minute {
		t.Errorf("critical message over the whole volume waits only %v", w)
	}
	// A reload keeps the counts: bulk stays stopped.
	l.SetLimits(policy.Limits{PerHour: 100, PerDay: 1000, CriticalReserve: 0.2}, now)
	if w := l.Reserve(now, false); w == 0 {
		t.Error("bulk sent past the reserve after a reload")
	}
}

// TestLimiterCancel: a lane that asks its provider's limiter after its own
// and gives its allowance back when the provider says wait sends at its own
// rate once the provider lets it, not less.
func TestLimiterCancel(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	lane := NewLimiter(policy.Limits{PerSecond: 10, PerHour: 1000})
	prov := NewLimiter(policy.Limits{PerSecond: 1})
	// The provider allows one message a second; the lane polls every 10ms
	// for 2 seconds and gets 2 through.
	sentBoth := 0
	for now := t0; now.Before(t0.Add(2 * time.Second)); now = now.Add(10 * time.Millisecond) {
		if lane.Reserve(now, false) != 0 {
			continue
		}
		if prov.Reserve(now, false) != 0 {
			lane.Cancel(now)
			continue
		}
		sentBoth++
	}
	if sentBoth != 2 {
		t.Fatalf("%d sent in 2s under a provider limit of 1/s", sentBoth)
	}
	// The lane's own allowance is intact: a burst-free 10/s lane sends 10
	// in the next second, and its hour counts only the 2 that went.
	if n := len(sent(lane, t0.Add(2*time.Second), time.Second)); n != 10 {
		t.Errorf("lane sent %d in a second at 10/s after the provider held it back", n)
	}
	if c := lane.windows[0].cur; c != 12 {
		t.Errorf("hour count %v, want 12", c)
	}
}

func BenchmarkReserve(b *testing.B) {
	l := NewLimiter(policy.Limits{PerSecond: 1e9, PerMinute: 1e10, PerHour: 1e12, PerDay: 1e13, Burst: 1000})
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Reserve(now, false)
	}
}

// TestLimiterShare checks that a node's share scales every kind of limit,
// apart from the slow-down factor, and that the whole share comes back.
func TestLimiterShare(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		limits policy.Limits
		share  float64
		span   time.Duration
		want   int
	}{
		{"per second, a third", policy.Limits{PerSecond: 30}, 1.0 / 3, 10 * time.Second, 100},
		{"per minute, half", policy.Limits{PerMinute: 60}, 0.5, time.Minute, 30},
		{"per hour, half", policy.Limits{PerHour: 100}, 0.5, time.Hour - time.Second, 50},
		{"whole", policy.Limits{PerSecond: 30}, 1, 10 * time.Second, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(tt.limits)
			l.SetShare(tt.share)
			if got := len(sent(l, t0, tt.span)); got < tt.want-1 || got > tt.want+1 {
				t.Errorf("sent %d in %v at share %.2f, want %d", got, tt.span, tt.share, tt.want)
			}
		})
	}
	l := NewLimiter(policy.Limits{PerSecond: 10})
	l.SetFactor(0.5)
	l.SetShare(0.5)
	if got := len(sent(l, t0, 10*time.Second)); got < 24 || got > 26 {
		t.Errorf("sent %d in 10s at factor 0.5 and share 0.5 of 10/s, want 25", got)
	}
	l.SetShare(1)
	if f := l.Factor(); f != 0.5 {
		t.Errorf("the share changed the slow-down factor to %v", f)
	}
}
