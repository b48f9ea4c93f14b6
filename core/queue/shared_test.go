package queue_test

import (
	"strings"
	"sync"
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

// recordingShared is the cluster side of a node alone: it lets every
// message and connection through and remembers the throttles the queue
// would tell the other nodes.
type recordingShared struct {
	mu        sync.Mutex
	throttles []queue.Throttle
}

func (s *recordingShared) Reserve(queue.SharedRate) time.Duration { return 0 }
func (s *recordingShared) AcquireConn(string, int) bool           { return true }
func (s *recordingShared) ReleaseConn(string)                     {}
func (s *recordingShared) Cancel(string, string)                  {}
func (s *recordingShared) Throttled(t queue.Throttle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttles = append(s.throttles, t)
}

func (s *recordingShared) published() []queue.Throttle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]queue.Throttle(nil), s.throttles...)
}

// TestThrottlePublished checks that a 421 4.7.28 the policy answers with a
// suspension and a slow-down is told to the other nodes, once each, with
// the lane, the factor, the end and the reply.
func TestThrottlePublished(t *testing.T) {
	t.Parallel()
	pol := luaPolicy(t, map[string]string{
		"rules/providers.lua": acmeProviders(`{ connections = 1 }`,
			`{ { match = "4%.7%.28", scope = "source", delay = "1h", category = "speeding", rate_factor = 0.5 } }`),
	}, nil, nil, nil)
	shared := &recordingShared{}
	w := newWorld(t, pol, func(o *queue.Options) { o.Shared = shared })
	w.mx("acme.test", "mx.acme.test", "127.0.0.21")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
		return mailtest.Reply(421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail")
	}})
	w.send("s@sender.test", 0, "", "r@acme.test")
	testlib.WaitFor(t, "the throttle told to the other nodes", func() bool { return len(shared.published()) == 2 })
	got := shared.published()
	slow, susp := got[0], got[1]
	if slow.Provider != "acme" || slow.Factor != 0.5 || !slow.Until.IsZero() || !strings.Contains(slow.Reason, "4.7.28") {
		t.Errorf("slow-down published %+v, want acme at 0.5 with the reply", slow)
	}
	if susp.Provider != "acme" || susp.Factor != 0 || susp.Until.Sub(w.now()) < 59*time.Minute || !strings.Contains(susp.Reason, "4.7.28") {
		t.Errorf("suspension published %+v, want acme for an hour with the reply", susp)
	}
	if slow.Source != susp.Source {
		t.Errorf("the slow-down names source %q, the suspension %q", slow.Source, susp.Source)
	}
}
