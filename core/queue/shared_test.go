package queue_test

import (
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/queue"
	"corriere/core/testlib"
)

// TestApplyThrottleFromAnotherNode checks that a suspension and slow-down
// another node of a cluster decided hold this node's lanes back as its own
// would, with the event naming the reply, and that a lane-wide one for a
// source this node does not have changes nothing.
func TestApplyThrottleFromAnotherNode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("shared.test", "mx.shared.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "first@shared.test")
	testlib.WaitFor(t, "the first delivery", func() bool { return w.events.Count(event.Delivered, "") == 1 })
	first := w.events.Of(event.Delivered)[0]

	w.q.ApplyThrottle(queue.Throttle{Provider: first.Provider, Source: "192.0.2.99", Until: w.now().Add(time.Hour), Reason: "not our source"})
	if n := len(w.events.Of(event.Suspended)); n != 0 {
		t.Fatalf("%d suspensions for a source this node does not have", n)
	}
	const why = "421 4.7.28 unusual rate (on node2)"
	w.q.ApplyThrottle(queue.Throttle{Provider: first.Provider, Until: w.now().Add(time.Hour), Factor: 0.5, Reason: why})
	evs := w.events.Of(event.Suspended)
	if len(evs) != 1 || evs[0].Provider != first.Provider || evs[0].Reason != why {
		t.Fatalf("suspended events %+v, want one for %s with the reply", evs, first.Provider)
	}
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "second@shared.test")
	testlib.WaitFor(t, "the second message waiting in the suspended lane", func() bool {
		for _, l := range w.q.Status().Lanes {
			if l.Provider == first.Provider && !l.SuspendedUntil.IsZero() && l.Queued[message.Transactional] == 1 {
				return true
			}
		}
		return false
	})
	if got := len(rx.Messages()); got != 1 {
		t.Fatalf("%d messages arrived during the suspension, want 1", got)
	}
	if n, err := w.q.Resume(queue.Scope{Provider: first.Provider}); err != nil || n != 1 {
		t.Fatalf("Resume ended %d suspensions, %v", n, err)
	}
	rx.Wait(t, 2, 10*time.Second)
}
