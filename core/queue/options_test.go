package queue_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/clock"
	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/testlib"
)

// TestDelayNoticeAfterOptionsDelayNotice: a recipient that asked
// NOTIFY=DELAY and keeps being deferred gets a "delayed" DSN at the first
// attempt Options.DelayNotice after its message arrived (4 hours by
// default), on a fake clock that moves half an hour per retry.
func TestDelayNoticeAfterOptionsDelayNotice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		notice time.Duration
		want   time.Duration
	}{
		{"default", 0, queue.DefaultDelayNotice},
		{"set", 90 * time.Minute, 90 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			fake := clock.NewFake(start)
			w := newWorld(t, nil, func(o *queue.Options) {
				o.Clock, o.Retry, o.DelayNotice = fake, []time.Duration{30 * time.Minute}, tt.notice
			})
			w.bus.Now = fake.Now
			w.mx("grey.test", "mx.grey.test", "127.0.0.21")
			w.mx("s.test", "mx.s.test", "127.0.0.22")
			w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error {
				return mailtest.Reply(452, "4.2.2", "Mailbox full")
			}})
			senderMX := w.receiver("127.0.0.22", mailtest.Options{})
			w.send("s@s.test", message.NotifyDelay, message.RetHdrs, "x@grey.test")
			// Attempt by attempt: the DSN is queued before the deferral of
			// the attempt that calls for it is announced.
			for attempt := 1; ; attempt++ {
				testlib.WaitFor(t, fmt.Sprintf("attempt %d deferred", attempt), func() bool { return w.events.Count(event.Deferred, "") >= attempt })
				if w.events.Count(event.DSNQueued, "") > 0 {
					break
				}
				if attempt > 20 {
					t.Fatalf("no delay notice after %d attempts", attempt)
				}
				next := fake.Now().Add(30 * time.Minute)
				testlib.WaitFor(t, "the scheduler's timer for the retry", func() bool { return fake.Armed(next) })
				fake.Advance(30 * time.Minute)
			}
			if at := w.events.Of(event.DSNQueued)[0].Time; !at.Equal(start.Add(tt.want)) {
				t.Errorf("delay notice queued at +%v, want +%v", at.Sub(start), tt.want)
			}
			fields := dsnFields(t, senderMX.Wait(t, 1, 10*time.Second)[0].Data)
			if !strings.Contains(fields, "Action: delayed") || !strings.Contains(fields, "x@grey.test") {
				t.Errorf("delay notice:\n%s", fields)
			}
		})
	}
}

// TestMaxLaneConnectionsBoundsAnUnlimitedLane: a lane whose policy sets no
// connection limit opens at most Options.MaxLaneConnections, counted where
// the queue opens and closes them.
func TestMaxLaneConnectionsBoundsAnUnlimitedLane(t *testing.T) {
	t.Parallel()
	const laneCap, n = 3, 30
	tr := &countingTransport{}
	w := newWorld(t, &policy.Default{Limits: &policy.Limits{}}, func(o *queue.Options) {
		o.MaxLaneConnections = laneCap
		tr.Transport = o.Transport
		o.Transport = tr
	})
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{Data: func([]byte, int) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	}})
	w.sendMany(n, "a.test")
	w.waitDone(10 * time.Second)
	if p := tr.peak.Load(); p != laneCap {
		t.Errorf("peak %d connections, want the cap of %d used and kept", p, laneCap)
	}
	if got := len(rx.Messages()); got != n {
		t.Errorf("delivered %d of %d", got, n)
	}
}

// deadlinePolicy records how long the queue gives each shape and
// on_response call.
type deadlinePolicy struct {
	policy.Default
	mu    sync.Mutex
	given map[string]time.Duration // by hook: the shortest time left seen
}

func (p *deadlinePolicy) record(ctx context.Context, hook string) {
	left := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, seen := p.given[hook]; !seen || left < old {
		p.given[hook] = left
	}
}

func (p *deadlinePolicy) Shape(ctx context.Context, provider, source string) (policy.Limits, error) {
	p.record(ctx, "shape")
	return p.Default.Shape(ctx, provider, source)
}

func (p *deadlinePolicy) OnResponse(ctx context.Context, a *policy.Attempt) (policy.Verdict, error) {
	p.record(ctx, "on_response")
	return p.Default.OnResponse(ctx, a)
}

// TestPolicyTimeoutBoundsHookCalls: shape and on_response run under
// Options.PolicyTimeout (5s by default).
func TestPolicyTimeoutBoundsHookCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"default", 0, 5 * time.Second},
		{"set", 42 * time.Second, 42 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pol := &deadlinePolicy{given: map[string]time.Duration{}}
			w := newWorld(t, pol, func(o *queue.Options) { o.PolicyTimeout = tt.timeout })
			w.mx("a.test", "mx.a.test", "127.0.0.21")
			w.receiver("127.0.0.21", mailtest.Options{})
			w.send("s@s.test", 0, "", "x@a.test")
			w.waitDone(10 * time.Second)
			pol.mu.Lock()
			defer pol.mu.Unlock()
			for _, hook := range []string{"shape", "on_response"} {
				// The time left when the call starts: a little less than the
				// whole timeout, never more.
				if left, ok := pol.given[hook]; !ok || left > tt.want || left < tt.want*3/4 {
					t.Errorf("%s called with %v left (called: %v), want just under %v", hook, left, ok, tt.want)
				}
			}
		})
	}
}
