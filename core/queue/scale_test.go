package queue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/clock"
	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/testlib"
)

// TestRetryTimeKeptAcrossRestart checks that a recipient deferred before a
// restart is not tried again before its recorded retry time: on a fake
// clock, the second attempt of each recipient comes exactly an hour after
// the first, however the restart went.
func TestRetryTimeKeptAcrossRestart(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	w := newWorld(t, nil, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour}; o.Clock = fake })
	w.bus.Now = fake.Now
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	greylist := func(string, int) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	}
	rx := w.receiver("127.0.0.21", mailtest.Options{Rcpt: greylist})
	first := fake.Now()
	w.send("s@sender.test", 0, "", "r1@a.test", "r2@a.test")
	testlib.WaitFor(t, "both recipients deferred", func() bool { return w.q.Status().Scheduled == 2 })
	tried := rx.Connections()
	w.restart()
	if p := w.q.Pending(); p != 2 {
		t.Fatalf("after restart the queue holds %d recipients, want 2", p)
	}
	// A second short of the retry time; then the retry time.
	testlib.WaitFor(t, "the scheduler's timer for the retry", func() bool { return fake.Armed(first.Add(time.Hour)) })
	fake.Advance(time.Hour - time.Second)
	fake.Advance(time.Second)
	testlib.WaitFor(t, "both recipients tried again", func() bool { return w.events.Count(event.Deferred, "") == 4 })
	if rx.Connections() != tried+1 {
		t.Errorf("%d connections after the retry, want %d", rx.Connections(), tried+1)
	}
	for _, e := range w.events.Of(event.Deferred) {
		if e.Attempt == 2 && !e.Time.Equal(first.Add(time.Hour)) {
			t.Errorf("%s tried again at +%v, want at its recorded retry time +1h", e.Recipient, e.Time.Sub(first))
		}
	}
}

// TestLaneBacklogBounded checks that a throttled lane holds at most
// MaxLaneBacklog recipients in memory while the rest wait in the
// scheduler, and that every recipient is still delivered.
//
// The clock is fake: the lane's rate and the scheduler's holds pass in fake
// time, 50ms of it at each look at the lane.
func TestLaneBacklogBounded(t *testing.T) {
	t.Parallel()
	const n, backlog = 300, 20
	// A burst lets the lane send several messages at each advance of
	// the fake clock, not one.
	lim := policy.Limits{MaxConnections: 1, PerSecond: 200, Burst: 10}
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	w := newWorld(t, &policy.Default{Limits: &lim}, func(o *queue.Options) { o.MaxLaneBacklog = backlog; o.Clock = fake })
	w.mx("big.test", "mx.big.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{CountOnly: true})
	handOver := w.sendBatch(0, n, message.Newsletter, []byte("Subject: news\r\n\r\nnews\r\n"))
	handOver()
	peak := 0
	testlib.WaitForWithin(t, 30*time.Second, "every recipient delivered", func() bool {
		for _, l := range w.q.Status().Lanes {
			peak = max(peak, l.Queued[message.Newsletter])
		}
		if w.q.Pending() == 0 {
			return true
		}
		fake.Advance(50 * time.Millisecond)
		return false
	})
	// Routers that check the backlog at the same moment may each add one
	// job of one recipient.
	if limit := backlog + w.opts.RouterWorkers; peak > limit {
		t.Errorf("the lane held %d recipients at once, want at most %d", peak, limit)
	}
	if got := rx.Recipients(); got != n {
		t.Errorf("receiver got %d recipients, want %d", got, n)
	}
	t.Logf("peak lane backlog %d (cap %d), fake time %v", peak, backlog, fake.Now().Sub(start))
}

// TestMaxReadyBoundsLoadedEntries checks that after a restart the
// scheduler loads due entries from the spool no faster than they settle:
// at most MaxReady recipients are in memory on their way to delivery.
func TestMaxReadyBoundsLoadedEntries(t *testing.T) {
	t.Parallel()
	const n, ready = 400, 25
	w := newWorld(t, nil, func(o *queue.Options) { o.MaxReady = ready })
	w.mx("big.test", "mx.big.test", "127.0.0.21")
	slow := func([]byte, int) error { time.Sleep(2 * time.Millisecond); return nil }
	rx := w.receiver("127.0.0.21", mailtest.Options{Data: slow})
	// Spooled but not handed over: the restart's recovery finds them due.
	rcpts := make([]string, n)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("r%d@big.test", i)
	}
	w.spoolBatch(message.Newsletter, []byte("Subject: news\r\n\r\nnews\r\n"), rcpts)
	w.restart()
	peak := int64(0)
	deadline := time.Now().Add(30 * time.Second)
	for w.q.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d recipients; status %+v", w.q.Pending(), w.q.Status())
		}
		st := w.q.Status()
		peak = max(peak, st.Pending-int64(st.Scheduled))
		time.Sleep(time.Millisecond)
	}
	if peak > ready {
		t.Errorf("%d recipients in memory at once, want at most %d", peak, ready)
	}
	if got := len(rx.Messages()); got != n {
		t.Errorf("receiver got %d messages, want %d", got, n)
	}
	t.Logf("peak in memory %d (MaxReady %d)", peak, ready)
}
