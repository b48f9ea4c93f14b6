package queue_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/testlib"
)

// TestOperatorActions checks bounce, delete and retry on recipients
// waiting for a retry: bounce sends one DSN per message with the reason,
// delete sends none, retry brings the next attempt forward; each leaves
// the queue's count right.
func TestOperatorActions(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour} })
	w.mx("slow.test", "mx.slow.test", "127.0.0.21")
	w.mx("sender.test", "mx.sender.test", "127.0.0.22")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
		return mailtest.Reply(451, "4.3.0", "try again later")
	}})
	senderMX := w.receiver("127.0.0.22", mailtest.Options{})
	bounced := w.send("app@sender.test", message.NotifyFailure, message.RetHdrs, "a@slow.test", "b@slow.test")
	deleted := w.send("app@sender.test", message.NotifyFailure, message.RetHdrs, "c@slow.test")
	retried := w.send("app@sender.test", message.NotifyFailure, message.RetHdrs, "d@slow.test")
	testlib.WaitFor(t, "four deferrals", func() bool { return w.events.Count(event.Deferred, "") == 4 })

	res, err := w.q.Bounce([]queue.EntryID{{ID: bounced.ID, Index: 0}, {ID: bounced.ID, Index: 1}}, "no longer wanted")
	if err != nil || res.Done != 2 || res.Pending != 0 {
		t.Errorf("bounce: %+v, %v, want 2 done", res, err)
	}
	dsn := senderMX.Wait(t, 1, 10*time.Second)[0]
	for _, want := range []string{"a@slow.test", "b@slow.test", "no longer wanted"} {
		if !strings.Contains(string(dsn.Data), want) {
			t.Errorf("the DSN lacks %q", want)
		}
	}
	if res, err := w.q.Delete([]queue.EntryID{{ID: deleted.ID, Index: 0}}, "test mail"); err != nil || res.Done != 1 {
		t.Errorf("delete: %+v, %v", res, err)
	}
	testlib.WaitFor(t, "the deleted event of c@slow.test", func() bool { return w.events.Count(event.Deleted, "c@slow.test") == 1 })
	before := w.events.Count(event.Deferred, "d@slow.test")
	if res, err := w.q.Retry([]queue.EntryID{{ID: retried.ID, Index: 0}}); err != nil || res.Done != 1 {
		t.Errorf("retry: %+v, %v", res, err)
	}
	testlib.WaitFor(t, "the retried recipient's second attempt", func() bool {
		return w.events.Count(event.Deferred, "d@slow.test") == before+1
	})
	if got := w.q.Pending(); got != 1 {
		t.Errorf("pending %d, want 1 (d@slow.test)", got)
	}
	if got := len(senderMX.Messages()); got != 1 {
		t.Errorf("%d messages at the sender's MX, want the one DSN of the bounce", got)
	}
	// An action on what is already gone does nothing.
	if res, err := w.q.Bounce([]queue.EntryID{{ID: bounced.ID, Index: 0}}, "again"); err != nil || res.Done != 0 || res.Pending != 0 {
		t.Errorf("bounce of a settled recipient: %+v, %v", res, err)
	}
}

// TestBounceInFlightWaitsForTheAttempt checks a bounce given while the
// recipient is in a transaction: it is counted as pending, and applied when
// the attempt fails, with the operator's reason in the DSN.
func TestBounceInFlightWaitsForTheAttempt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour} })
	w.mx("slow.test", "mx.slow.test", "127.0.0.21")
	w.mx("sender.test", "mx.sender.test", "127.0.0.22")
	inRcpt, release := make(chan struct{}, 1), make(chan struct{})
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
		inRcpt <- struct{}{}
		<-release
		return mailtest.Reply(451, "4.3.0", "try again later")
	}})
	senderMX := w.receiver("127.0.0.22", mailtest.Options{})
	m := w.send("app@sender.test", message.NotifyFailure, message.RetHdrs, "a@slow.test")
	<-inRcpt
	if got := w.q.LiveState(m.ID, 0, "", ""); got != queue.LiveInFlight {
		t.Errorf("LiveState in the middle of RCPT = %q, want %q", got, queue.LiveInFlight)
	}
	res, err := w.q.Bounce([]queue.EntryID{{ID: m.ID, Index: 0}}, "stop it")
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 0 || res.Pending != 1 {
		t.Errorf("bounce in flight: %+v, want 1 pending", res)
	}
	dsn := senderMX.Wait(t, 1, 10*time.Second)[0]
	if !strings.Contains(string(dsn.Data), "stop it") {
		t.Errorf("the DSN lacks the reason:\n%s", dsn.Data)
	}
	w.waitDone(10 * time.Second)
	if got := w.q.LiveState(m.ID, 0, "", ""); got != "" {
		t.Errorf("LiveState after the attempt = %q, want none", got)
	}
	if n := w.events.Count(event.Deferred, "a@slow.test"); n != 0 {
		t.Errorf("%d deferrals recorded for a bounced recipient", n)
	}
}

// poolRecorder is the default policy, recording the pool each routing is
// given.
type poolRecorder struct {
	policy.Default
	mu    sync.Mutex
	pools map[string][]string // recipient → the pools of its routings
}

func (p *poolRecorder) Route(ctx context.Context, d *policy.Delivery) (policy.Route, error) {
	p.mu.Lock()
	p.pools[d.Recipient] = append(p.pools[d.Recipient], d.Pool)
	p.mu.Unlock()
	return p.Default.Route(ctx, d)
}

func (p *poolRecorder) of(rcpt string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pools[rcpt])
}

// TestRebindRoutesAgainWithThePool checks a rebound recipient waiting for
// a retry is routed again at once, with the pool given to the route hook,
// and that others are not.
func TestRebindRoutesAgainWithThePool(t *testing.T) {
	t.Parallel()
	pol := &poolRecorder{pools: map[string][]string{}}
	w := newWorld(t, pol, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour} })
	w.mx("slow.test", "mx.slow.test", "127.0.0.21")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
		return mailtest.Reply(451, "4.3.0", "try again later")
	}})
	m := w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "a@slow.test", "b@slow.test")
	testlib.WaitFor(t, "two deferrals", func() bool { return w.events.Count(event.Deferred, "") == 2 })
	if res, err := w.q.Rebind([]queue.EntryID{{ID: m.ID, Index: 0}}, "warm"); err != nil || res.Done != 1 {
		t.Errorf("rebind: %+v, %v", res, err)
	}
	testlib.WaitFor(t, "a@slow.test routed again", func() bool { return len(pol.of("a@slow.test")) == 2 })
	if got := pol.of("a@slow.test"); got[1] != "warm" {
		t.Errorf("pools given for a@slow.test: %q, want the second to be warm", got)
	}
	if got := pol.of("b@slow.test"); len(got) != 1 || got[0] != "" {
		t.Errorf("pools given for b@slow.test: %q, want one routing without a pool", got)
	}
}

// TestStandingOrdersOutliveARestart checks that an operator's hold, rebind
// and retry are recorded in the spool: after a restart the tenant's mail
// is still held until a resume, the rebound recipient is still routed with
// its pool, and the retried one is due at once rather than at its old
// retry time.
func TestStandingOrdersOutliveARestart(t *testing.T) {
	t.Parallel()
	pol := &poolRecorder{pools: map[string][]string{}}
	w := newWorld(t, pol, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour} })
	w.mx("slow.test", "mx.slow.test", "127.0.0.21")
	w.mx("fast.test", "mx.fast.test", "127.0.0.23")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
		return mailtest.Reply(451, "4.3.0", "try again later")
	}})
	fast := w.receiver("127.0.0.23", mailtest.Options{})
	m := w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "a@slow.test", "b@slow.test")
	testlib.WaitFor(t, "two deferrals", func() bool { return w.events.Count(event.Deferred, "") == 2 })

	if _, err := w.q.Rebind([]queue.EntryID{{ID: m.ID, Index: 0}}, "warm"); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "a@slow.test deferred again", func() bool { return w.events.Count(event.Deferred, "a@slow.test") == 2 })
	if _, err := w.q.Suspend(queue.Scope{Tenant: "acme"}, w.now().Add(time.Hour), "wrong link"); err != nil {
		t.Fatal(err)
	}
	// b waits for its retry in an hour; the retry given now is recorded.
	before := w.events.Count(event.Deferred, "b@slow.test")
	if _, err := w.q.Retry([]queue.EntryID{{ID: m.ID, Index: 1}}); err != nil {
		t.Fatal(err)
	}
	w.restart()

	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "c@fast.test")
	testlib.WaitFor(t, "a scheduled, b and c held by the recorded hold", func() bool { return w.q.Depth().Scheduled == 3 })
	if got := len(fast.Messages()); got != 0 {
		t.Fatalf("%d messages delivered while the tenant is held", got)
	}
	if n, err := w.q.Resume(queue.Scope{Tenant: "acme"}); err != nil || n != 1 {
		t.Fatalf("resume: %d, %v", n, err)
	}
	fast.Wait(t, 1, 10*time.Second)
	testlib.WaitFor(t, "b tried after the resume", func() bool { return w.events.Count(event.Deferred, "b@slow.test") > before })

	// a keeps its pool across the restart.
	if _, err := w.q.Retry([]queue.EntryID{{ID: m.ID, Index: 0}}); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "a@slow.test routed after the restart", func() bool { return len(pol.of("a@slow.test")) == 3 })
	if got := pol.of("a@slow.test"); got[2] != "warm" {
		t.Errorf("pools given for a@slow.test: %q, want the last to be warm", got)
	}
}

// TestBounceOrderOutlivesARestart checks that an operator's bounce and
// delete not settled before the queue stopped (a stopped node, or a crash
// in the middle of a bulk action) are settled after the restart, without
// another delivery attempt: the DSN written, the entries removed.
func TestBounceOrderOutlivesARestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour} })
	w.mx("slow.test", "mx.slow.test", "127.0.0.21")
	w.mx("sender.test", "mx.sender.test", "127.0.0.22")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
		return mailtest.Reply(451, "4.3.0", "try again later")
	}})
	senderMX := w.receiver("127.0.0.22", mailtest.Options{})
	m := w.send("app@sender.test", message.NotifyFailure, message.RetHdrs, "a@slow.test", "b@slow.test", "c@slow.test")
	testlib.WaitFor(t, "three deferrals", func() bool { return w.events.Count(event.Deferred, "") == 3 })
	w.stopQueue()
	if res, err := w.q.Delete([]queue.EntryID{{ID: m.ID, Index: 2}}, "test address"); err != nil || res.Done != 1 {
		t.Fatalf("delete on the stopped queue: %+v, %v", res, err)
	}
	res, err := w.q.Bounce([]queue.EntryID{{ID: m.ID, Index: 0}, {ID: m.ID, Index: 1}}, "campaign withdrawn")
	if err != nil || res.Done != 2 {
		t.Fatalf("bounce on the stopped queue: %+v, %v", res, err)
	}
	if got := w.q.Depth().RemovalsWaiting; got != 3 {
		t.Errorf("RemovalsWaiting = %d, want 3", got)
	}
	deferrals := w.events.Count(event.Deferred, "")
	w.restart()
	dsn := senderMX.Wait(t, 1, 10*time.Second)[0]
	for _, want := range []string{"a@slow.test", "b@slow.test", "campaign withdrawn"} {
		if !strings.Contains(string(dsn.Data), want) {
			t.Errorf("the DSN lacks %q", want)
		}
	}
	if strings.Contains(string(dsn.Data), "c@slow.test") {
		t.Errorf("the DSN names the deleted recipient")
	}
	testlib.WaitFor(t, "the queue empty", func() bool { return w.q.Pending() == 0 && w.q.Depth().RemovalsWaiting == 0 })
	if got := w.events.Count(event.Bounced, ""); got != 2 {
		t.Errorf("%d bounced events, want 2", got)
	}
	if got := w.events.Count(event.Deleted, "c@slow.test"); got != 1 {
		t.Errorf("%d deleted events for c@slow.test, want 1", got)
	}
	if got := w.events.Count(event.Deferred, ""); got != deferrals {
		t.Errorf("%d more deferrals after the bounce: the bounced recipients were tried again", got-deferrals)
	}
	w.restart()
	if got := w.q.Pending(); got != 0 {
		t.Errorf("after another restart the queue holds %d recipients", got)
	}
}
