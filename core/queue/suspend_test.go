package queue_test

import (
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/testlib"
)

// TestOperatorSuspendAndResume checks an operator's suspension of a
// provider holds its mail back, with a suspended event naming the reason,
// and that resuming delivers what waited.
func TestOperatorSuspendAndResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("held.test", "mx.held.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "first@held.test")
	testlib.WaitFor(t, "the first delivery", func() bool { return w.events.Count(event.Delivered, "") == 1 })
	provider := w.events.Of(event.Delivered)[0].Provider

	if n, err := w.q.Suspend(provider, "", w.now().Add(time.Hour), "maintenance"); err != nil || n != 1 {
		t.Fatalf("Suspend: %d, %v", n, err)
	}
	evs := w.events.Of(event.Suspended)
	if len(evs) != 1 || evs[0].Provider != provider || evs[0].Reason != "operator: maintenance" {
		t.Errorf("suspended events: %+v", evs)
	}
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "second@held.test")
	testlib.WaitFor(t, "the second message waiting in the suspended lane", func() bool {
		for _, l := range w.q.Depth().Lanes {
			if l.Provider == provider && l.Suspended && l.Ready[1] == 1 {
				return true
			}
		}
		return false
	})
	if got := len(rx.Messages()); got != 1 {
		t.Fatalf("%d messages arrived during the suspension, want 1", got)
	}
	if n := w.q.Resume(provider, ""); n != 1 {
		t.Errorf("Resume ended %d suspensions, want 1", n)
	}
	rx.Wait(t, 2, 10*time.Second)
	testlib.WaitFor(t, "a resumed event", func() bool { return len(w.events.Of(event.Resumed)) == 1 })
	if _, err := w.q.Suspend("", "", time.Now(), "x"); err == nil {
		t.Error("Suspend with neither provider nor source accepted")
	}
}
