package queue

import (
	"testing"
	"time"

	"corriere/core/policy"
	"corriere/core/shape"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestThrottleSuspension(t *testing.T) {
	tests := []struct {
		name         string
		suspensions  []time.Duration // suspend until t0 plus each, in order
		wantExtended []bool
		at           time.Duration // ask at t0 plus this
		wantHeld     bool
		wantResumed  bool // tick at the same time ends the suspension
	}{
		{"none", nil, nil, 0, false, false},
		{"during", []time.Duration{time.Minute}, []bool{true}, 30 * time.Second, true, false},
		{"at its end", []time.Duration{time.Minute}, []bool{true}, time.Minute, false, true},
		{"after its end", []time.Duration{time.Minute}, []bool{true}, time.Hour, false, true},
		{"extended", []time.Duration{time.Minute, 2 * time.Minute}, []bool{true, true}, 90 * time.Second, true, false},
		{"a shorter one keeps the longer", []time.Duration{2 * time.Minute, time.Minute}, []bool{true, false}, 90 * time.Second, true, false},
		{"the same again", []time.Duration{time.Minute, time.Minute}, []bool{true, false}, time.Minute, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThrottle(shape.NewLimiter(policy.Limits{}))
			for i, d := range tt.suspensions {
				if got := th.suspend(t0.Add(d)); got != tt.wantExtended[i] {
					t.Errorf("suspension %d to +%s: extended %v, want %v", i, d, got, tt.wantExtended[i])
				}
			}
			now := t0.Add(tt.at)
			if got := th.suspended(now); got != tt.wantHeld {
				t.Errorf("suspended at +%s = %v, want %v", tt.at, got, tt.wantHeld)
			}
			if got := th.tick(now); got != tt.wantResumed {
				t.Errorf("tick at +%s resumed %v, want %v", tt.at, got, tt.wantResumed)
			}
			if tt.wantResumed && !th.suspendedUntil().IsZero() {
				t.Errorf("suspended until %v after it resumed", th.suspendedUntil())
			}
			if th.tick(now) {
				t.Error("a second tick resumed again")
			}
		})
	}
}

func TestThrottleSlowDownAndRecovery(t *testing.T) {
	tests := []struct {
		name    string
		limits  policy.Limits
		factors []float64       // slow-downs at t0
		ticks   []time.Duration // ticks at t0 plus each, in order
		want    float64
	}{
		{"full speed stays", policy.Limits{}, nil, []time.Duration{time.Minute}, 1},
		{"halved", policy.Limits{}, []float64{0.5}, nil, 0.5},
		{"slow-downs multiply", policy.Limits{}, []float64{0.5, 0.5}, nil, 0.25},
		{"no step before the default interval", policy.Limits{}, []float64{0.5}, []time.Duration{29 * time.Second}, 0.5},
		{"one default step", policy.Limits{}, []float64{0.5}, []time.Duration{30 * time.Second}, 0.625},
		{"steps count from the last one", policy.Limits{}, []float64{0.5},
			[]time.Duration{30 * time.Second, 45 * time.Second, 60 * time.Second}, 0.78125},
		{"back to full speed, not beyond", policy.Limits{}, []float64{0.5},
			[]time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second, 120 * time.Second, 150 * time.Second}, 1},
		{"own interval", policy.Limits{RecoveryInterval: 5 * time.Second}, []float64{0.5},
			[]time.Duration{5 * time.Second}, 0.625},
		{"own step", policy.Limits{RecoveryStep: 2}, []float64{0.25},
			[]time.Duration{30 * time.Second}, 0.5},
		{"own interval and step", policy.Limits{RecoveryInterval: time.Minute, RecoveryStep: 1.5}, []float64{0.4},
			[]time.Duration{30 * time.Second, time.Minute}, 0.6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThrottle(shape.NewLimiter(policy.Limits{PerSecond: 10}))
			for _, f := range tt.factors {
				th.slowDown(f, t0, tt.limits)
			}
			for _, d := range tt.ticks {
				th.tick(t0.Add(d))
			}
			if got := th.factor(); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("factor %v, want %v", got, tt.want)
			}
		})
	}
}

func TestThrottleSlowsItsLimiter(t *testing.T) {
	lim := shape.NewLimiter(policy.Limits{PerSecond: 10})
	th := newThrottle(lim)
	th.slowDown(0.5, t0, policy.Limits{})
	if lim.Reserve(t0, false) != 0 {
		t.Fatal("the first message waits")
	}
	// 10/s halved is one message every 200ms.
	if w := lim.Reserve(t0, false); w != 200*time.Millisecond {
		t.Errorf("the second message waits %v, want 200ms at half of 10/s", w)
	}
}
