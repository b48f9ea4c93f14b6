package clock

import (
	"slices"
	"testing"
	"time"
)

var start = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fired returns whether a value is waiting on c, and which.
func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case at := <-c:
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerFiresWhenDue(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration
		advance []time.Duration
		want    bool
	}{
		{"not yet", time.Second, []time.Duration{999 * time.Millisecond}, false},
		{"exactly due", time.Second, []time.Duration{time.Second}, true},
		{"past due", time.Second, []time.Duration{time.Hour}, true},
		{"in steps", time.Second, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, true},
		{"zero fires on the next advance", 0, []time.Duration{0}, true},
		{"negative advance moves nothing", time.Second, []time.Duration{-time.Hour, 999 * time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(start)
			tm := f.NewTimer(tt.after)
			for _, d := range tt.advance {
				f.Advance(d)
			}
			at, ok := fired(tm.C())
			if ok != tt.want {
				t.Fatalf("fired %v, want %v", ok, tt.want)
			}
			if ok && !at.Equal(start.Add(tt.after)) {
				t.Errorf("fired with time %v, want its due time %v", at, start.Add(tt.after))
			}
		})
	}
}

func TestFakeStopAndReset(t *testing.T) {
	tests := []struct {
		name       string
		op         func(Timer) bool
		wantActive bool
		advance    time.Duration
		wantFired  bool
	}{
		{"stop before due", func(tm Timer) bool { return tm.Stop() }, true, time.Hour, false},
		{"reset later", func(tm Timer) bool { return tm.Reset(2 * time.Second) }, true, 1500 * time.Millisecond, false},
		{"reset later, then due", func(tm Timer) bool { return tm.Reset(2 * time.Second) }, true, 2 * time.Second, true},
		{"reset sooner", func(tm Timer) bool { return tm.Reset(time.Millisecond) }, true, time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(start)
			tm := f.NewTimer(time.Second)
			if active := tt.op(tm); active != tt.wantActive {
				t.Errorf("reported active %v, want %v", active, tt.wantActive)
			}
			f.Advance(tt.advance)
			if _, ok := fired(tm.C()); ok != tt.wantFired {
				t.Errorf("fired %v, want %v", ok, tt.wantFired)
			}
		})
	}
}

func TestFakeStopOrResetDropsAStaleFire(t *testing.T) {
	f := NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second)
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it active")
	}
	if _, ok := fired(tm.C()); ok {
		t.Error("a fire from before Stop was received after it")
	}
	tm.Reset(time.Second)
	f.Advance(time.Second)
	if tm.Reset(time.Minute) {
		t.Error("Reset of a fired timer reported it active")
	}
	if _, ok := fired(tm.C()); ok {
		t.Error("a fire from before Reset was received after it")
	}
}

func TestFakeAdvanceFiresInDueOrder(t *testing.T) {
	f := NewFake(start)
	var order []string
	note := func(name string) func() { return func() { order = append(order, name) } }
	f.AfterFunc(3*time.Second, note("c"))
	f.AfterFunc(time.Second, note("a"))
	f.AfterFunc(2*time.Second, note("b1"))
	f.AfterFunc(2*time.Second, note("b2"))
	f.AfterFunc(time.Second, func() {
		note("a2")()
		if got := f.Now(); !got.Equal(start.Add(5 * time.Second)) {
			t.Errorf("a function fired by Advance saw the clock at %v, want the new time 5s", got.Sub(start))
		}
		// Armed during the Advance: counts from the new time.
		f.AfterFunc(0, note("chained"))
	})
	f.AfterFunc(time.Hour, note("later"))
	f.Advance(5 * time.Second)
	if want := []string{"a", "a2", "b1", "b2", "c"}; !slices.Equal(order, want) {
		t.Errorf("fired %v, want %v", order, want)
	}
	if got := f.Now(); !got.Equal(start.Add(5 * time.Second)) {
		t.Errorf("clock at %v after the advance, want 5s", got.Sub(start))
	}
	f.Advance(0)
	if want := []string{"a", "a2", "b1", "b2", "c", "chained"}; !slices.Equal(order, want) {
		t.Errorf("after the next Advance fired %v, want %v", order, want)
	}
	f.Advance(time.Hour)
	if order[len(order)-1] != "later" {
		t.Errorf("the hour's timer did not fire an hour later: %v", order)
	}
}

func TestFakeResetOfAnUnreadTimerDeliversTheNewFire(t *testing.T) {
	f := NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second)
	// Re-armed without reading the channel: Reset drains the old value,
	// so the new fire lands.
	tm.Reset(time.Second)
	f.Advance(time.Second)
	at, ok := fired(tm.C())
	if !ok || !at.Equal(start.Add(2*time.Second)) {
		t.Errorf("got %v %v, want the second fire", at, ok)
	}
}

func TestRealTimerFires(t *testing.T) {
	var c Clock = Real{}
	tm := c.NewTimer(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(10 * time.Second):
		t.Fatal("a real 1ms timer did not fire in 10s")
	}
	done := make(chan struct{})
	af := c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a real 1ms AfterFunc did not run in 10s")
	}
	if af.Stop() {
		t.Error("Stop of a fired AfterFunc reported it active")
	}
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Errorf("Real.Now is %v away from time.Now", d)
	}
}

func TestFakeArmed(t *testing.T) {
	f := NewFake(start)
	if f.Armed(start.Add(time.Second)) {
		t.Error("Armed with no timer")
	}
	tm := f.NewTimer(time.Second)
	if !f.Armed(start.Add(time.Second)) || f.Armed(start.Add(2*time.Second)) {
		t.Error("Armed does not name the timer's due time alone")
	}
	tm.Reset(2 * time.Second)
	if f.Armed(start.Add(time.Second)) || !f.Armed(start.Add(2*time.Second)) {
		t.Error("Armed does not follow a Reset")
	}
	tm.Stop()
	if f.Armed(start.Add(2 * time.Second)) {
		t.Error("Armed after Stop")
	}
}
